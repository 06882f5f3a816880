"""The image references in a LinuxKit YAML file, found and rewritten in place.

linuxkit reads images from `kernel.image`, `init[]`, `onboot[].image`, `onshutdown[].image`,
`services[].image` and `volumes[].image` (moby/config.go); `files` name local paths and
`trust` names image prefixes, not images, so neither is touched. The file is parsed with
ruamel's round-trip loader only to learn where each reference's scalar starts; the rewrite
then replaces exactly those characters in the original text, so comments, quoting,
indentation, key order, blank lines and everything else stay byte for byte as they were.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError

from lkpkg.errors import InputError

IMAGE_LISTS = ("onboot", "onshutdown", "services", "volumes")
# A reference never contains whitespace, a quote, a comma, a bracket or '#': a plain scalar
# that is a reference ends at the first of them.
_PLAIN_REFERENCE = re.compile(r"[^\s,\[\]{}#'\"]+")


@dataclass(frozen=True)
class Site:
    """One image reference in a file: where it is and how it is written."""

    where: str  # `kernel.image`, `init[0]`, `services[2].image` (`services[2]` named `getty`)
    line: int  # 1-based
    column: int  # 0-based, at the scalar's first character (a quote if quoted)
    text: str  # the reference as written, without quotes


def find_references(path: Path, text: str | None = None) -> list[Site]:
    """Every image reference linuxkit would read from the YAML at `path`, in file order."""
    if text is None:
        text = read_text(path)
    try:
        document = YAML(typ="rt").load(text)
    except YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise InputError(f"{where}: not valid YAML: {getattr(e, 'problem', e)}") from None
    if document is None:
        return []
    if not isinstance(document, CommentedMap):
        raise InputError(f"{path}: a LinuxKit YAML is a mapping (kernel, init, onboot, ...)")
    return sorted(_sites(document), key=lambda s: (s.line, s.column))


def _sites(doc: CommentedMap) -> Iterator[Site]:
    kernel = doc.get("kernel")
    if isinstance(kernel, CommentedMap) and isinstance(kernel.get("image"), str):
        line, col = kernel.lc.value("image")
        yield Site("kernel.image", line + 1, col, kernel["image"])
    init = doc.get("init")
    if isinstance(init, CommentedSeq):
        for i, item in enumerate(init):
            if isinstance(item, str):
                line, col = init.lc.item(i)
                yield Site(f"init[{i}]", line + 1, col, item)
    for section in IMAGE_LISTS:
        entries = doc.get(section)
        if not isinstance(entries, CommentedSeq):
            continue
        for i, entry in enumerate(entries):
            if isinstance(entry, CommentedMap) and isinstance(entry.get("image"), str):
                line, col = entry.lc.value("image")
                yield Site(f"{section}[{i}].image", line + 1, col, entry["image"])


def read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: cannot read: {e}") from None


def rewrite(text: str, changes: Mapping[Site, str]) -> str:
    """`text` with each site's reference replaced by its new text; nothing else changes."""
    lines = text.splitlines(keepends=True)
    # Right to left within a line, so earlier columns stay valid.
    for site in sorted(changes, key=lambda s: (s.line, -s.column)):
        new = changes[site]
        line = lines[site.line - 1]
        start = site.column
        if line[start : start + 1] in ("'", '"'):
            start += 1
            end = start + len(site.text)
        else:
            match = _PLAIN_REFERENCE.match(line, start)
            end = match.end() if match else start
        if line[start:end] != site.text:
            raise InputError(
                f"line {site.line}: expected '{site.text}' at column {site.column + 1}; "
                "the reference spans several lines or uses escapes, rewrite it by hand"
            )
        lines[site.line - 1] = line[:start] + new + line[end:]
    result = "".join(lines)
    _check_rewrite(result, changes)
    return result


def _check_rewrite(result: str, changes: Mapping[Site, str]) -> None:
    """Parse the result again: every changed site must read back as its new reference."""
    reread = {(s.line, s.where): s.text for s in find_references(Path("<rewritten>"), result)}
    for site, new in changes.items():
        if reread.get((site.line, site.where)) != new:
            raise InputError(f"line {site.line}: rewriting '{site.text}' did not give '{new}'")


def write_atomically(path: Path, text: str) -> None:
    """Replace `path` with `text` (temp file + rename), keeping its permissions."""
    mode = path.stat().st_mode & 0o7777
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
            out.write(text)
            out.flush()
            os.fchmod(out.fileno(), mode)
            os.fsync(out.fileno())
        Path(name).replace(path)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise


def split_written(text: str) -> tuple[str, str | None, str | None]:
    """(name as written, tag, digest) of a reference's text, keeping the user's spelling of
    the name (`linuxkit/init`, not `docker.io/linuxkit/init`)."""
    rest, _, digest = text.partition("@")
    colon = rest.rfind(":")
    if colon > rest.rfind("/"):
        return rest[:colon], rest[colon + 1 :], digest or None
    return rest, None, digest or None
