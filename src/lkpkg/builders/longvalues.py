"""Labels and build args that are too long for a command line.

Linux limits each argument to `MAX_ARG_STRLEN` (32 pages: 128 KiB) and argv plus environment
together to `ARG_MAX`; past either, exec fails with "Argument list too long". A label (e.g.
`org.mobyproject.config` of a large build.yml `config`, or a long `gitrepo`) never goes on the
command line when it is long: it is added to the built image's config before the image is
imported (same result as `--label`: labels belong to the final image's config). Build args
have no file form in buildah 1.28 or `docker build`, so one that cannot fit is a one-line
`InputError` naming it and the limit.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path

from lkpkg.errors import BuildError, InputError

# Labels longer than this are added to the config after the build: far below every limit, and
# short labels (the usual case) go on the command line as always.
LABEL_INLINE_MAX = 8 * 1024
MAX_ARG_STRLEN = 32 * 4096
# Room kept for the rest of argv and for the environment within ARG_MAX.
_RESERVED = 64 * 1024


def _arg_max() -> int:
    try:
        return int(os.sysconf("SC_ARG_MAX"))
    except (ValueError, OSError):
        return 2 * 1024 * 1024


def split_labels(labels: Mapping[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """(labels for the command line, labels to add to the built image's config)."""
    inline: dict[str, str] = {}
    appended: dict[str, str] = {}
    for key, value in labels.items():
        size = len(f"{key}={value}".encode())
        (appended if size > LABEL_INLINE_MAX else inline)[key] = value
    return inline, appended


def add_labels(layout: Path, ref: str, labels: Mapping[str, str]) -> None:
    """Add `labels` to the config of the image named `ref` in the OCI layout at `layout`.

    The config, the manifest and the index entry are rewritten (new digests); nothing else of
    the image changes. Linear in the labels' size, unlike a Dockerfile `LABEL` line, which
    Dockerfile parsers handle in quadratic time and drop beyond 64 KiB per physical line.
    """
    index_path = layout / "index.json"
    index = json.loads(index_path.read_bytes())
    entries = [e for e in index["manifests"] if (e.get("annotations") or {}).get(_REF_NAME) == ref]
    if len(entries) != 1:
        raise BuildError(f"{layout}: expected one image named {ref}, found {len(entries)}")
    entry = entries[0]
    manifest = json.loads(_blob(layout, entry["digest"]).read_bytes())
    config = json.loads(_blob(layout, manifest["config"]["digest"]).read_bytes())
    inner = config.setdefault("config", {})
    inner["Labels"] = {**(inner.get("Labels") or {}), **labels}
    manifest["config"]["digest"], manifest["config"]["size"] = _put(layout, _json(config))
    entry["digest"], entry["size"] = _put(layout, _json(manifest))
    index_path.write_bytes(_json(index))


_REF_NAME = "org.opencontainers.image.ref.name"


def _json(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def _blob(layout: Path, digest: str) -> Path:
    algorithm, _, hexpart = digest.partition(":")
    return layout / "blobs" / algorithm / hexpart


def _put(layout: Path, data: bytes) -> tuple[str, int]:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    _blob(layout, digest).write_bytes(data)
    return digest, len(data)


def check_build_args(build_args: Mapping[str, str], env: Mapping[str, str]) -> None:
    """`InputError` when a build arg cannot go on a command line (one line, naming it)."""
    total = sum(len(f"{k}={v}".encode()) + 1 for k, v in env.items())
    for key, value in build_args.items():
        size = len(f"{key}={value}".encode()) + 1
        if size > MAX_ARG_STRLEN:
            raise InputError(
                f"build arg {key} is {size - 1} bytes: a command-line argument holds at most "
                f"{MAX_ARG_STRLEN - 1}, and the builder takes build args only there"
            )
        total += size + len("--build-arg") + 1
    limit = _arg_max() - _RESERVED
    if total > limit:
        raise InputError(
            f"build args total {total} bytes: more than a command line holds ({limit}); "
            f"the builder takes build args only there"
        )
