"""Dependencies are never silently stale.

A package's tag is its own tree (linuxkit's rule), so a new commit to a package it builds on
(`BASE=@lkt:pkg:../base`, `FROM ${BASE}`) changes neither its tag nor its cache entry: it
would stay "in cache" and "unchanged" while its image holds the old base. Each image records
the `ORG/IMAGE:TAG` of every package it was built on (the label
`org.mobyproject.lkpkg.dependencies`, package/buildinfo.py); `moved` compares that record
with what the package's dependencies resolve to now. `build`, `push` and `show-tag --check`
say so, one line per moved dependency. With the opt-in dependency-aware tag
(`--tag-mode=deps`, package/deptag.py) a moved dependency gives the dependent a new tag
instead, so it is rebuilt and nothing here has anything to report.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lkpkg.cache.layout import Cache
from lkpkg.oci.model import ImageManifest, parse_manifest_bytes
from lkpkg.package.buildinfo import DEPENDENCIES_LABEL
from lkpkg.package.model import Package

if TYPE_CHECKING:
    from lkpkg.registry.protocol import Registry


@dataclass(frozen=True)
class Moved:
    """`dependency` (ORG/IMAGE) was `built_on` (ORG/IMAGE:TAG) when the image was built; it
    resolves to `now` today."""

    dependency: str
    built_on: str
    now: str

    def fields(self) -> tuple[str, str, str]:
        return self.dependency, self.built_on, self.now


def _repository(reference: str) -> str:
    return reference.rsplit(":", 1)[0]


def recorded(labels: Mapping[str, str] | None) -> tuple[str, ...]:
    """The dependencies an image's labels record (none for an image built without any)."""
    value = (labels or {}).get(DEPENDENCIES_LABEL, "")
    return tuple(part for part in value.split(",") if part)


def moved(package: Package, labels: Mapping[str, str] | None) -> list[Moved]:
    """Each dependency of `package` whose tag differs from the one its image was built on."""
    before = {_repository(r): r for r in recorded(labels)}
    # A dependency outside the run resolves with its own org (linuxkit's rule), the run's
    # `--org` may have named it otherwise at build time: then it is found by IMAGE alone.
    by_image = {_image(r): r for r in recorded(labels)}
    found: list[Moved] = []
    for now in package.dependencies:
        repository = _repository(now)
        was = before.get(repository, by_image.get(_image(now)))
        if was is not None and _tag(was) != _tag(now):
            found.append(Moved(repository, was, now))
    return found


def _image(reference: str) -> str:
    return _repository(reference).rsplit("/", 1)[-1]


def _tag(reference: str) -> str:
    return reference.rsplit(":", 1)[-1]


def _labels(config: Any) -> dict[str, str]:
    labels = (config.get("config") or {}).get("Labels") if isinstance(config, dict) else None
    return {str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {}


def cached_labels(cache: Cache, manifest_digest: str) -> dict[str, str] | None:
    """The labels of the cached image `manifest_digest` (None: not an image in the cache)."""
    if not cache.has_blob(manifest_digest):
        return None
    manifest = cache.read_manifest(manifest_digest)
    if not isinstance(manifest, ImageManifest) or not cache.has_blob(manifest.config.digest):
        return None
    return _labels(json.loads(cache.read_blob(manifest.config.digest)))


def registry_labels(registry: Registry, repo: str, ref: str) -> dict[str, str] | None:
    """The labels of the image `repo:ref` in the registry (None: absent, or not an image)."""
    if registry.head_manifest(repo, ref) is None:
        return None
    manifest = parse_manifest_bytes(registry.get_manifest(repo, ref).data)
    if not isinstance(manifest, ImageManifest):
        return None
    sink = io.BytesIO()
    registry.get_blob(repo, manifest.config.digest, sink)
    return _labels(json.loads(sink.getvalue()))


def describe(package_ref: str, change: Moved) -> str:
    """The one line `show-tag --check` prints."""
    return (
        f"{package_ref} was built on {change.built_on}; {change.dependency} is now "
        f"{change.now} (rebuild it with --force)"
    )


def check(
    package: Package, cache: Cache, registry: Registry | None = None
) -> list[tuple[str, Moved]]:
    """Every (TAG-ARCH, moved dependency) of `package`: each arch image of build.yml's arches
    the cache holds, else (with `registry`) the registry holds. An image nowhere, or built
    before lkpkg recorded dependencies, has nothing to say."""
    found: list[tuple[str, Moved]] = []
    if not package.dependencies:
        return found
    for arch in package.spec.arches:
        arch_ref = package.arch_reference(arch)
        local = cache.resolve(str(arch_ref))
        labels = cached_labels(cache, local.digest) if local is not None else None
        if labels is None and registry is not None:
            labels = registry_labels(registry, arch_ref.path, f"{package.tag}-{arch}")
        found.extend(
            (f"{package.repository}:{package.tag}-{arch}", m) for m in moved(package, labels)
        )
    return found
