"""Which packages of a run need which others built first.

A package depends on another package of the same run when
- a build.yml `buildArgs` value is `@lkt:pkg:PATH` (linuxkit's syntax, PATH relative to the
  package directory) and PATH is that package's directory; or
- its Dockerfile has a `FROM` naming that package's repository (ORG/IMAGE, any tag or digest:
  a pinned `FROM linuxkit/alpine:<hash>` is linuxkit's own idiom), as `from_images` reads it
  with the build args the build will pass (`building.build_args`, the one definition).

Packages outside the run are never waited for: `@lkt:pkg:` pointing elsewhere only resolves
to that package's tag when the build runs, and a `FROM` of an image nobody in the run builds
is the builder's business. Making the graph spawns no process (a no-op rebuild pays for it
too): the Dockerfiles are read here (not for a run of one package: it has no edges) and
everything else comes from the loaded packages.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

from lkpkg.errors import InputError, LkpkgError
from lkpkg.package.model import Package
from lkpkg.pipeline.building import build_args
from lkpkg.pipeline.schedule import priority_order
from lkpkg.reference import Reference


@dataclass(frozen=True)
class Edge:
    """`needs` must be built before the package that has this edge; `why` says what said so."""

    needs: int
    why: str


@dataclass(frozen=True)
class PackageGraph:
    """Packages (in argument order), a label for each, and what each needs from the others."""

    packages: tuple[Package, ...]
    labels: tuple[str, ...]
    edges: tuple[tuple[Edge, ...], ...]

    def needs(self, index: int) -> frozenset[int]:
        return frozenset(edge.needs for edge in self.edges[index])

    def order(self) -> list[int]:
        """The order `-j 1` builds in: every package after what it needs; among packages free
        to go, the one most others wait on, then argument order."""
        return priority_order([self.needs(i) for i in range(len(self.packages))])


def _repository(image: str) -> str | None:
    try:
        return Reference.parse(image).name
    except LkpkgError:
        return None  # an unresolved ARG or a stage-like word: not something we build


def package_graph(packages: Sequence[Package], labels: Sequence[str] | None = None) -> PackageGraph:
    """The dependency graph of `packages`; `InputError` naming the cycle if there is one.

    `labels` name the packages in messages (default: ORG/IMAGE); the same directory given
    twice is one package, kept where it first appeared.
    """
    chosen: list[Package] = []
    chosen_labels: list[str] = []
    seen: set[Path] = set()
    for number, package in enumerate(packages):
        if package.directory in seen:
            continue
        seen.add(package.directory)
        chosen.append(package)
        chosen_labels.append(labels[number] if labels is not None else package.repository)

    by_directory = {package.directory: number for number, package in enumerate(chosen)}
    by_repository: dict[str, list[int]] = {}
    for number, package in enumerate(chosen):
        by_repository.setdefault(package.reference().name, []).append(number)

    edges: list[tuple[Edge, ...]] = []
    for number, package in enumerate(chosen):
        found: dict[int, str] = {}
        for target, why in package.arg_dependencies:
            if target in by_directory and by_directory[target] != number:
                found.setdefault(by_directory[target], why)
        if len(chosen) == 1:
            # Alone in the run, no FROM can name another package of it: the Dockerfile is
            # not read here (nor the Dockerfile parser imported: a re-push never needs it).
            edges.append(())
            continue
        from lkpkg.builders.dockerfile import from_images

        dockerfile = package.directory / package.spec.dockerfile
        # A package that will not build (build.yml lists no arches) may have no Dockerfile;
        # one that does build is refused at its build with build.yml's own words.
        images = from_images(dockerfile, build_args(package)) if dockerfile.is_file() else []
        for image in images:
            repository = _repository(image)
            for other in by_repository.get(repository or "", []):
                if other != number:
                    found.setdefault(other, f"FROM {image}")
        edges.append(tuple(Edge(needs, why) for needs, why in sorted(found.items())))

    graph = PackageGraph(tuple(chosen), tuple(chosen_labels), tuple(edges))
    cycle = find_cycle(graph)
    if cycle is not None:
        names = " -> ".join(graph.labels[i] for i in cycle)
        raise InputError(f"dependency cycle between packages: {names}")
    return graph


def find_cycle(graph: PackageGraph) -> list[int] | None:
    """A cycle as a path that starts and ends at the same package, or None.

    Found by `graphlib`; named from its lowest-numbered package and in the direction of
    "needs", so the same input always names the same cycle the same way.
    """
    sorter: TopologicalSorter[int] = TopologicalSorter()
    for number in range(len(graph.packages)):
        sorter.add(number, *sorted(graph.needs(number)))
    try:
        sorter.prepare()
    except CycleError as error:
        # graphlib lists each node before the one that needs it; "needs" runs the other way.
        cycle = list(reversed(error.args[1][:-1]))
        start = cycle.index(min(cycle))
        ring = cycle[start:] + cycle[:start]
        return [*ring, ring[0]]
    return None
