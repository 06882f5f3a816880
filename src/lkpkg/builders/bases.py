"""The images a Dockerfile's FROM lines name, provided from lkpkg's cache and nowhere else.

Builds are hermetic: every FROM (after build-arg substitution) must name an image the cache
holds, or the build stops at once with one line naming the reference and how to get it. The
builder's own image store, and registries, are never asked: a build that works on one machine
works on every machine with the same cache.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from lkpkg.attest.store import is_attestation
from lkpkg.builders.base import BaseImage, BaseInstance
from lkpkg.builders.dockerfile import from_images
from lkpkg.cache.layout import REF_NAME_ANNOTATION, Cache
from lkpkg.cache.platform import image_platform
from lkpkg.errors import InputError, LkpkgError
from lkpkg.oci import mediatypes
from lkpkg.oci.index import platform_index
from lkpkg.oci.model import Descriptor, ImageIndex
from lkpkg.reference import Reference


@dataclass(frozen=True)
class UnresolvedBase:
    """A FROM reference the cache cannot provide, and why."""

    dockerfile: Path
    name: str
    reason: str

    def message(self) -> str:
        return f"{self.dockerfile}: FROM {self.name}: {self.reason}"


def _how_to_get(reference: str) -> str:
    return (
        f"not in the cache; get it with `lkpkg cache pull {reference}` "
        f"(or `scripts/mkbase` for the Debian base, or build its package first)"
    )


def unresolved_bases(
    cache: Cache, dockerfile: Path, build_args: Mapping[str, str]
) -> list[UnresolvedBase]:
    """Every FROM of `dockerfile` the cache cannot provide (for `doctor`, and before a build)."""
    missing: list[UnresolvedBase] = []
    for name in from_images(dockerfile, build_args):
        try:
            reference = Reference.parse(name)
        except LkpkgError as error:
            missing.append(UnresolvedBase(dockerfile, name, f"not an image reference: {error}"))
            continue
        if cache.resolve(str(reference)) is None:
            missing.append(UnresolvedBase(dockerfile, name, _how_to_get(str(reference))))
    return missing


def base_images(
    cache: Cache, dockerfile: Path, build_args: Mapping[str, str], scratch: Path
) -> list[BaseImage]:
    """The FROM images of `dockerfile`, each exposed as a tiny OCI layout sharing the cache's
    blobs; `InputError` (one line) for the first one the cache cannot provide."""
    problems = unresolved_bases(cache, dockerfile, build_args)
    if problems:
        raise InputError(problems[0].message())
    return [
        _base_image(cache, Reference.parse(name), scratch / f"base-{number}")
        for number, name in enumerate(from_images(dockerfile, build_args))
    ]


def _manifests_of(cache: Cache, descriptor: Descriptor) -> Sequence[str]:
    top = cache.read_manifest(descriptor.digest)
    if isinstance(top, ImageIndex):
        return [
            m.digest
            for m in top.manifests
            if m.media_type in mediatypes.MANIFEST_TYPES and not is_attestation(m)
        ]
    return [descriptor.digest]


def _base_image(cache: Cache, reference: Reference, layout: Path) -> BaseImage:
    descriptor = cache.resolve(str(reference))
    assert descriptor is not None  # unresolved_bases checked it
    layout.mkdir(parents=True)
    (layout / "blobs").symlink_to(cache.root / "blobs")
    (layout / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    instances: list[BaseInstance] = []
    entries: list[Descriptor] = []
    for position, digest in enumerate(_manifests_of(cache, descriptor)):
        if not cache.has_blob(digest):
            continue  # a platform another tool's partial pull left out
        found = image_platform(cache, digest)
        ref = f"i{position}"
        instances.append(BaseInstance(found.platform, ref, digest, found.config_digest))
        size = cache.blob_path(digest).stat().st_size
        entries.append(
            Descriptor(
                mediatypes.OCI_MANIFEST,
                digest,
                size,
                platform=found.platform,
                annotations={REF_NAME_ANNOTATION: ref},
            )
        )
    (layout / "index.json").write_text(json.dumps(platform_index(entries).to_json()))
    return BaseImage(str(reference), layout, tuple(instances))
