"""Dependency-aware tags: the opt-in `--tag-mode=deps` (`LKPKG_TAG_MODE=deps`, make `TAG_MODE`).

By default a package's HASH is its own tree (with its extra sources folded in): linuxkit's
rule, byte for byte. A new commit to a package it builds on then leaves its tag unchanged;
lkpkg says so (pipeline/dependencies.py) but does not rebuild. In `deps` mode the HASH is the
package's own hash folded with the HASH of each of its dependencies, in the way linuxkit folds
`extra-sources` (treehash.combine): the SHA-1 of the hex ids concatenated, the package's own
first, then its dependencies

1. in the order build.yml's `buildArgs` (then `--build-arg-file`) name them with `@lkt:pkg:`
   / `@lkt:pkgs:` (a glob in its sorted expansion order), then
2. in the order the Dockerfile's `FROM` lines name a sibling package (a directory beside it
   holding a build file, named by its ORG/IMAGE as build.yml or the run's --org gives it),

each dependency once. A dependency's own HASH is dependency-aware too (they are folded in
topological order), so a commit to a base changes the tag of everything built on it, however
deep. A package without dependencies has the same tag in both modes. The result is dirty when
the package or any dependency is; `--hash` still replaces the HASH. A cycle is refused.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable, Mapping, Sequence
from graphlib import CycleError, TopologicalSorter
from pathlib import Path
from typing import TYPE_CHECKING

from lkpkg.errors import InputError, LkpkgError
from lkpkg.package.buildyml import parse_build_yml
from lkpkg.package.treehash import TreeHash, combine
from lkpkg.reference import Reference

if TYPE_CHECKING:
    from lkpkg.package.model import Package


class TagMode(enum.Enum):
    """What a package's HASH is: its own tree (linuxkit's), or that folded with its
    dependencies' (`deps`)."""

    TREE = "tree"
    DEPS = "deps"

    @classmethod
    def parse(cls, value: str, origin: str = "--tag-mode") -> TagMode:
        try:
            return cls(value.strip().lower())
        except ValueError:
            choices = ", ".join(m.value for m in cls)
            raise InputError(f"{origin} '{value}': choose one of {choices}") from None


def fold(own: TreeHash, dependencies: Sequence[TreeHash]) -> TreeHash:
    """`own` folded with its dependencies' hashes, in order (the module docstring's rule)."""
    return combine(own, dependencies)


def _name(text: str) -> str | None:
    try:
        return Reference.parse(text).name
    except LkpkgError:
        return None  # an unresolved ARG, a stage-like word: not a package


class _Siblings:
    """Package directories beside a package, by the repository names they build under
    (build.yml's org and the run's --org); each parent directory is read once."""

    def __init__(self, build_yml: str, org: str | None) -> None:
        self._build_yml = build_yml
        self._org = org
        self._by_parent: dict[Path, dict[str, Path]] = {}

    def names(self, parent: Path) -> Mapping[str, Path]:
        if parent not in self._by_parent:
            found: dict[str, Path] = {}
            for candidate in sorted(p for p in parent.iterdir() if p.is_dir()):
                path = candidate / self._build_yml
                if not path.is_file():
                    continue
                try:
                    spec = parse_build_yml(path, display_path=str(path))
                except LkpkgError:
                    continue  # not ours to report: it is only a neighbour
                for org in dict.fromkeys(o for o in (spec.org, self._org) if o):
                    name = _name(f"{org}/{spec.image}")
                    if name is not None:
                        found.setdefault(name, candidate.resolve())
            self._by_parent[parent] = found
        return self._by_parent[parent]

    def of(self, package: Package) -> list[Path]:
        """The sibling packages `package`'s Dockerfile names in FROM, in FROM order."""
        # Imported here: buildinfo and the builders' parser import the package model.
        from lkpkg.builders.dockerfile import from_images
        from lkpkg.package.buildinfo import build_args

        dockerfile = package.directory / package.spec.dockerfile
        if not dockerfile.is_file():
            return []
        images = from_images(dockerfile, build_args(package))
        names = [n for n in (_name(i) for i in images) if n is not None]
        if not names:
            return []
        siblings = self.names(package.directory.parent)
        found = [siblings[n] for n in names if n in siblings]
        return [d for d in dict.fromkeys(found) if d != package.directory]


def dependency_dirs(package: Package, siblings: _Siblings) -> list[Path]:
    """The directories whose HASH `package`'s is folded with, in the documented order."""
    named = [target for target, _ in package.arg_dependencies]
    ordered = dict.fromkeys([*named, *siblings.of(package)])
    return [d for d in ordered if d != package.directory]


def fold_run(
    packages: Sequence[Package],
    known: dict[Path, Package],
    *,
    build_yml: str,
    org: str | None,
    hash_overridden: bool,
    resolving: frozenset[Path],
    load: Callable[[list[Path], frozenset[Path]], list[Package]],
) -> list[Package]:
    """`packages` with dependency-aware hashes (build args not yet re-resolved: the caller
    does it with `known`, which this fills with every dependency and the folded packages).

    `known` holds the packages already loaded (dependency-aware themselves); `load` loads
    more (sibling packages outside the run), given the directories and the set being
    resolved, so that a cycle through packages outside the run is refused.
    """
    siblings = _Siblings(build_yml, org)
    run = {p.directory: p for p in packages}
    needs = {p.directory: dependency_dirs(p, siblings) for p in packages}
    missing: list[Path] = []
    for package in packages:
        for target in needs[package.directory]:
            if target in known or target in run or target in missing:
                continue
            if target in resolving:
                raise InputError(
                    f"{package.spec.display_path}: FROM dependency cycle through {target}"
                )
            missing.append(target)
    if missing:
        loaded = load(missing, resolving | set(missing))
        known.update({p.directory: p for p in loaded})

    sorter: TopologicalSorter[Path] = TopologicalSorter()
    for directory in run:
        sorter.add(directory, *[d for d in needs[directory] if d in run])
    try:
        order = list(sorter.static_order())
    except CycleError as error:
        cycle = [run[d].repository for d in reversed(error.args[1])]
        raise InputError(f"dependency cycle between packages: {' -> '.join(cycle)}") from None

    for directory in order:
        package = run[directory]
        own = package.content
        assert own is not None  # load_packages sets it
        parts = [_content(known, run, d) for d in needs[directory]]
        content = fold(own, parts)
        folded = dataclasses.replace(
            package,
            content=content,
            hash=package.hash if hash_overridden else content.tag,
            dirty=content.dirty,
        )
        run[directory] = folded
        known[directory] = folded
    return [run[p.directory] for p in packages]


def _content(known: Mapping[Path, Package], run: Mapping[Path, Package], d: Path) -> TreeHash:
    package = run.get(d) or known[d]
    assert package.content is not None
    return package.content
