"""Build args as linuxkit reads them: build.yml `buildArgs`, `--build-arg-file`, `@lkt:` values.

linuxkit (pkglib/buildarg.go) turns a `KEY=VALUE` whose value starts with `@lkt:` into build
args naming other packages:

* `KEY=@lkt:pkg:PATH` → `KEY=ORG/IMAGE:TAG` of the package at PATH;
* `KEY%=@lkt:pkgs:GLOB` → one arg per package directory matching GLOB (sorted, directories
  only, names starting with `.` skipped), its key with `%` replaced by the package's
  `ORG/IMAGE` upper-cased, `/` and `-` as `_` (`DEP%` → `DEPLINUXKIT_DEP_A`). A key without `%`
  or a glob matching nothing is an error;
* any other `@lkt:` value is an error.

PATH and GLOB are relative to the directory of the file that holds them (the build.yml, or the
build-arg file), or absolute. A `--build-arg-file` holds one `KEY=VALUE` per line (trimmed);
its args apply to every package of the run and override build.yml's.
"""

from __future__ import annotations

import glob
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lkpkg.errors import InputError

LKT = "@lkt:"
LKT_PKG = "@lkt:pkg:"
LKT_PKGS = "@lkt:pkgs:"
STEM = "%"
# A build-arg file is read whole; this bounds it (linuxkit's lines are a few dozen bytes).
MAX_BUILD_ARG_FILE_BYTES = 1 << 20


@dataclass(frozen=True)
class BuildArg:
    """One `KEY=VALUE` as written, with the directory its `@lkt:` paths are relative to."""

    key: str
    value: str
    anchor: Path
    where: str  # the file it came from, for messages

    @property
    def names_packages(self) -> bool:
        return self.value.startswith(LKT)


def parse_build_arg(line: str, anchor: Path, where: str) -> BuildArg:
    key, equals, value = line.partition("=")
    if not equals:
        raise InputError(f"{where}: invalid build-arg {line!r}, must be in format 'arg=value'")
    return BuildArg(key, value, anchor, where)


def read_build_arg_file(path: Path) -> list[BuildArg]:
    """The build args of a `--build-arg-file`, in order."""
    try:
        with path.open("rb") as stream:
            data = stream.read(MAX_BUILD_ARG_FILE_BYTES + 1)
    except OSError as error:
        raise InputError(f"error opening build args file {path}: {error.strerror}") from error
    if len(data) > MAX_BUILD_ARG_FILE_BYTES:
        raise InputError(f"{path}: build args file larger than {MAX_BUILD_ARG_FILE_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InputError(f"{path}: build args file is not valid UTF-8") from error
    anchor = path.resolve().parent
    return [
        parse_build_arg(line.strip(), anchor, f"{path}:{number}")
        for number, line in enumerate(text.splitlines(), start=1)
    ]


def package_dirs(arg: BuildArg) -> list[Path]:
    """The package directories an `@lkt:` value names (none for a plain value)."""
    if arg.value.startswith(LKT_PKG):
        named = _absolute(arg.value[len(LKT_PKG) :], arg.anchor)
        if not named.is_dir():
            raise InputError(f"{arg.where}: {arg.key}={arg.value}: no package directory {named}")
        return [named]
    if arg.value.startswith(LKT_PKGS):
        if STEM not in arg.key:
            raise InputError(
                f"{arg.where}: invalid build arg key {arg.key!r}, must contain a '{STEM}'"
            )
        pattern = str(_absolute(arg.value[len(LKT_PKGS) :], arg.anchor, resolve=False))
        try:
            matches = sorted(glob.glob(pattern))  # noqa: PTH207 - an absolute pattern
        except (OSError, ValueError) as error:
            raise InputError(f"{arg.where}: error globbing package path {pattern!r}") from error
        found = [Path(m).resolve() for m in matches if Path(m).is_dir()]
        found = [m for m in found if not m.name.startswith(".")]
        if not found:
            raise InputError(f"{arg.where}: no packages found matching path {pattern!r}")
        return list(dict.fromkeys(found))
    if arg.value.startswith(LKT):
        raise InputError(f"{arg.where}: unknown linuxkit build arg value {arg.value!r}")
    return []


def stem_key(key: str, repository: str) -> str:
    """`DEP%` for `linuxkit/dep-a` → `DEPLINUXKIT_DEP_A`, as linuxkit names a glob's args."""
    return key.replace(STEM, repository.replace("/", "_").replace("-", "_").upper())


def expand(arg: BuildArg, tags: Sequence[tuple[str, str]]) -> list[tuple[str, str]]:
    """`arg` as (key, value) pairs, given `(ORG/IMAGE, ORG/IMAGE:TAG)` of the packages that
    `package_dirs(arg)` named, in that order."""
    if arg.value.startswith(LKT_PKGS):
        return [(stem_key(arg.key, repository), tag) for repository, tag in tags]
    if arg.value.startswith(LKT_PKG):
        return [(arg.key, tags[0][1])]
    return [(arg.key, arg.value)]


def _absolute(path: str, anchor: Path, *, resolve: bool = True) -> Path:
    joined = Path(path) if path.startswith("/") else anchor / path
    return joined.resolve() if resolve else joined
