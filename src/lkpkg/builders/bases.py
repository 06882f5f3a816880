"""The images a Dockerfile's FROM lines name, provided from lkpkg's cache and nowhere else.

Builds are hermetic: every FROM (after build-arg substitution) must name an image the cache
holds, for the platform that FROM reads (the build's target, or its `--platform=`, e.g.
`$BUILDPLATFORM`), or the build stops at once with one line naming the reference, the
platform, the platforms the cache holds, and how to get it. The builder's own image store,
and registries, are never asked: a build that works on one machine works on every machine
with the same cache.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from lkpkg.attest.store import is_attestation
from lkpkg.builders.base import BaseImage, BaseInstance
from lkpkg.builders.dockerfile import FromImage, from_images, from_stages
from lkpkg.cache.layout import REF_NAME_ANNOTATION, Cache
from lkpkg.cache.platform import image_platform
from lkpkg.errors import InputError, LkpkgError
from lkpkg.oci import mediatypes
from lkpkg.oci.index import platform_index
from lkpkg.oci.model import Descriptor, ImageIndex, Platform
from lkpkg.platforms import host_platform
from lkpkg.reference import Reference


@dataclass(frozen=True)
class UnresolvedBase:
    """A FROM reference the cache cannot provide, and why."""

    dockerfile: Path
    name: str
    reason: str
    # How to get it ("get it with `lkpkg cache pull …`"), when there is a way.
    fix: str | None = None

    def message(self) -> str:
        fix = f"; {self.fix}" if self.fix else ""
        return f"{self.dockerfile}: FROM {self.name}: {self.reason}{fix}"


def _how_to_get(reference: str) -> str:
    return (
        f"get it with `lkpkg cache pull {reference}` "
        f"(or `scripts/mkbase` for the Debian base, or build its package first)"
    )


def _platform_gap(
    dockerfile: Path, reference: Reference, image: FromImage, have: Sequence[Platform]
) -> UnresolvedBase:
    assert image.platform is not None
    want = image.platform
    held = ", ".join(str(p) for p in have) or "no platform"
    via = f" (--platform={image.platform_flag.partition('=')[2]})" if image.platform_flag else ""
    return UnresolvedBase(
        dockerfile,
        image.name,
        f"not in the cache for {want}{via}, only for {held}",
        f"get it with `lkpkg cache pull --platforms {want} {reference}` (or `scripts/mkbase "
        f"{want.architecture}` for the Debian base, or build its package for {want} first)",
    )


def cached_platforms(cache: Cache, descriptor: Descriptor) -> list[Platform]:
    """The platforms the cache holds of an image or index (entries whose manifest is absent,
    as a partial pull leaves them, and attestations are not platforms)."""
    top = cache.read_manifest(descriptor.digest)
    if not isinstance(top, ImageIndex):
        return [image_platform(cache, descriptor.digest).platform]
    found: list[Platform] = []
    for entry in top.manifests:
        if entry.media_type not in mediatypes.MANIFEST_TYPES or is_attestation(entry):
            continue
        if not cache.has_blob(entry.digest):
            continue
        platform = entry.platform or image_platform(cache, entry.digest).platform
        if all(str(platform) != str(p) for p in found):
            found.append(platform)
    return found


def unresolved_bases(
    cache: Cache,
    dockerfile: Path,
    build_args: Mapping[str, str],
    platform: Platform | None = None,
    *,
    build_platform: Platform | None = None,
) -> list[UnresolvedBase]:
    """Every FROM of `dockerfile` the cache cannot provide (for `doctor`, and before a build):
    absent, or (with `platform`, the build's target) held without the platform that FROM
    reads. `build_platform` is the host's unless given (what $BUILDPLATFORM names)."""
    missing: list[UnresolvedBase] = []
    build = build_platform or (host_platform() if platform is not None else None)
    absent: set[str] = set()
    for image in from_stages(dockerfile, build_args, target=platform, build=build):
        name = image.name
        try:
            reference = Reference.parse(name)
        except LkpkgError as error:
            if name not in absent:
                absent.add(name)
                missing.append(UnresolvedBase(dockerfile, name, f"not an image reference: {error}"))
            continue
        descriptor = cache.resolve(str(reference))
        if descriptor is None:
            if name not in absent:
                absent.add(name)
                missing.append(
                    UnresolvedBase(
                        dockerfile, name, "not in the cache", _how_to_get(str(reference))
                    )
                )
            continue
        if image.platform is None:
            continue
        have = cached_platforms(cache, descriptor)
        if not any(p.matches(image.platform) for p in have):
            missing.append(_platform_gap(dockerfile, reference, image, have))
    return missing


def base_images(
    cache: Cache,
    dockerfile: Path,
    build_args: Mapping[str, str],
    scratch: Path,
    platform: Platform | None = None,
) -> list[BaseImage]:
    """The FROM images of `dockerfile`, each exposed as a tiny OCI layout sharing the cache's
    blobs; `InputError` (one line) for the first one the cache cannot provide (for
    `platform`, the build's target, when given)."""
    problems = unresolved_bases(cache, dockerfile, build_args, platform)
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
