"""After a build: the SBOM and the provenance of one platform's image, stored beside it.

`attest_image` is the one call the build pipeline makes. It reads the image back from the
cache (its layers, its config's `created`), never from the builder, so what the SBOM
describes is exactly what was stored.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from lkpkg import __version__
from lkpkg.attest import intoto, provenance, spdx
from lkpkg.attest.inventory import scan_image
from lkpkg.attest.layermemo import LayerMemo
from lkpkg.attest.store import write_attestation_manifest
from lkpkg.cache.layout import Cache
from lkpkg.errors import CacheError
from lkpkg.oci.model import Descriptor, ImageManifest, Platform
from lkpkg.package.git import repository_top
from lkpkg.package.model import Package

_EPOCH = "1970-01-01T00:00:00Z"


@dataclass(frozen=True)
class AttestOptions:
    """Which attestations a build attaches (`--sbom` / `--provenance`)."""

    sbom: bool = True
    provenance: bool = True

    @property
    def any(self) -> bool:
        return self.sbom or self.provenance


EVERY_ATTESTATION = AttestOptions()


def _spdx_time(created: object) -> str:
    """An image config's RFC 3339 `created` as SPDX's `YYYY-MM-DDThh:mm:ssZ` (UTC)."""
    if not isinstance(created, str) or not created:
        return _EPOCH
    text = created.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    head, dot, rest = text.partition(".")
    if dot:  # fractional seconds: Python before 3.11 and SPDX both want them gone
        tz = rest.lstrip("0123456789")
        text = head + tz
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        return _EPOCH
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _walk(root: Path) -> Iterator[Path]:
    for current, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d != ".git")
        for name in sorted(files):
            yield Path(current) / name


def _digest_file(path: Path) -> tuple[str, str]:
    sha1, sha256 = hashlib.sha1(usedforsecurity=False), hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            sha1.update(chunk)
            sha256.update(chunk)
    return sha1.hexdigest(), sha256.hexdigest()


def source_files(package: Package) -> list[spdx.SourceFile]:
    """The package directory's files (and extra sources at their `dst`), as the build saw them."""
    roots: list[tuple[Path, str]] = [(package.directory, "")]
    for extra in package.spec.extra_sources:
        src = Path(extra.src)
        roots.append((src if src.is_absolute() else package.directory / src, extra.dst.strip("/")))
    out: dict[str, spdx.SourceFile] = {}
    for root, prefix in roots:
        if not root.is_dir():
            continue
        for path in _walk(root):
            if path.is_symlink() or not path.is_file():
                continue
            relative = path.relative_to(root).as_posix()
            name = f"{prefix}/{relative}" if prefix else relative
            sha1, sha256 = _digest_file(path)
            out[name] = spdx.SourceFile(name, sha1, sha256)
    return [out[name] for name in sorted(out)]


def package_path(package: Package) -> str:
    """The package directory relative to its repository's top (`.` outside git)."""
    top = repository_top(package.directory.resolve())
    if top is None:
        return "."
    relative = package.directory.resolve().relative_to(top).as_posix()
    return relative or "."


def source_uri(package: Package, default: str) -> str:
    return package.spec.gitrepo or default


def _download_location(package: Package, default: str) -> str:
    uri = source_uri(package, default)
    if package.head is None or package.dirty or not uri.startswith(("https://", "http://")):
        return spdx.NOASSERTION
    return f"git+{uri}@{package.head.commit}#{package_path(package)}"


def sbom_statement(
    cache: Cache,
    package: Package,
    platform: Platform,
    image: Descriptor,
    *,
    default_source: str,
    sources: Sequence[spdx.SourceFile] | None = None,
) -> intoto.Statement:
    """The SPDX statement of `image`; `sources` are `source_files(package)` when the caller
    already has them (computed once per package, not per platform)."""
    manifest = cache.read_manifest(image.digest)
    if not isinstance(manifest, ImageManifest):
        raise CacheError(f"{image.digest}: an SBOM describes an image manifest, not an index")
    config = json.loads(cache.read_blob(manifest.config.digest))
    inventory = scan_image(cache, manifest, platform.architecture, LayerMemo(cache))
    repository = package.reference().name
    subject = spdx.Subject(
        repository=repository,
        tag=package.tag,
        arch=platform.architecture,
        manifest_digest=image.digest,
        created=_spdx_time(config.get("created") if isinstance(config, dict) else None),
        source_version=package.hash,
        source_location=_download_location(package, default_source),
    )
    files = source_files(package) if sources is None else sources
    document = spdx.document(subject, inventory, files)
    return intoto.Statement(
        intoto.subject_name(repository, package.tag, platform),
        image.digest,
        spdx.PREDICATE_TYPE,
        document,
    )


def provenance_statement(
    package: Package, platform: Platform, image: Descriptor, facts: provenance.BuildFacts
) -> intoto.Statement:
    repository = package.reference().name
    return intoto.Statement(
        intoto.subject_name(repository, package.tag, platform),
        image.digest,
        provenance.PREDICATE_TYPE,
        provenance.predicate(facts),
    )


def attest_image(
    cache: Cache,
    package: Package,
    platform: Platform,
    image: Descriptor,
    facts: provenance.BuildFacts | None,
    options: AttestOptions,
    *,
    default_source: str,
    sources: Sequence[spdx.SourceFile] | None = None,
) -> Descriptor | None:
    """Write the chosen attestations for `image`; the descriptor to list in its index."""
    statements: list[intoto.Statement] = []
    if options.sbom:
        statements.append(
            sbom_statement(
                cache, package, platform, image, default_source=default_source, sources=sources
            )
        )
    if options.provenance and facts is not None:
        statements.append(provenance_statement(package, platform, image, facts))
    if not statements:
        return None
    return write_attestation_manifest(cache, image, statements)


def file_digest(path: Path, shown: str) -> provenance.FileDigest:
    return provenance.FileDigest(shown, _digest_file(path)[1])


LKPKG_VERSION = __version__
