"""Parse a LinuxKit package's build.yml into a `BuildSpec`.

The schema is linuxkit's `pkgInfo` as `linuxkit pkg build` decodes it (unknown keys rejected),
plus `tag`, `release` and `disable-content-trust`, which some linuxkit versions know.

Invariants:

* Every problem with a build.yml (unreadable file, YAML syntax, duplicate key, unknown key,
  wrong type, bad value) is raised as one `BuildYmlError(display_path, line, message)`: the
  1-based line of the offending key, or of the list item for a bad item, and a single-line
  message. Nothing from the YAML library escapes as a traceback; the few YAML failures that
  carry no position (a collection as a mapping key, an impossible date) have no line.
* The file is read as YAML 1.2, so `yes`/`on` are strings, not booleans. Validation is stricter
  than linuxkit where linuxkit would quietly do something surprising: a present key is never
  null, numbers are not strings, booleans are only `true`/`false`, `arches` is never empty.
* Parsing is lexical: apart from reading the build.yml itself nothing touches the disk, so paths
  (`dockerfile`, `depends.docker-images.*`) are checked for staying inside the package, not for
  existing, and `from-file` is not opened.
* A `BuildSpec` is frozen and holds plain Python values only (str, bool, tuples) plus, for
  `config`, a JSON-able dict whose numbers are what linuxkit's Go YAML decoder reads: `0666` is
  octal there, as in the `mode: 0666` of linuxkit's own device entries.
"""

from __future__ import annotations

import datetime
import difflib
import ipaddress
import math
import posixpath
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn, TypeAlias

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq, TaggedScalar
from ruamel.yaml.constructor import DuplicateKeyError
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.scalarbool import ScalarBoolean
from ruamel.yaml.scalarint import ScalarInt

from lkpkg.errors import BuildYmlError, InputError
from lkpkg.platforms import KNOWN_ARCHES

JSONValue: TypeAlias = bool | int | float | str | list["JSONValue"] | dict[str, "JSONValue"] | None

DEFAULT_ORG = "linuxkit"
DEFAULT_ARCHES: tuple[str, ...] = ("amd64", "arm64")
DEFAULT_DOCKERFILE = "Dockerfile"
DEFAULT_TAG_TEMPLATE = "{{.Hash}}"


# Kernel and distribution spellings people type for a GOARCH; only used to suggest a fix.
_ARCH_ALIASES = {
    "x86_64": "amd64",
    "x86-64": "amd64",
    "x64": "amd64",
    "aarch64": "arm64",
    "armv8": "arm64",
    "i386": "386",
    "i686": "386",
    "x86": "386",
    "armhf": "arm",
    "armv7": "arm",
    "armv7l": "arm",
    "riscv": "riscv64",
    "ppc64el": "ppc64le",
    "loongarch64": "loong64",
}

TOP_LEVEL_KEYS: tuple[str, ...] = (
    "image",
    "org",
    "arches",
    "extra-sources",
    "gitrepo",
    "network",
    "disable-cache",
    "disable-content-trust",
    "config",
    "buildArgs",
    "dockerfile",
    "tag",
    "depends",
    "release",
)

# The yaml keys of linuxkit's moby.ImageConfig without `name` and `image`, which linuxkit
# refuses in an image's config label.
CONFIG_KEYS: tuple[str, ...] = (
    "capabilities",
    "ambient",
    "mounts",
    "binds",
    "binds.add",
    "tmpfs",
    "command",
    "env",
    "cwd",
    "net",
    "pid",
    "ipc",
    "uts",
    "userns",
    "hostname",
    "readonly",
    "maskedPaths",
    "readonlyPaths",
    "uid",
    "gid",
    "additionalGids",
    "noNewPrivileges",
    "oomScoreAdj",
    "rootfsPropagation",
    "cgroupsPath",
    "resources",
    "sysctl",
    "rlimits",
    "uidMappings",
    "gidMappings",
    "annotations",
    "runtime",
    "devices",
)
_FORBIDDEN_CONFIG_KEYS = ("name", "image")

