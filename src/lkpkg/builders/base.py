"""The one interface every builder implements, and the request it takes.

A builder turns a build context into exactly one single-platform image and writes it as an
OCI image layout at `out` under the reference name `ref`. It never writes to lkpkg's cache:
the pipeline imports the layout, so a failed build leaves the cache untouched. The seed's
"local image" `ORG/IMAGE:HASH-ARCH` is the cache's (linuxkit's cache, which YAML files read);
`request.local_name` names the build in output, and docker also tags its engine's copy with it
(buildah writes the layout directly and keeps no copy in its store).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

# Re-exported: the builders' settings live in their own small module, which resolving a
# command's settings imports without the interface and request types below.
from lkpkg.builders.engines import EngineSettings as EngineSettings
from lkpkg.oci.model import Platform

if TYPE_CHECKING:
    from lkpkg.cache.layout import Cache

LAYOUT_REF = "lkpkg-build"


@dataclass(frozen=True)
class BaseInstance:
    """One platform's image of a base, named `layout_ref` in the base's OCI layout."""

    platform: Platform
    layout_ref: str
    manifest_digest: str
    config_digest: str


@dataclass(frozen=True)
class BaseImage:
    """An image a Dockerfile names in FROM that lkpkg's cache provides offline.

    `name` is the fully qualified reference the FROM line resolves to; `layout` is an OCI
    image layout holding every instance the cache has for it, one ref name per platform.
    """

    name: str
    layout: Path
    instances: tuple[BaseInstance, ...]

    def for_platform(self, platform: Platform) -> BaseInstance | None:
        for instance in self.instances:
            if instance.platform.matches(platform):
                return instance
        return None


@dataclass(frozen=True)
class BuildRequest:
    context: Path
    dockerfile: Path
    platform: Platform
    local_name: str
    build_args: Mapping[str, str] = field(default_factory=dict)
    labels: Mapping[str, str] = field(default_factory=dict)
    network: bool = False
    use_layer_cache: bool = True
    timestamp: int | None = None
    bases: Sequence[BaseImage] = ()
    verbose: bool = False
    # Where the builder keeps its image store for this cache (`builder_store`), so
    # a build sees only what lkpkg's cache provides; None: the builder's own default store.
    store: Path | None = None
    # Called once, as soon as the engine's build process runs (before it ends): the pipeline
    # starts the work that can overlap the build then (attest/background.py), not earlier,
    # where it would contend for the GIL with the build's own start.
    started: Callable[[], None] | None = field(default=None, compare=False, repr=False)


def builder_store(cache: Cache) -> Path:
    """The builders' own image store for `cache`: `<cache>.buildah`, beside it (not inside: an
    image store holds device nodes and whiteouts that tools walking an OCI layout trip on)."""
    root = cache.root.resolve()
    return root.with_name(root.name + ".buildah")


class Builder(Protocol):
    """What the pipeline needs of a build engine."""

    name: str
    # True for an engine on another host that builds its own platform natively: lkpkg does
    # not check this host's emulation for it.
    remote: bool

    def problem(self) -> str | None:
        """Why this builder cannot run here (one line with the fix), or None when it can."""
        ...

    def build(self, request: BuildRequest, out: Path) -> None:
        """Build `request` and write the image to an OCI layout at `out` as `LAYOUT_REF`."""
        ...

    def version(self) -> str | None:
        """The engine's version (for the provenance), asked once per builder; None when it
        does not say."""
        ...
