"""Which packages of a run need which others built first.

A package depends on another package of the same run when
- a build.yml `buildArgs` value is `@lkt:pkg:PATH` (linuxkit's syntax, PATH relative to the
  package directory) and PATH is that package's directory; or
- its Dockerfile has a `FROM` naming that package's repository (ORG/IMAGE, any tag or digest:
  a pinned `FROM linuxkit/alpine:<hash>` is linuxkit's own idiom), as `from_images` reads it
  with the package's build args.

Packages outside the run are never waited for: `@lkt:pkg:` pointing elsewhere only resolves
to that package's tag when the build runs, and a `FROM` of an image nobody in the run builds
is the builder's business. Making the graph spawns no process (a no-op rebuild pays for it
too): the Dockerfiles are read here and everything else comes from the loaded packages.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lkpkg.builders.dockerfile import from_images
from lkpkg.errors import InputError, LkpkgError
from lkpkg.package.model import Package, lkt_target
from lkpkg.pipeline.build import DEFAULT_SOURCE
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


def _arg_values(package: Package) -> dict[str, str]:
    """The build args a Dockerfile's FROM lines see, as far as they name images: linuxkit's
    automatic ones that can appear in an image name, then build.yml's (resolved at load)."""
    values = {
        "SOURCE": package.spec.gitrepo or DEFAULT_SOURCE,
        "PKG_HASH": package.hash,
        "PKG_IMAGE": package.repository,
    }
    values.update(package.build_args)
    return values


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
        for key, value in package.spec.build_arg_pairs:
            target = lkt_target(package, value)
            if target is not None and target in by_directory and by_directory[target] != number:
                found.setdefault(by_directory[target], f"buildArgs {key}={value}")
        dockerfile = package.directory / package.spec.dockerfile
        for image in from_images(dockerfile, _arg_values(package)):
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

    Depth-first from each package in argument order, needs in index order, so the same input
    always names the same cycle.
    """
    unvisited, in_progress, finished = 0, 1, 2
    state = [unvisited] * len(graph.packages)
    for root in range(len(graph.packages)):
        if state[root] != unvisited:
            continue
        path = [root]
        pending = [iter(sorted(graph.needs(root)))]
        state[root] = in_progress
        while pending:
            step = next(pending[-1], None)
            if step is None:
                state[path.pop()] = finished
                pending.pop()
            elif state[step] == in_progress:
                return [*path[path.index(step) :], step]
            elif state[step] == unvisited:
                state[step] = in_progress
                path.append(step)
                pending.append(iter(sorted(graph.needs(step))))
    return None
