"""A package: its parsed build.yml, where it lives, and its content hash — the tag.

`load_packages` is the one way to get packages: it parses every build.yml first (so bad input
fails before any git or build work), then hashes all package and extra-source directories in
one batch (a constant number of git processes for any number of packages).

Tags follow the seed: `ORG/IMAGE:HASH` for the multi-arch index, `ORG/IMAGE:HASH-ARCH` per
architecture. `--hash` overrides HASH; build.yml `tag` is a template around HASH.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from lkpkg.errors import BuildYmlError, InputError
from lkpkg.package import tagtemplate
from lkpkg.package.buildargs import (
    BuildArg,
    expand,
    package_dirs,
    parse_build_arg,
    read_build_arg_file,
)
from lkpkg.package.buildyml import BuildSpec, parse_build_yml, tag_template_problem
from lkpkg.package.deptag import TagMode, fold_run
from lkpkg.package.git import GitHead, head, repository_top
from lkpkg.package.treehash import TreeHash, combine, hash_directories
from lkpkg.reference import Reference, is_valid_tag, validate_org

__all__ = ["BUILD_YML", "GitHead", "Package", "TagMode", "load_packages"]

BUILD_YML = "build.yml"


@dataclass(frozen=True)
class Package:
    directory: Path
    spec: BuildSpec
    org: str
    hash: str
    dirty: bool
    head: GitHead | None
    # The package directories its `@lkt:` build args name, each with why (for the graph).
    arg_dependencies: tuple[tuple[Path, str], ...] = ()
    # build.yml's buildArgs with `@lkt:pkg:PATH` resolved to that package's ORG/IMAGE:TAG — as
    # this run names it when the package is part of the run (so --org and --hash reach it).
    build_args: tuple[tuple[str, str], ...] = ()
    # A `--tag` template that replaces build.yml's `tag:` for this run.
    tag_template: str | None = None
    # `ORG/IMAGE:TAG` of each package its `@lkt:` build args name, as resolved for this run
    # (recorded in the image, pipeline/dependencies.py, to say when one has moved since).
    dependencies: tuple[str, ...] = ()
    # The content hash HASH comes from (tree, extra sources, with --tag-mode=deps the
    # dependencies' too), whatever --hash says: what a dependent folds in (package/deptag).
    content: TreeHash | None = None

    @property
    def tag(self) -> str:
        template = self.tag_template if self.tag_template is not None else self.spec.tag_template
        try:
            return tagtemplate.parse(template).render(self.hash)
        except tagtemplate.TemplateError as error:
            raise InputError(f"{self.spec.display_path}: tag template: {error}") from error

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


def _git_heads(
    directories: Sequence[Path], known: Mapping[Path, GitHead | None]
) -> dict[Path, GitHead | None]:
    """HEAD commit and commit time per repository: those the hashing read (`known`), else
    one git process per repository."""
    tops = {t for t in (repository_top(d) for d in directories) if t is not None}
    return {top: known[top] if top in known else head(top) for top in tops}


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
    hash_commit: str | None = None,
    hash_path: Path | None = None,
    tag_template: str | None = None,
    check_dockerfile: bool = True,
    build_arg_files: Sequence[Path] = (),
    network: bool | None = None,
    disable_cache: bool | None = None,
    force_dirty: bool = False,
    tag_mode: TagMode = TagMode.TREE,
    _resolving: frozenset[Path] = frozenset(),
) -> list[Package]:
    """Load packages in argument order, hashing them all in one batch.

    As `linuxkit pkg` does: `org` replaces build.yml's org, `hash_override` the content hash,
    `tag_template` build.yml's `tag:`; `hash_commit` hashes the tree of that commit instead
    of the working tree (never dirty); `hash_path` hashes that directory, a parent of every
    package, instead of the package's own. `check_dockerfile=False` is for `show-tag`, which
    needs only build.yml and git. `build_arg_files` (`--build-arg-file`) add build args to
    every package, overriding build.yml's. `network`, `disable_cache` override build.yml's;
    `force_dirty` treats every package as dirty. `tag_mode=TagMode.DEPS` folds each
    package's dependencies' hashes into its own (package/deptag; opt-in, never linuxkit's).
    """
    if org is not None:
        validate_org(org)
    if hash_override is not None and not is_valid_tag(hash_override):
        raise InputError(
            f"invalid --hash '{hash_override}': must be a valid tag ([A-Za-z0-9_][A-Za-z0-9_.-]*)"
        )
    if tag_template is not None:
        problem = tag_template_problem(tag_template)
        if problem is not None:
            raise InputError(f"--tag '{tag_template}' {problem}")
    base = hash_path.resolve() if hash_path is not None else None
    specs: list[tuple[Path, BuildSpec, list[Path]]] = []
    for directory in directories:
        if not directory.is_dir():
            raise InputError(f"{directory}: no such package directory")
        if not build_yml or "/" in build_yml or build_yml in (".", ".."):
            raise InputError(f"invalid --build-yml '{build_yml}': must be a file name")
        path = directory / build_yml
        spec = parse_build_yml(path, display_path=str(path))
        # linuxkit's --network/--nonetwork and --disable-cache/--enable-cache override build.yml.
        if network is not None:
            spec = dataclasses.replace(spec, network=network)
        if disable_cache is not None:
            spec = dataclasses.replace(spec, disable_cache=disable_cache)
        # A package with no arches is skipped by build, so its Dockerfile is not needed.
        if check_dockerfile and spec.arches:
            check_dockerfile_exists(directory, spec)
        real = directory.resolve()
        if base is not None and not real.is_relative_to(base):
            raise InputError(f"--hash-path {hash_path} is not a parent of the package {directory}")
        specs.append((real, spec, _resolve_extra(spec, real)))

    to_hash: list[Path] = []
    for directory, _, extras in specs:
        to_hash.append(base or directory)
        to_hash.extend(extras)
    # Hashed even with --hash: dirtiness still decides the revision label and push rules.
    unique = list(dict.fromkeys(to_hash))
    hashed = hash_directories(unique, commit=hash_commit)
    hashes: dict[Path, TreeHash] = dict(zip(unique, hashed.trees, strict=True))
    heads = _git_heads([d for d, _, _ in specs], hashed.heads)

    packages: list[Package] = []
    for directory, spec, extras in specs:
        top = repository_top(directory)
        head_ = heads.get(top) if top is not None else None
        combined = combine(hashes[base or directory], [hashes[e] for e in extras])
        if force_dirty:  # linuxkit's --force-dirty
            combined = dataclasses.replace(combined, dirty=True)
        value = hash_override if hash_override is not None else combined.tag
        package = Package(
            directory,
            spec,
            org or spec.org,
            value,
            combined.dirty,
            head_,
            tag_template=tag_template,
            content=combined,
        )
        # Catch a tag template or org that yields an invalid reference before any work.
        package.reference()
        packages.append(package)
    extra = [arg for path in build_arg_files for arg in read_build_arg_file(path)]
    resolving = _resolving | {p.directory for p in packages}
    # A dependency-aware HASH folds its dependencies' at the same commit (--hash-commit).
    commit = hash_commit if tag_mode is TagMode.DEPS else None
    wanted, known = _dependencies(packages, resolving, extra, tag_mode, commit)
    if tag_mode is TagMode.DEPS:

        def load(dirs: list[Path], now: frozenset[Path]) -> list[Package]:
            return load_packages(
                dirs, check_dockerfile=False, hash_commit=commit, tag_mode=tag_mode, _resolving=now
            )

        # The build args first name dependencies by their tree tags: what FROM lines need to
        # find sibling packages (by repository); they are resolved again once folded.
        first = _resolve_args(packages, wanted, known)
        packages = fold_run(
            first,
            known,
            build_yml=build_yml,
            org=org,
            hash_overridden=hash_override is not None,
            resolving=resolving,
            load=load,
        )
    return _resolve_args(packages, wanted, known)


def check_dockerfile_exists(directory: Path, spec: BuildSpec) -> None:
    """What linuxkit checks when it builds (not for show-tag): the Dockerfile is a file."""
    dockerfile = directory / spec.dockerfile
    try:
        found = dockerfile.is_file()
    except OSError as error:  # a name too long for the file system, say
        raise BuildYmlError(
            spec.display_path, None, f"dockerfile '{spec.dockerfile}': {error.strerror}"
        ) from error
    if not found:
        raise InputError(
            f"{spec.display_path}: dockerfile '{spec.dockerfile}' not found in {directory}"
        )


_Wanted = dict[Path, list[tuple[BuildArg, list[Path]]]]


def _dependencies(
    packages: list[Package],
    resolving: frozenset[Path],
    extra: Sequence[BuildArg],
    tag_mode: TagMode,
    hash_commit: str | None,
) -> tuple[_Wanted, dict[Path, Package]]:
    """Every `@lkt:` build arg of each package (buildargs) with the directories it names,
    and the packages those are: of this run by what the run calls them, others by loading
    them (in one batch, with their own org and hash, as linuxkit does). `extra` (from
    --build-arg-file) follows build.yml's args and so overrides them."""
    by_directory = {p.directory: p for p in packages}
    wanted: _Wanted = {}
    outside: list[Path] = []
    for package in packages:
        spec = package.spec
        lines = spec.build_arg_lines if len(spec.build_arg_lines) == len(spec.build_args) else ()
        own = [
            parse_build_arg(
                line,
                package.directory,
                f"{spec.display_path}:{lines[number]}" if lines else spec.display_path,
            )
            for number, line in enumerate(spec.build_args)
        ]
        entries = [(arg, package_dirs(arg)) for arg in [*own, *extra]]
        wanted[package.directory] = entries
        for _, targets in entries:
            for target in targets:
                if target in by_directory or target in outside:
                    continue
                if target in resolving:
                    raise InputError(
                        f"{package.spec.display_path}: @lkt:pkg: dependency cycle through {target}"
                    )
                outside.append(target)
    if outside:
        loaded = load_packages(
            outside,
            check_dockerfile=False,
            hash_commit=hash_commit,
            tag_mode=tag_mode,
            _resolving=resolving | set(outside),
        )
        by_directory.update({p.directory: p for p in loaded})
    return wanted, by_directory


def _resolve_args(
    packages: Sequence[Package], wanted: _Wanted, by_directory: dict[Path, Package]
) -> list[Package]:
    """`packages` with their `@lkt:` build args naming the tags `by_directory` gives."""
    by_directory = {**by_directory, **{p.directory: p for p in packages}}
    resolved: list[Package] = []
    for package in packages:
        args: list[tuple[str, str]] = []
        needs: list[tuple[Path, str]] = []
        deps: list[str] = []
        for arg, targets in wanted[package.directory]:
            named = [by_directory[t] for t in targets]
            args.extend(expand(arg, [(d.repository, f"{d.repository}:{d.tag}") for d in named]))
            needs.extend((t, f"buildArgs {arg.key}={arg.value}") for t in targets)
            deps.extend(
                f"{d.repository}:{d.tag}" for d in named if f"{d.repository}:{d.tag}" not in deps
            )
        resolved.append(
            dataclasses.replace(
                package,
                build_args=tuple(args),
                arg_dependencies=tuple(needs),
                dependencies=tuple(deps),
            )
        )
    return resolved
