"""Commands for the make interface: `lkpkg init` writes a package (or a tree's Makefile),
`lkpkg makefile` says where the makefiles that Makefile includes are installed."""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path

import click

from lkpkg.errors import EnvironmentProblem, InputError
from lkpkg.reference import repository_path_problem, validate_org

PACKAGE_MAKEFILE = "lkpkg.mk"
TREE_MAKEFILE = "lkpkg-tree.mk"


def makefile_path(*, tree: bool) -> Path:
    """The installed lkpkg.mk (or lkpkg-tree.mk), as an absolute path make can include."""
    name = TREE_MAKEFILE if tree else PACKAGE_MAKEFILE
    resource = resources.files("lkpkg.make").joinpath(name)
    if not isinstance(resource, Path) or not resource.is_file():
        raise EnvironmentProblem(
            f"{name} is not installed as a file next to lkpkg (found {resource}); reinstall lkpkg"
        )
    path = resource.resolve()
    if any(c.isspace() for c in str(path)):
        raise EnvironmentProblem(
            f"{path}: make cannot include a file whose path holds whitespace; "
            "install lkpkg elsewhere"
        )
    return path


def makefile_text(*, tree: bool) -> str:
    """The two-line Makefile of a package (or of a tree of packages)."""
    flag = " --tree" if tree else ""
    return f"LKPKG ?= lkpkg\ninclude $(shell $(LKPKG) makefile{flag})\n"


def dockerfile_text(image: str) -> str:
    name = image.rsplit("/", 1)[-1]  # [a-z0-9._-]: safe in a shell word and a file name
    return f"""\
# A multi-stage build, as LinuxKit packages are made: tools live in the build stage, only its
# result goes into the image. FROM images are found in lkpkg's cache (no network in builds).
FROM localhost/debian:bookworm AS build
RUN mkdir -p /out/etc && echo "{image}, built by lkpkg" > /out/etc/{name}-release

FROM scratch
COPY --from=build /out/ /
"""


# A plain YAML scalar that reads back as this very string (not a number, bool or null).
_PLAIN_SCALAR = re.compile(r"[a-z][a-z0-9._/:-]*")
_YAML_WORDS = frozenset({"null", "true", "false", "yes", "no", "on", "off", "y", "n"})


def _yaml_string(value: str) -> str:
    if _PLAIN_SCALAR.fullmatch(value) and value not in _YAML_WORDS:
        return value
    return json.dumps(value)  # a JSON string is a YAML double-quoted scalar


def build_yml_text(image: str, org: str | None) -> str:
    lines = [
        "# linuxkit's build.yml (see lkpkg's docs/reference.md).",
        f"image: {_yaml_string(image)}",
        f"org: {_yaml_string(org)}"
        if org
        else "# org: linuxkit   # may carry a registry: localhost:5000/wombat",
        "arches:",
        "  - amd64",
        "  - arm64",
    ]
    return "\n".join(lines) + "\n"


def _image_name(directory: Path, image: str | None) -> str:
    if image is not None:
        problem = repository_path_problem(image)
        if problem is not None:
            raise InputError(f"init: invalid --image '{image}': {problem}")
        return image
    name = directory.resolve().name
    problem = repository_path_problem(name)
    if problem is not None:
        raise InputError(
            f"init: directory name '{name}' is not a valid image name ({problem}); "
            "pass --image NAME"
        )
    return name


def _write_new(files: dict[Path, str]) -> None:
    """Write every file, or none: refuse when any exists."""
    existing = [str(path) for path in files if path.exists() or path.is_symlink()]
    if existing:
        raise InputError(
            f"init: {', '.join(existing)} already exist{'s' if len(existing) == 1 else ''}; "
            "not overwriting (nothing was written)"
        )
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        # "x": a file that appears meanwhile is not overwritten either.
        with path.open("x", encoding="utf-8") as out:
            out.write(text)
        click.echo(str(path))


@click.command()
@click.option(
    "--image", help="Image name for build.yml (default: the directory's name); with DIR only."
)
@click.option("--org", help="Org for build.yml (default: linuxkit's); with DIR only.")
@click.option(
    "--tree",
    is_flag=True,
    help="Write DIR/Makefile for a tree of packages (every subdirectory with a build.yml).",
)
@click.argument("directory", type=click.Path(path_type=Path))
def init(image: str | None, org: str | None, tree: bool, directory: Path) -> None:
    """Write a package skeleton in DIRECTORY: Dockerfile, build.yml and a Makefile that gives
    the seed's make targets (tag, push, show-tag, forcetag, forcepush; default: push and sign).

    \b
    Existing files are never overwritten. Prints the files written.
    Examples:
      lkpkg init pkg/hello && make -C pkg/hello ORG=wombat NOTRUST=1 tag
      lkpkg init --image hello --org localhost:5000/wombat pkg/hello-world
      lkpkg init --tree pkg && make -C pkg show-tag
    """
    if directory.exists() and not directory.is_dir():
        raise InputError(f"init: {directory} exists and is not a directory")
    if tree:
        if image is not None or org is not None:
            raise InputError("init: --image and --org describe a package, not --tree")
        _write_new({directory / "Makefile": makefile_text(tree=True)})
        return
    name = _image_name(directory, image)
    if org is not None:
        validate_org(org)
    _write_new(
        {
            directory / "Dockerfile": dockerfile_text(name),
            directory / "build.yml": build_yml_text(name, org),
            directory / "Makefile": makefile_text(tree=False),
        }
    )


@click.command()
@click.option("--tree", is_flag=True, help="The makefile for a tree of packages instead.")
def makefile(tree: bool) -> None:
    """Print the absolute path of the installed lkpkg.mk (or lkpkg-tree.mk with --tree).

    \b
    A package's Makefile includes it:
      LKPKG ?= lkpkg
      include $(shell $(LKPKG) makefile)
    """
    click.echo(str(makefile_path(tree=tree)))
