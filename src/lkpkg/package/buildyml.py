"""A LinuxKit package's build.yml, read as `linuxkit pkg` reads it, into a `BuildSpec`.

linuxkit (HEAD) decodes build.yml with Go's yaml.v3, unknown keys refused (`KnownFields`),
over the defaults of `NewPkgInfo()`. lkpkg does the same: the YAML is parsed into positioned
nodes (yamlnodes), decoded by Go types (schema, imageconfig), then checked here for what makes
a usable reference and build.

Invariants:
* What linuxkit accepts is accepted with the same meaning: `network: yes`, `arches:` null (no
  architectures at all), `tag: 1.10` (the text `1.10`), empty lists, merges and aliases.
  One key is lkpkg's own, documented as such: `disable-content-trust` (skip DCT for this
  package, as older linuxkit did). Every other unknown key is an error.
* lkpkg is stricter than linuxkit only where linuxkit would fail later or produce a reference
  no registry accepts: names and tags must make a valid reference, `arches` must be known
  GOARCH names, paths must stay inside the package, `buildArgs` items must be `KEY=VALUE`.
* Every problem is one `BuildYmlError(display_path, line, message)`; nothing escapes as a
  traceback. Reading is bounded: at most `MAX_BUILD_YML_BYTES`, never from a FIFO, device or
  directory, and alias expansion is bounded as in yaml.v3.
* Parsing does not touch the disk beyond build.yml: `dockerfile` is checked where it is
  built, so `show-tag` works on a package whose Dockerfile is generated.
"""

from __future__ import annotations

import errno
import os
import posixpath
import re
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn, TypeVar

from lkpkg.errors import BuildYmlError
from lkpkg.package import tagtemplate
from lkpkg.package.imageconfig import IMAGE_CONFIG
from lkpkg.package.schema import Bool as _Bool
from lkpkg.package.schema import Decoder as _Decoder
from lkpkg.package.schema import JSONValue, ListOf, Str, Struct, quote
from lkpkg.package.tagtemplate import DEFAULT_TAG_TEMPLATE
from lkpkg.package.yamlnodes import parse_document
from lkpkg.platforms import DEFAULT_ARCHES, arch_problem
from lkpkg.reference import MAX_PATH_LENGTH, is_valid_tag, org_problem, repository_path_problem
from lkpkg.reference import split_host as _split_host

__all__ = [
    "DEFAULT_ARCHES",
    "DEFAULT_ORG",
    "DEFAULT_TAG_TEMPLATE",
    "BuildSpec",
    "DockerImagesDepends",
    "ExtraSource",
    "JSONValue",
    "parse_build_yml",
    "parse_build_yml_text",
]

DEFAULT_ORG = "linuxkit"
DEFAULT_DOCKERFILE = "Dockerfile"
# linuxkit's own build.yml files are well under 2 KiB; a megabyte is generous and bounded.
MAX_BUILD_YML_BYTES = 1 << 20

_STRINGS = ListOf(Str())
_DOCKER_IMAGES = Struct(
    {"target-dir": Str(), "target": Str(), "from-file": Str(), "list": _STRINGS}
)
# linuxkit's pkgInfo, plus lkpkg's own `disable-content-trust`.
SCHEMA = Struct(
    {
        "image": Str(),
        "org": Str(),
        "tag": Str(),
        "dockerfile": Str(),
        "arches": _STRINGS,
        "extra-sources": _STRINGS,
        "gitrepo": Str(),
        "network": _Bool(),
        "disable-cache": _Bool(),
        "config": IMAGE_CONFIG,
        "buildArgs": _STRINGS,
        "depends": Struct({"docker-images": _DOCKER_IMAGES}),
        "disable-content-trust": _Bool(),
    }
)
TOP_LEVEL_KEYS: tuple[str, ...] = tuple(SCHEMA.fields)

T = TypeVar("T")