DEPENDS_KEYS: tuple[str, ...] = ("docker-images",)
DOCKER_IMAGES_KEYS: tuple[str, ...] = ("target-dir", "target", "from-file", "list")
_EXCLUSIVE_DOCKER_IMAGES_KEYS = (("target", "target-dir"), ("from-file", "list"))

MAX_REPOSITORY_LENGTH = 255
MAX_TAG_LENGTH = 128

_PATH_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*")
_PATH_COMPONENT_RULE = (
    "must be lowercase letters and digits in '/'-separated components, "
    "with words joined by '.', '_', '__' or '-'"
)
_DNS_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_HOST = re.compile(
    rf"(?:{_DNS_LABEL}(?:\.{_DNS_LABEL})*|\[(?P<ipv6>[0-9A-Fa-f:.]+)\])(?::(?P<port>[0-9]+))?"
)
# A DNS name is at most 253 characters; a bracketed IPv6 address and a port fit in the slack.
# Checking the length first also keeps the regex away from pathological input.
_MAX_HOST_LENGTH = 261
_MAX_PORT = 65535

_HASH_ACTION = re.compile(r"\{\{\s*\.Hash\s*\}\}")
_ANY_ACTION = re.compile(r"\{\{.*?\}\}", re.DOTALL)
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
# What a git tree hash looks like; only the length matters when checking a rendered tag.
_SAMPLE_HASH = "0" * 40

_PINNED_IMAGE = re.compile(r"[^@\s]+@sha256:[0-9a-f]{64}")

_YAML_STR_TAG = "tag:yaml.org,2002:str"
# An anchored scalar's position is its anchor, and an alias reports the anchor's position too.
_INT_TOKEN = re.compile(r"(?:&\S+[ \t]+)?(?P<digits>[-+]?[0-9][0-9_]*)")
_LEADING_ZERO_OCTAL = re.compile(r"([-+]?)0([0-7]+)")
# The line breaks ruamel's reader counts, so that a (line, column) it reports finds the same
# character in our copy of the text.
_LINE_BREAK = re.compile("\r\n|[\r\n\x85\u2028\u2029]")
_DUPLICATE_KEY = re.compile(r'found duplicate key "(?P<key>.*)" with value')
_QUOTE_LIMIT = 80


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
    """A validated build.yml. `path` is None when parsed from text."""

    path: Path | None
    display_path: str
    image: str
    org: str = DEFAULT_ORG
    arches: tuple[str, ...] = DEFAULT_ARCHES
    extra_sources: tuple[ExtraSource, ...] = ()
    gitrepo: str | None = None
    network: bool = False
    disable_cache: bool = False
    disable_content_trust: bool = False
    # Excluded from the hash because a dict cannot be hashed; equal specs still hash equal.
    config: dict[str, JSONValue] | None = field(default=None, hash=False)
    build_args: tuple[str, ...] = ()
    dockerfile: str = DEFAULT_DOCKERFILE
    tag_template: str = DEFAULT_TAG_TEMPLATE
    depends: DockerImagesDepends | None = None
    release: str | None = None

    @property
    def build_arg_pairs(self) -> list[tuple[str, str]]:
        """`build_args` split at their first `=`, in order; values may contain `=`."""
        pairs: list[tuple[str, str]] = []
        for arg in self.build_args:
            key, _, value = arg.partition("=")
            pairs.append((key, value))
        return pairs

    def render_tag(self, hash: str) -> str:
        """The image tag for a package whose content hash is `hash`."""
        return _render_tag(self.tag_template, hash)


