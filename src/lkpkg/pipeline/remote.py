"""The registry as a shared cache for `build`, as linuxkit's `pkg build` uses it.

Before an arch is built, the registry the run's org names is asked for `TAG-ARCH` (the cache
first: an arch the cache holds completely is never looked up). When the registry has it, it
is not built: without `pull` the run says "found in registry" and leaves the cache alone;
with `pull` it is brought into the cache through cache/pull.py (every blob checked against
its digest before it is stored), as `TAG` (the index) and `TAG-ARCH`, so that `linuxkit
build` finds it offline. An org without a registry host (Docker Hub by default) is not
asked: a build stays offline unless the user named a registry.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from lkpkg.cache.layout import Cache
from lkpkg.errors import LkpkgError
from lkpkg.oci.model import Platform
from lkpkg.package.model import Package
from lkpkg.pipeline.building import cached_image
from lkpkg.pipeline.events import Emit, FoundInRegistry, PulledFromRegistry

if TYPE_CHECKING:
    from lkpkg.registry.protocol import Registry

DEFAULT_DOMAIN = "docker.io"


def names_registry(package: Package) -> bool:
    """Whether the package's org carries a registry host (`localhost:5000/wombat`)."""
    return package.reference().domain != DEFAULT_DOMAIN


def left_to_build(
    package: Package,
    platforms: Sequence[Platform],
    *,
    cache: Cache,
    registry: Callable[[], Registry],
    pull: bool,
    emit: Emit,
) -> list[Platform]:
    """`platforms` but those the registry holds as TAG-ARCH (and the cache does not): each
    of those is reported (`FoundInRegistry`), or pulled into the cache with `pull`.

    `registry()` gives the client, asked only for an arch the cache lacks: a build that
    finds everything in the cache loads no registry client (httpx, TLS) at all."""
    remaining: list[Platform] = []
    reference = package.reference()
    for platform in platforms:
        arch = platform.architecture
        if cached_image(cache, package, arch) is not None:
            remaining.append(platform)  # build_package reports the cache hit
            continue
        arch_ref = package.arch_reference(arch)
        if registry().head_manifest(reference.path, f"{package.tag}-{arch}") is None:
            remaining.append(platform)
            continue
        if not pull:
            emit(FoundInRegistry(arch_ref, arch))
            continue
        from lkpkg.cache.pull import pull as pull_image

        try:
            pull_image(cache, registry(), reference, platforms=[platform])
        except LkpkgError:  # no index yet, or one without the arch another host is pushing
            pull_image(cache, registry(), arch_ref)
        image = cached_image(cache, package, arch)
        if image is None:
            remaining.append(platform)
            continue
        emit(PulledFromRegistry(arch_ref, arch, image.digest))
    return remaining