# Compiled (and kept in re's cache) by the first depends.docker-images, not by every import.
_PINNED_IMAGE = r"[^@\s]+@sha256:[0-9a-f]{64}"
_SAMPLE_HASH = "0" * 40


@dataclass(frozen=True)
class ExtraSource:
    """An `extra-sources` entry: a directory `src` (relative to the package) copied to `dst`."""

    src: str
    dst: str


@dataclass(frozen=True)
class DockerImagesDepends:
    """`depends.docker-images`: images pulled and saved into the package before it builds.

    `images` is the YAML `list`. Paths are as written, relative to the package directory.
    """

    target_dir: str | None = None
    target: str | None = None
    from_file: str | None = None
    images: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class BuildSpec:
    """A validated build.yml. `path` is None when parsed from text. Defaults are linuxkit's."""

    path: Path | None
    display_path: str
    image: str
    org: str = DEFAULT_ORG
    # Empty when build.yml says `arches:` with no value: nothing to build, as in linuxkit.
    arches: tuple[str, ...] = DEFAULT_ARCHES
    extra_sources: tuple[ExtraSource, ...] = ()
    gitrepo: str | None = None
    network: bool = False
    disable_cache: bool = False
    disable_content_trust: bool = False
    # Excluded from the hash because a dict cannot be hashed; equal specs still hash equal.
    config: dict[str, JSONValue] | None = field(default=None, hash=False)
    build_args: tuple[str, ...] = ()
    # The line of each of `build_args` in build.yml (messages say file:line); () from text
    # that had none.
    build_arg_lines: tuple[int, ...] = field(default=(), compare=False)
    dockerfile: str = DEFAULT_DOCKERFILE
    tag_template: str = DEFAULT_TAG_TEMPLATE
    depends: DockerImagesDepends | None = None

    @property
    def build_arg_pairs(self) -> list[tuple[str, str]]:
        """`build_args` split at their first `=`, in order; values may contain `=`."""
        return [(key, value) for key, _, value in (a.partition("=") for a in self.build_args)]

    def render_tag(self, hash: str) -> str:
        """The image tag for a package whose content hash is `hash`."""
        return tagtemplate.parse(self.tag_template).render(hash)


def parse_build_yml(path: Path, display_path: str | None = None) -> BuildSpec:
    """Read and validate the build.yml at `path`; errors name it as `display_path`."""
    shown = display_path if display_path is not None else str(path)
    data = _read(path, shown)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise BuildYmlError(shown, line, "is not valid UTF-8") from error
    return _Reader(text, shown).spec(path)


def parse_build_yml_text(text: str, display_path: str) -> BuildSpec:
    """Validate build.yml content; errors name it as `display_path`."""
    return _Reader(text, display_path).spec(None)


def _read(path: Path, shown: str) -> bytes:
    """build.yml's bytes; anything but a regular file of sane size gets its own message."""

    def refuse(message: str) -> NoReturn:
        raise BuildYmlError(shown, None, message)

    try:
        info = path.stat()
    except OSError as error:
        if error.errno == errno.ELOOP:
            refuse("is a symbolic link loop")
        if error.errno == errno.ENOENT and path.is_symlink():
            refuse(f"is a dangling symbolic link (to '{path.readlink()}')")
        if error.errno in (errno.ENOENT, errno.ENOTDIR):
            refuse("not found: no build.yml in this package directory")
        refuse(f"cannot read: {error.strerror or error}")
    kinds = {
        stat.S_ISDIR: "a directory",
        stat.S_ISFIFO: "a FIFO",
        stat.S_ISSOCK: "a socket",
        stat.S_ISCHR: "a character device",
        stat.S_ISBLK: "a block device",
    }
    for test, kind in kinds.items():
        if test(info.st_mode):
            refuse(f"is {kind}, not a regular file")
    if info.st_size > MAX_BUILD_YML_BYTES:
        refuse(f"is {info.st_size} bytes; a build.yml may be at most {MAX_BUILD_YML_BYTES}")
    try:
        # O_NONBLOCK: should the file be swapped for a FIFO after the check, open does not hang.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as stream:
            data = stream.read(MAX_BUILD_YML_BYTES + 1)
    except OSError as error:
        refuse(f"cannot read: {error.strerror or error}")
    if len(data) > MAX_BUILD_YML_BYTES:
        refuse(f"is larger than {MAX_BUILD_YML_BYTES} bytes")
    return data