def parse_build_yml(path: Path, display_path: str | None = None) -> BuildSpec:
    """Read and validate the build.yml at `path`; errors name it as `display_path`."""
    shown = display_path if display_path is not None else str(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise BuildYmlError(shown, None, f"cannot read: {error.strerror or error}") from error
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise BuildYmlError(shown, line, "is not valid UTF-8") from error
    return _Parser(text, shown).parse(path)


def parse_build_yml_text(text: str, display_path: str) -> BuildSpec:
    """Validate build.yml content; errors name it as `display_path`."""
    return _Parser(text, display_path).parse(None)


def validate_repository_path(path: str) -> str | None:
    """Why `path` is not a repository path (`a/b-c/d`, no registry host), or None if it is."""
    if not path:
        return "must not be empty"
    if len(path) > MAX_REPOSITORY_LENGTH:
        return f"must be at most {MAX_REPOSITORY_LENGTH} characters, got {len(path)}"
    for component in path.split("/"):
        if not component:
            return "must not have an empty component (a leading, trailing or doubled '/')"
        if not _PATH_COMPONENT.fullmatch(component):
            return _PATH_COMPONENT_RULE
    return None


def validate_host(host: str) -> str | None:
    """Why `host` is not a registry host (`name[:port]`, `ipv4[:port]`, `[ipv6][:port]`)."""
    match = _HOST.fullmatch(host) if len(host) <= _MAX_HOST_LENGTH else None
    if match is None:
        return (
            f"registry host {_quote(host)} must be a DNS name, an IPv4 address or a "
            "[bracketed] IPv6 address, with an optional :port"
        )
    if match["ipv6"] is not None:
        try:
            ipaddress.IPv6Address(match["ipv6"])
        except ValueError:
            return f"registry host {_quote(host)} has an invalid IPv6 address"
    if match["port"] is not None and not 0 < int(match["port"]) <= _MAX_PORT:
        return f"registry host {_quote(host)} has a port outside 1-{_MAX_PORT}"
    return None


def split_host(name: str) -> tuple[str | None, str]:
    """Split `ghcr.io/foo` into (`ghcr.io`, `foo`); a name without a host gives (None, name).

    The first component is a host when it contains `.` or `:` or is `localhost`, the rule
    docker uses. Unlike docker no `/` is needed after it: an org is always followed by
    `/image`, so `localhost:5000` as an org is a host by the time the reference is built.
    """
    first, _, rest = name.partition("/")
    if "." in first or ":" in first or first == "localhost":
        return first, rest
    return None, name


def validate_org_override(org: str) -> None:
    """Check an `--org` flag value; raise InputError naming the problem."""
    problem = _org_problem(org)
    if problem is not None:
        raise InputError(f"invalid org {_quote(org)}: {problem}")


def _org_problem(org: str) -> str | None:
    host, path = split_host(org)
    if host is not None:
        problem = validate_host(host)
        if problem is not None:
            return problem
        if not path:
            return "must not end with '/'" if org.endswith("/") else None
    return validate_repository_path(path)


def _render_tag(template: str, hash: str) -> str:
    # A function replacement, so backslashes in `hash` are never read as group references.
    return _HASH_ACTION.sub(lambda _match: hash, template)


def _tag_template_problem(template: str) -> str | None:
    if not template:
        return "must not be empty"
    for action in _ANY_ACTION.finditer(template):
        if not _HASH_ACTION.fullmatch(action.group()):
            return f"may only use the action {{{{.Hash}}}}, got {_quote(action.group())}"
    if "{{" in _HASH_ACTION.sub("", template):
        return "has a '{{' without a closing '}}'"
    sample = _render_tag(template, _SAMPLE_HASH)
    if not _TAG.fullmatch(sample):
        return (
            "does not render to a valid tag: only letters, digits, "
            "'_', '.' and '-' are allowed, and not '.' or '-' first"
        )
    if len(sample) > MAX_TAG_LENGTH:
        return f"renders to a tag longer than {MAX_TAG_LENGTH} characters"
    return None


def _stays_inside(path: str) -> bool:
    """Whether relative `path` names something strictly inside the package directory."""
    if not path or path.startswith("/"):
        return False
    normal = posixpath.normpath(path)
    return normal not in (".", "..") and not normal.startswith("../")


def _quote(text: str) -> str:
    """`text` in single quotes, shortened, with control characters escaped to keep one line."""
    if len(text) > _QUOTE_LIMIT:
        text = text[:_QUOTE_LIMIT] + "..."
    shown = "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)
    return f"'{shown}'"


def _unwrap(value: object) -> object:
    """The plain Python value of a round-trip scalar that ruamel wraps for its own reasons."""
    # An explicit `!!str` comes back wrapped; an anchored `true` comes back as an int subclass.
    if isinstance(value, TaggedScalar) and str(value.tag) == _YAML_STR_TAG:
        return str(value.value)
    if isinstance(value, ScalarBoolean):
        return bool(value)
    return value


def _describe(value: object) -> str:
    """A short, single-line description of a YAML value for 'got ...' in messages."""
    value = _unwrap(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {'true' if value else 'false'}"
    if isinstance(value, int):
        return f"integer {int(value)}"
    if isinstance(value, float):
        return f"float {float(value)}"
    if isinstance(value, str):
        return f"string {_quote(value)}"
    if isinstance(value, dict):
        return "mapping"
    if isinstance(value, list | tuple):
        return "list"
    if isinstance(value, TaggedScalar):
        return f"value tagged {value.tag}"
    if isinstance(value, datetime.date):
        return f"timestamp {value.isoformat()}"
    if isinstance(value, bytes):
        return "binary data"
    return type(value).__name__


def _as_text(value: object) -> object:
    """A number where text is expected becomes its text, as linuxkit's Go YAML decoder does
    (it sets a plain scalar's text into a string field); anything else is left as it is."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return value


def _unknown_key(key: str, known: Sequence[str], within: str | None = None) -> str:
    where = f" in {_quote(within)}" if within else ""
    close = difflib.get_close_matches(key, known, n=1)
    suggestion = f" (did you mean {_quote(close[0])}?)" if close else ""
    return f"unknown key {_quote(key)}{where}{suggestion}"


def _arch_hint(arch: str) -> str:
    guess = _ARCH_ALIASES.get(arch.lower())
    if guess is None:
        close = difflib.get_close_matches(arch.lower(), KNOWN_ARCHES, n=1)
        guess = close[0] if close else None
    if guess is not None:
        return f" (did you mean {_quote(guess)}?)"
    return f" (known: {', '.join(KNOWN_ARCHES)})"


def _position(node: CommentedMap | CommentedSeq, key: object, *, of_value: bool) -> object:
    """ruamel's (line, column) record for a key, value or item, or None when it has none."""
    # Keys pulled in by a `<<` merge, and items of an explicitly tagged collection, have no
    # position of their own.
    try:
        if isinstance(node, CommentedSeq):
            return node.lc.item(key)
        return node.lc.value(key) if of_value else node.lc.key(key)
    except (KeyError, IndexError, TypeError):
        return None


def _zero_based(position: object) -> tuple[int, int] | None:
    match position:
        case (int(line), int(column), *_):
            return line, column
        case _:
            return None


def _key_line(mapping: CommentedMap, key: object, fallback: int) -> int:
    found = _zero_based(_position(mapping, key, of_value=False))
    return found[0] + 1 if found is not None else fallback


def _item_line(seq: CommentedSeq, index: int, fallback: int) -> int:
    found = _zero_based(_position(seq, index, of_value=True))
    return found[0] + 1 if found is not None else fallback


def _value_position(node: CommentedMap | CommentedSeq, key: object) -> tuple[int, int] | None:
    return _zero_based(_position(node, key, of_value=True))


@dataclass
class _Draft:
    """The fields of a BuildSpec as they are read, before the cross-field checks."""

    image: str | None = None
    image_line: int = 1
    org: str = DEFAULT_ORG
    arches: tuple[str, ...] = DEFAULT_ARCHES
    extra_sources: tuple[ExtraSource, ...] = ()
    gitrepo: str | None = None
    network: bool = False
    disable_cache: bool = False
    disable_content_trust: bool = False
    config: dict[str, JSONValue] | None = None
    build_args: tuple[str, ...] = ()
    dockerfile: str = DEFAULT_DOCKERFILE
    tag_template: str = DEFAULT_TAG_TEMPLATE
    depends: DockerImagesDepends | None = None
    release: str | None = None


class _Parser:
    """Turns one build.yml text into a BuildSpec, or raises the first problem in it."""

    def __init__(self, text: str, display_path: str) -> None:
        # ruamel accepts a byte order mark but would count it as a column on line 1.
        self._text = text.removeprefix("\ufeff")
        self._lines = _LINE_BREAK.split(self._text)
        self._display_path = display_path

    def error(self, line: int | None, message: str) -> BuildYmlError:
        return BuildYmlError(self._display_path, line, message)

    def fail(self, line: int | None, message: str) -> NoReturn:
        raise self.error(line, message)

    def parse(self, path: Path | None) -> BuildSpec:
        document = self._load()
        if document is None:
            self.fail(1, "file is empty; a build.yml needs at least 'image'")
        if not isinstance(document, CommentedMap):
            line = document.lc.line + 1 if isinstance(document, CommentedSeq) else 1
            self.fail(line, f"must be a mapping of keys to values, got {_describe(document)}")
        draft = _Draft()
        for key in document:
            line = _key_line(document, key, 1)
            if not isinstance(key, str):
                self.fail(line, f"keys must be strings, got {_describe(key)}")
            if key not in TOP_LEVEL_KEYS:
                self.fail(line, _unknown_key(key, TOP_LEVEL_KEYS))
            self._field(draft, key, document[key], line)
        if draft.image is None:
            self.fail(1, "missing required key 'image'")
        _, org_path = split_host(draft.org)
        repository = f"{org_path}/{draft.image}" if org_path else draft.image
        if len(repository) > MAX_REPOSITORY_LENGTH:
            self.fail(
                draft.image_line,
                f"repository name {_quote(repository)} is {len(repository)} characters; "
                f"the limit is {MAX_REPOSITORY_LENGTH}",
            )
        return BuildSpec(
            path=path,
            display_path=self._display_path,
            image=draft.image,
            org=draft.org,
            arches=draft.arches,
            extra_sources=draft.extra_sources,
            gitrepo=draft.gitrepo,
            network=draft.network,
            disable_cache=draft.disable_cache,
            disable_content_trust=draft.disable_content_trust,
            config=draft.config,
            build_args=draft.build_args,
            dockerfile=draft.dockerfile,
            tag_template=draft.tag_template,
            depends=draft.depends,
            release=draft.release,
        )

    def _load(self) -> object:
        yaml = YAML(typ="rt", pure=True)
        try:
            return yaml.load(self._text)
        except DuplicateKeyError as error:
            found = _DUPLICATE_KEY.search(str(error.problem or ""))
            key = f" {_quote(found['key'])}" if found else ""
            raise self.error(self._mark_line(error), f"duplicate key{key}") from error
        except MarkedYAMLError as error:
            parts = [str(part) for part in (error.context, error.problem) if part]
            message = f"invalid YAML: {'; '.join(parts)}"
            raise self.error(self._mark_line(error), message) from error
        except YAMLError as error:
            # A reader error (say, a NUL byte) knows its offset in the text but not its line.
            position = getattr(error, "position", None)
            line = self._text.count("\n", 0, position) + 1 if isinstance(position, int) else 1
            summary = str(error).splitlines()[0] if str(error) else type(error).__name__
            raise self.error(line, f"invalid YAML: {summary}") from error
        except TypeError as error:
            # ruamel lets this through for a mapping key that is a nested collection; it carries
            # no position.
            raise self.error(None, f"invalid YAML: unusable mapping key ({error})") from error
        except (ValueError, RecursionError) as error:
            # An impossible date like 2024-02-30, or absurd nesting; neither carries a position.
            raise self.error(None, f"invalid YAML: {error}") from error

    @staticmethod
    def _mark_line(error: MarkedYAMLError) -> int:
        mark = error.problem_mark or error.context_mark
        return int(mark.line) + 1 if mark is not None else 1

    def _field(self, draft: _Draft, key: str, value: object, line: int) -> None:
        match key:
            case "image":
                draft.image = self._image(value, line)
                draft.image_line = line
            case "org":
                draft.org = self._org(value, line)
            case "arches":
                draft.arches = self._arches(value, line)
            case "extra-sources":
                draft.extra_sources = self._extra_sources(value, line)
            case "gitrepo":
                draft.gitrepo = self._string(key, value, line)
            case "network":
                draft.network = self._boolean(key, value, line)
            case "disable-cache":
                draft.disable_cache = self._boolean(key, value, line)
            case "disable-content-trust":
                draft.disable_content_trust = self._boolean(key, value, line)
            case "config":
                draft.config = self._config(value, line)
            case "buildArgs":
                draft.build_args = self._build_args(value, line)
            case "dockerfile":
                draft.dockerfile = self._dockerfile(value, line)
            case "tag":
                draft.tag_template = self._tag(value, line)
            case "depends":
                draft.depends = self._depends(value, line)
            case "release":
                draft.release = self._string(key, value, line)
            case _:  # pragma: no cover - TOP_LEVEL_KEYS and this match must agree
                raise AssertionError(f"no handler for build.yml key {key!r}")

    # Typed readers. `name` is the key as the user wrote it, dotted for nested keys.

    def _string(self, name: str, value: object, line: int) -> str:
        value = _as_text(_unwrap(value))
        if not isinstance(value, str):
            self.fail(line, f"{_quote(name)} must be a string, got {_describe(value)}")
        if not value:
            self.fail(line, f"{_quote(name)} must not be empty")
        return str(value)

    def _boolean(self, name: str, value: object, line: int) -> bool:
        value = _unwrap(value)
        if not isinstance(value, bool):
            self.fail(line, f"{_quote(name)} must be a boolean, got {_describe(value)}")
        return value

    def _string_list(self, name: str, value: object, line: int) -> list[tuple[str, int]]:
        """The items of a list of strings, each with its line."""
        if not isinstance(value, CommentedSeq):
            self.fail(line, f"{_quote(name)} must be a list of strings, got {_describe(value)}")
        items: list[tuple[str, int]] = []
        for index, raw in enumerate(value):
            item_line = _item_line(value, index, line)
            item = _as_text(_unwrap(raw))
            if not isinstance(item, str):
                self.fail(
                    item_line,
                    f"{_quote(name)} items must be strings, got {_describe(item)}",
                )
            items.append((str(item), item_line))
        return items

    def _mapping(self, name: str, value: object, line: int) -> CommentedMap:
        if not isinstance(value, CommentedMap):
            self.fail(line, f"{_quote(name)} must be a mapping, got {_describe(value)}")
        return value

    def _mapping_keys(
        self,
        name: str,
        mapping: CommentedMap,
        line: int,
        known: Sequence[str],
        *,
        forbidden: Sequence[str] = (),
        why_forbidden: str = "",
    ) -> list[tuple[str, int]]:
        """The keys of a nested mapping, each with its line, all checked against `known`."""
        keys: list[tuple[str, int]] = []
        for key in mapping:
            key_line = _key_line(mapping, key, line)
            if not isinstance(key, str):
                self.fail(key_line, f"keys in {_quote(name)} must be strings, got {_describe(key)}")
            if key in forbidden:
                self.fail(key_line, f"{_quote(f'{name}.{key}')} is not allowed: {why_forbidden}")
            if key not in known:
                self.fail(key_line, _unknown_key(key, known, within=name))
            keys.append((key, key_line))
        return keys

    # One reader per top-level key.

    def _image(self, value: object, line: int) -> str:
        image = self._string("image", value, line)
        problem = validate_repository_path(image)
        if problem is not None:
            self.fail(line, f"invalid image name {_quote(image)}: {problem}")
        return image

    def _org(self, value: object, line: int) -> str:
        org = self._string("org", value, line)
        problem = _org_problem(org)
        if problem is not None:
            self.fail(line, f"invalid org {_quote(org)}: {problem}")
        return org

    def _arches(self, value: object, line: int) -> tuple[str, ...]:
        items = self._string_list("arches", value, line)
        if not items:
            self.fail(line, "'arches' must not be empty")
        seen: set[str] = set()
        for arch, item_line in items:
            if arch not in KNOWN_ARCHES:
                self.fail(item_line, f"unknown arch {_quote(arch)} in 'arches'{_arch_hint(arch)}")
            if arch in seen:
                self.fail(item_line, f"duplicate arch {_quote(arch)} in 'arches'")
            seen.add(arch)
        return tuple(arch for arch, _ in items)

    def _extra_sources(self, value: object, line: int) -> tuple[ExtraSource, ...]:
        sources: list[ExtraSource] = []
        for item, item_line in self._string_list("extra-sources", value, line):
            src, _, dst = item.partition(":")
            if item.count(":") != 1 or not src or not dst:
                self.fail(
                    item_line,
                    f"'extra-sources' item {_quote(item)} must be SRC:DST, "
                    "with exactly one ':' and both sides non-empty",
                )
            sources.append(ExtraSource(src=src, dst=dst))
        return tuple(sources)

    def _build_args(self, value: object, line: int) -> tuple[str, ...]:
        args: list[str] = []
        for item, item_line in self._string_list("buildArgs", value, line):
            key, equals, _ = item.partition("=")
            if not equals or not key:
                self.fail(
                    item_line,
                    f"'buildArgs' item {_quote(item)} must be KEY=VALUE with a non-empty KEY",
                )
            args.append(item)
        return tuple(args)

    def _dockerfile(self, value: object, line: int) -> str:
        dockerfile = self._string("dockerfile", value, line)
        if not _stays_inside(dockerfile):
            self.fail(
                line,
                "'dockerfile' must be a relative path inside the package, "
                f"got {_quote(dockerfile)}",
            )
        return dockerfile

    def _tag(self, value: object, line: int) -> str:
        if isinstance(value, CommentedMap):
            # An unquoted {{.Hash}} is a YAML flow mapping, the most likely way to get here.
            self.fail(line, "'tag' must be a string, got mapping (quote it: tag: \"{{.Hash}}\")")
        template = self._string("tag", value, line)
        problem = _tag_template_problem(template)
        if problem is not None:
            self.fail(line, f"'tag' {problem}")
        return template

    def _depends(self, value: object, line: int) -> DockerImagesDepends | None:
        mapping = self._mapping("depends", value, line)
        depends: DockerImagesDepends | None = None
        for key, key_line in self._mapping_keys("depends", mapping, line, DEPENDS_KEYS):
            depends = self._docker_images(mapping[key], key_line)
        return depends

    def _docker_images(self, value: object, line: int) -> DockerImagesDepends:
        name = "depends.docker-images"
        mapping = self._mapping(name, value, line)
        paths: dict[str, str] = {}
        images: tuple[str, ...] = ()
        seen: list[str] = []
        for key, key_line in self._mapping_keys(name, mapping, line, DOCKER_IMAGES_KEYS):
            for first, second in _EXCLUSIVE_DOCKER_IMAGES_KEYS:
                other = second if key == first else first if key == second else None
                if other is not None and other in seen:
                    self.fail(key_line, f"'{other}' and '{key}' in '{name}' are mutually exclusive")
            seen.append(key)
            if key == "list":
                images = self._pinned_images(f"{name}.list", mapping[key], key_line)
                continue
            path = self._string(f"{name}.{key}", mapping[key], key_line)
            if not _stays_inside(path):
                self.fail(
                    key_line,
                    f"'{name}.{key}' must be a relative path inside the package, "
                    f"got {_quote(path)}",
                )
            paths[key] = path
        if (images or "from-file" in paths) and not ("target" in paths or "target-dir" in paths):
            self.fail(line, f"'{name}' needs 'target' or 'target-dir' to say where images go")
        return DockerImagesDepends(
            target_dir=paths.get("target-dir"),
            target=paths.get("target"),
            from_file=paths.get("from-file"),
            images=images,
        )

    def _pinned_images(self, name: str, value: object, line: int) -> tuple[str, ...]:
        images: list[str] = []
        for image, item_line in self._string_list(name, value, line):
            if not _PINNED_IMAGE.fullmatch(image):
                self.fail(
                    item_line,
                    f"{_quote(name)} item {_quote(image)} must be pinned by digest: "
                    "NAME@sha256:<64 hex digits>",
                )
            images.append(image)
        return tuple(images)

    def _config(self, value: object, line: int) -> dict[str, JSONValue]:
        mapping = self._mapping("config", value, line)
        self._mapping_keys(
            "config",
            mapping,
            line,
            CONFIG_KEYS,
            forbidden=_FORBIDDEN_CONFIG_KEYS,
            why_forbidden="linuxkit rejects 'name' and 'image' in an image's config label",
        )
        return self._json_mapping(mapping, "config", line)

    # Conversion of `config` to plain JSON-able values, keeping linuxkit's reading of numbers.

    def _json_mapping(self, mapping: CommentedMap, name: str, line: int) -> dict[str, JSONValue]:
        result: dict[str, JSONValue] = {}
        for key in mapping:
            key_line = _key_line(mapping, key, line)
            if not isinstance(key, str):
                self.fail(key_line, f"keys in {_quote(name)} must be strings, got {_describe(key)}")
            result[str(key)] = self._json_value(
                mapping[key], f"{name}.{key}", key_line, _value_position(mapping, key)
            )
        return result

    def _json_value(
        self, value: object, name: str, line: int, position: tuple[int, int] | None
    ) -> JSONValue:
        value = _unwrap(value)
        if isinstance(value, CommentedMap):
            return self._json_mapping(value, name, line)
        if isinstance(value, CommentedSeq):
            return [
                self._json_value(
                    item,
                    f"{name}[{index}]",
                    _item_line(value, index, line),
                    _value_position(value, index),
                )
                for index, item in enumerate(value)
            ]
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, int):
            return self._go_int(value, position)
        if isinstance(value, float):
            if not math.isfinite(value):
                self.fail(line, f"{_quote(name)} must be a finite number, got {float(value)}")
            return float(value)
        if isinstance(value, str):
            return str(value)
        if isinstance(value, datetime.date):
            # Go would decode it as a time and re-encode it differently; refuse to guess.
            self.fail(line, f"{_quote(name)} is a YAML timestamp; quote it to make it a string")
        raise self.error(
            line, f"{_quote(name)} cannot be represented in JSON, got {_describe(value)}"
        )

    def _go_int(self, value: int, position: tuple[int, int] | None) -> int:
        """An integer as linuxkit's Go YAML decoder reads it.

        Go reads a leading-zero integer like `0666` as octal (strconv base 0); YAML 1.2, and so
        ruamel, reads it as decimal 666. ruamel marks such integers by returning a bare
        ScalarInt rather than int or a prefixed subclass (0x, 0o, 0b read the same in both);
        the digits themselves are re-read from the source at the value's position.
        """
        number = int(value)
        if type(value) is not ScalarInt or position is None:
            return number
        line, column = position
        if line >= len(self._lines):
            return number
        token = _INT_TOKEN.match(self._lines[line], column)
        if token is None:
            return number
        digits = token["digits"].replace("_", "")
        octal = _LEADING_ZERO_OCTAL.fullmatch(digits)
        # Re-reading the token as decimal must give ruamel's value, or we are looking at the
        # wrong characters and keep ruamel's reading.
        if octal is None or int(digits, 10) != number:
            return number
        sign = -1 if octal.group(1) == "-" else 1
        return sign * int(octal.group(2), 8)
