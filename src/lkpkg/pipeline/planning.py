"""Planning a run: what to do (`RunOptions`) and, before any work, the packages in dependency
order with each one's platforms (`plan_run`). Bad input fails here, so it costs nothing."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lkpkg.oci.model import Platform
from lkpkg.package.model import Package
from lkpkg.pipeline.building import choose_platforms, target_platforms
from lkpkg.pipeline.graph import PackageGraph, package_graph

if TYPE_CHECKING:
    from lkpkg.attest.attach import AttestOptions


@dataclass(frozen=True)
class RunOptions:
    """What to do with the packages; where and with what is `Settings`' business.

    `platforms` None: each package's build.yml arches but `skip_platforms` (linuxkit's rule);
    given, they override build.yml's arches. `releases` None: the git tags on HEAD
    (linuxkit's default); () for none. `hash_given`: the tag was overridden (`--hash`), so a
    dirty package may be pushed. `attest`: the SBOM and provenance each build attaches (None: both).
    """

    platforms: tuple[Platform, ...] | None = None
    skip_platforms: tuple[str, ...] = ()
    pull: bool = False
    force: bool = False
    verbose: bool = False
    jobs: int = 1
    allow_dirty: bool = False
    hash_given: bool = False
    releases: tuple[str, ...] | None = None
    attest: AttestOptions | None = None


@dataclass(frozen=True)
class Plan:
    """What a run works on: the packages in their graph, each one's platforms."""

    graph: PackageGraph
    platforms: tuple[tuple[Platform, ...], ...]
    requested: tuple[Platform, ...] | None
    # Why each package builds its platforms (events.PlatformsChosen's reason).
    reasons: tuple[str, ...] = ()
    # Left out: build.yml lists no arches and no platforms were asked for (as linuxkit does).
    skipped: tuple[Package, ...] = ()

    @property
    def packages(self) -> tuple[Package, ...]:
        return self.graph.packages


def plan_run(
    packages: Sequence[Package], options: RunOptions, labels: Sequence[str] | None = None
) -> Plan:
    """Order and check every package before any work (`InputError` for a cycle, or for
    platforms a package's arches exclude). `labels` name the packages in reports (default:
    ORG/IMAGE); a directory given twice is one package. Without `options.platforms`, a
    package whose build.yml lists no arches (or only skipped ones) is skipped, not an error
    (linuxkit's rule)."""
    requested = options.platforms or None
    skipped: tuple[Package, ...] = ()
    if requested is None:
        skip = options.skip_platforms
        keep = [n for n, p in enumerate(packages) if target_platforms(p, None, skip)]
        skipped = tuple(p for n, p in enumerate(packages) if n not in keep)
        packages = [packages[number] for number in keep]
        labels = None if labels is None else [labels[number] for number in keep]
    graph = package_graph(packages, labels)
    choices = [choose_platforms(p, requested, options.skip_platforms) for p in graph.packages]
    return Plan(
        graph,
        tuple(tuple(c.platforms) for c in choices),
        requested,
        reasons=tuple(c.reason for c in choices),
        skipped=skipped,
    )