def _config(value: object) -> dict[str, JSONValue] | None:
    return value if isinstance(value, dict) else None


def _stays_inside(path: str) -> bool:
    """Whether relative `path` names something strictly inside the package directory."""
    if not path or path.startswith("/"):
        return False
    normal = posixpath.normpath(path)
    return normal not in (".", "..") and not normal.startswith("../")


def tag_template_problem(template: str) -> str | None:
    """Why `template` (build.yml `tag:` or `--tag`) is unusable, or None."""
    try:
        sample = tagtemplate.parse(template).render(_SAMPLE_HASH)
    except tagtemplate.TemplateError as error:
        return f"is not a usable tag template: {error}"
    if not is_valid_tag(sample):
        return (
            f"renders to {quote(sample)}, not a valid tag: 1-128 letters, digits, "
            "'_', '.' and '-', not starting with '.' or '-'"
        )
    return None


class _Reader:
    """One build.yml text to a BuildSpec, or the first problem in it."""

    def __init__(self, text: str, display_path: str) -> None:
        self._text = text
        self._shown = display_path
        self._decoder = _Decoder(display_path)
        self._lines: dict[str, int] = {}

    def fail(self, key: str, message: str) -> NoReturn:
        raise BuildYmlError(self._shown, self._lines.get(key, 1), message)

    def spec(self, path: Path | None) -> BuildSpec:
        document = parse_document(self._text, self._shown)
        if document is None:
            raise BuildYmlError(self._shown, 1, "file is empty; a build.yml needs at least 'image'")
        try:
            fields = self._decoder.decode(document, SCHEMA, "")
        except RecursionError as error:
            raise BuildYmlError(self._shown, None, "invalid YAML: nesting too deep") from error
        self._lines = self._decoder.lines
        values = fields if isinstance(fields, dict) else {}
        image = values.get("image")
        if not image:
            if "image" in values:
                self.fail("image", "'image' must not be empty")
            raise BuildYmlError(self._shown, 1, "missing required key 'image'")
        assert isinstance(image, str)

        def get(key: str, read: Callable[[object], T], default: T) -> T:
            return read(values[key]) if key in values else default

        spec = BuildSpec(
            path=path,
            display_path=self._shown,
            image=self._image(image),
            org=get("org", self._org, DEFAULT_ORG),
            arches=get("arches", self._arches, DEFAULT_ARCHES),
            extra_sources=get("extra-sources", self._extra_sources, ()),
            gitrepo=get("gitrepo", str, None),
            network=get("network", bool, False),
            disable_cache=get("disable-cache", bool, False),
            disable_content_trust=get("disable-content-trust", bool, False),
            config=get("config", _config, None),
            build_args=get("buildArgs", self._build_args, ()),
            build_arg_lines=tuple(
                line for name, line in self._lines.items() if name.startswith("buildArgs[")
            ),
            dockerfile=get("dockerfile", self._dockerfile, DEFAULT_DOCKERFILE),
            tag_template=get("tag", self._tag, DEFAULT_TAG_TEMPLATE),
            depends=get("depends", self._depends, None),
        )
        _, org_path = _split_host(spec.org)
        repository = f"{org_path}/{spec.image}" if org_path else spec.image
        if len(repository) > MAX_PATH_LENGTH:
            self.fail(
                "image",
                f"repository name {quote(repository)} is {len(repository)} characters; "
                f"the limit is {MAX_PATH_LENGTH}",
            )
        return spec

    def _image(self, image: str) -> str:
        problem = repository_path_problem(image)
        if problem is not None:
            self.fail("image", f"invalid image name {quote(image)}: {problem}")
        return image

    def _org(self, org: object) -> str:
        assert isinstance(org, str)
        problem = org_problem(org)
        if problem is not None:
            self.fail("org", f"invalid org {quote(org)}: {problem}")
        return org

    def _tag(self, template: object) -> str:
        assert isinstance(template, str)
        problem = tag_template_problem(template)
        if problem is not None:
            self.fail("tag", f"'tag' {problem}")
        return template or DEFAULT_TAG_TEMPLATE

    def _dockerfile(self, dockerfile: object) -> str:
        assert isinstance(dockerfile, str)
        if not _stays_inside(dockerfile):
            self.fail(
                "dockerfile",
                f"'dockerfile' must be a relative path inside the package, got {quote(dockerfile)}",
            )
        if len(os.fsencode(posixpath.basename(dockerfile))) > 255:
            self.fail("dockerfile", "'dockerfile' has a file name longer than 255 bytes")
        return dockerfile

    def _strings(self, value: object) -> list[str]:
        return [str(item) for item in value] if isinstance(value, list) else []

    def _arches(self, value: object) -> tuple[str, ...]:
        arches: list[str] = []
        for index, arch in enumerate(self._strings(value)):
            problem = arch_problem(arch, " in 'arches'")
            if problem is not None:
                self.fail(f"arches[{index}]", problem)
            if arch not in arches:
                arches.append(arch)
        return tuple(arches)

    def _extra_sources(self, value: object) -> tuple[ExtraSource, ...]:
        sources: list[ExtraSource] = []
        for index, item in enumerate(self._strings(value)):
            src, _, dst = item.partition(":")
            if item.count(":") != 1 or not src or not dst:
                self.fail(
                    f"extra-sources[{index}]",
                    f"'extra-sources' item {quote(item)} must be SRC:DST, "
                    "with exactly one ':' and both sides non-empty",
                )
            sources.append(ExtraSource(src=src, dst=dst))
        return tuple(sources)

    def _build_args(self, value: object) -> tuple[str, ...]:
        args = self._strings(value)
        for index, item in enumerate(args):
            key, equals, _ = item.partition("=")
            if not equals or not key:
                self.fail(
                    f"buildArgs[{index}]",
                    f"'buildArgs' item {quote(item)} must be KEY=VALUE with a non-empty KEY",
                )
        return tuple(args)

    def _depends(self, value: object) -> DockerImagesDepends | None:
        images = value.get("docker-images") if isinstance(value, dict) else None
        if not isinstance(images, dict):
            return None
        name = "depends.docker-images"
        for first, second in (("target", "target-dir"), ("from-file", "list")):
            if images.get(first) and images.get(second):
                self.fail(
                    f"{name}.{second}",
                    f"'{first}' and '{second}' in '{name}' are mutually exclusive",
                )
        paths: dict[str, str] = {}
        for key in ("target-dir", "target", "from-file"):
            path = images.get(key)
            if not path:
                continue
            assert isinstance(path, str)
            if not _stays_inside(path):
                self.fail(
                    f"{name}.{key}",
                    f"'{name}.{key}' must be a relative path inside the package, got {quote(path)}",
                )
            paths[key] = path
        pinned = self._strings(images.get("list"))
        for index, image in enumerate(pinned):
            if not re.fullmatch(_PINNED_IMAGE, image):
                self.fail(
                    f"{name}.list[{index}]",
                    f"'{name}.list' item {quote(image)} must be pinned by digest: "
                    "NAME@sha256:<64 hex digits>",
                )
        if (pinned or "from-file" in paths) and not ("target" in paths or "target-dir" in paths):
            self.fail(name, f"'{name}' needs 'target' or 'target-dir' to say where images go")
        if not (paths or pinned):
            return None
        return DockerImagesDepends(
            target_dir=paths.get("target-dir"),
            target=paths.get("target"),
            from_file=paths.get("from-file"),
            images=tuple(pinned),
        )
