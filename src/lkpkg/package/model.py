"""A package: its parsed build.yml, where it lives, and its content hash — the tag.

`load_packages` is the one way to get packages: it parses every build.yml first (so bad input
fails before any git or build work), then hashes all package and extra-source directories in
one batch (a constant number of git processes for any number of packages).

Tags follow the seed: `ORG/IMAGE:HASH` for the multi-arch index, `ORG/IMAGE:HASH-ARCH` per
architecture. `--hash` overrides HASH; build.yml `tag` is a template around HASH.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lkpkg.errors import InputError
from lkpkg.package.buildyml import BuildSpec, parse_build_yml, validate_org_override
from lkpkg.package.treehash import TreeHash, combine, repository_top, tree_hashes
from lkpkg.reference import Reference, is_valid_tag

BUILD_YML = "build.yml"
LKT_PKG = "@lkt:pkg:"


@dataclass(frozen=True)
class GitHead:
    commit: str
    time: int


@dataclass(frozen=True)
class Package:
    directory: Path
    spec: BuildSpec
    org: str
    hash: str
    dirty: bool
    head: GitHead | None
    # build.yml's buildArgs with `@lkt:pkg:PATH` resolved to that package's ORG/IMAGE:TAG — as
    # this run names it when the package is part of the run (so --org and --hash reach it).
    build_args: tuple[tuple[str, str], ...] = ()

    @property
    def tag(self) -> str:
        return self.spec.render_tag(self.hash)

    @property
    def repository(self) -> str:
        return f"{self.org}/{self.spec.image}"

    def reference(self) -> Reference:
        """`ORG/IMAGE:TAG`, the multi-arch index."""
        return Reference.parse(f"{self.repository}:{self.tag}")

    def arch_reference(self, arch: str) -> Reference:
        """`ORG/IMAGE:TAG-ARCH`, one architecture's image."""
        return Reference.parse(f"{self.repository}:{self.tag}-{arch}")

    @property
    def revision(self) -> str | None:
        """The commit a clean package was built from (label org.opencontainers.image.revision)."""
        return None if self.dirty or self.head is None else self.head.commit


def _git_heads(directories: Sequence[Path]) -> dict[Path, GitHead | None]:
    """HEAD commit and commit time per repository: one git process per repository."""
    heads: dict[Path, GitHead | None] = {}
    for top in {t for t in (repository_top(d) for d in directories) if t is not None}:
        result = subprocess.run(
            ["git", "-C", str(top), "log", "-1", "--format=%H %ct", "HEAD"],
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"},
        )
        if result.returncode != 0:
            heads[top] = None  # an unborn HEAD: no commit yet
            continue
        commit, _, when = result.stdout.strip().partition(" ")
        heads[top] = GitHead(commit, int(when))
    return heads


def _resolve_extra(spec: BuildSpec, package_dir: Path) -> list[Path]:
    dirs = []
    for source in spec.extra_sources:
        src = Path(source.src)
        path = src if src.is_absolute() else package_dir / src
        if not path.is_dir():
            raise InputError(
                f"{spec.display_path}: extra-sources '{source.src}' is not a directory"
            )
        dirs.append(path.resolve())
    return dirs


def load_packages(
    directories: Sequence[Path],
    *,
    org: str | None = None,
    hash_override: str | None = None,
    build_yml: str = BUILD_YML,
    _resolving: frozenset[Path] = frozenset(),
) -> list[Package]:
    """Load packages in argument order, hashing them all in one batch."""
    if org is not None:
        validate_org_override(org)
    if hash_override is not None and not is_valid_tag(hash_override):
        raise InputError(
            f"invalid --hash '{hash_override}': must be a valid tag ([A-Za-z0-9_][A-Za-z0-9_.-]*)"
        )
    specs: list[tuple[Path, BuildSpec, list[Path]]] = []
    for directory in directories:
        if not directory.is_dir():
            raise InputError(f"{directory}: no such package directory")
        path = directory / build_yml
        if not path.is_file():
            raise InputError(
                f"{path}: no {build_yml} here; a package needs a Dockerfile and a {build_yml}"
            )
        spec = parse_build_yml(path, display_path=str(path))
        dockerfile = directory / spec.dockerfile
        if not dockerfile.is_file():
            raise InputError(f"{path}: dockerfile '{spec.dockerfile}' not found in {directory}")
        specs.append((directory.resolve(), spec, _resolve_extra(spec, directory.resolve())))

    to_hash: list[Path] = []
    for directory, _, extras in specs:
        to_hash.append(directory)
        to_hash.extend(extras)
    # Hashed even with --hash: dirtiness still decides the revision label and push rules.
    unique = list(dict.fromkeys(to_hash))
    hashes: dict[Path, TreeHash] = dict(zip(unique, tree_hashes(unique), strict=True))
    heads = _git_heads([d for d, _, _ in specs])

    packages: list[Package] = []
    for directory, spec, extras in specs:
        top = repository_top(directory)
        head = heads.get(top) if top is not None else None
        combined = combine(hashes[directory], [hashes[e] for e in extras])
        value = hash_override if hash_override is not None else combined.tag
        package = Package(directory, spec, org or spec.org, value, combined.dirty, head)
        # Catch a tag template or org that yields an invalid reference before any work.
        package.reference()
        packages.append(package)
    return _with_build_args(packages, _resolving | {p.directory for p in packages})


def lkt_target(package: Package, value: str) -> Path | None:
    """The package directory an `@lkt:pkg:PATH` build arg value names, or None."""
    if not value.startswith(LKT_PKG):
        return None
    return (package.directory / value[len(LKT_PKG) :]).resolve()


def _with_build_args(packages: list[Package], resolving: frozenset[Path]) -> list[Package]:
    """Resolve every `@lkt:pkg:` build arg: packages of this run by what the run calls them,
    others by loading them (in one batch, with their own org and hash, as linuxkit does)."""
    by_directory = {p.directory: p for p in packages}
    outside: list[Path] = []
    for package in packages:
        for _, value in package.spec.build_arg_pairs:
            target = lkt_target(package, value)
            if target is not None and target not in by_directory and target not in outside:
                if target in resolving:
                    raise InputError(
                        f"{package.spec.display_path}: @lkt:pkg: dependency cycle through {target}"
                    )
                outside.append(target)
    if outside:
        loaded = load_packages(outside, _resolving=resolving | set(outside))
        by_directory.update({p.directory: p for p in loaded})
    resolved: list[Package] = []
    for package in packages:
        args = []
        for key, value in package.spec.build_arg_pairs:
            target = lkt_target(package, value)
            if target is not None:
                dependency = by_directory[target]
                value = f"{dependency.repository}:{dependency.tag}"
            args.append((key, value))
        resolved.append(dataclasses.replace(package, build_args=tuple(args)))
    return resolved
