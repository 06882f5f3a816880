"""YAML text to a tree of positioned nodes, and plain scalars resolved as Go's yaml.v3 does.

linuxkit decodes build.yml with gopkg.in/yaml.v3, and what a scalar means depends on that
library, not on YAML 1.1 or 1.2 as Python libraries read them: `yes` is a string that a bool
field nevertheless accepts, `0666` is octal, `.5` is a string, `1e3` a float. So this module
asks ruamel only for parser events (syntax and positions) and builds its own tree; the
meaning of each scalar is `resolve`, written from yaml.v3's resolve.go rules.

Invariants:
* Only the first document is read, as yaml.v3's `Decoder.Decode` reads it: whatever follows
  a `---` is never parsed.
* Aliases are not expanded here: an alias node points at its anchor's node. `Budget` bounds
  the expansion the decoder does, with yaml.v3's own rule ("excessive aliasing"), and an
  anchor that contains an alias of itself is refused.
* Every syntax error is a `BuildYmlError` with the line ruamel reports; nothing from ruamel
  escapes.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.events import (
    AliasEvent,
    DocumentEndEvent,
    Event,
    MappingEndEvent,
    MappingStartEvent,
    NodeEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
)

from lkpkg.errors import BuildYmlError

Kind = Literal["scalar", "sequence", "mapping", "alias"]

STR_TAG = "tag:yaml.org,2002:str"
INT_TAG = "tag:yaml.org,2002:int"
FLOAT_TAG = "tag:yaml.org,2002:float"
BOOL_TAG = "tag:yaml.org,2002:bool"
NULL_TAG = "tag:yaml.org,2002:null"
TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
BINARY_TAG = "tag:yaml.org,2002:binary"
MERGE_KEY = "<<"
MERGE_TAG = "tag:yaml.org,2002:merge"

# yaml.v3 (decode.go): beyond 100 aliased nodes, and past 1000 nodes decoded in all, at most
# 99% of what is decoded may come through aliases in a document this small.
_ALIAS_FLOOR = 100
_DECODE_FLOOR = 1000
_ALIAS_RATIO = 0.99
# Nesting deeper than this is refused before Python's own recursion limit is near.
MAX_DEPTH = 200


@dataclass(eq=False)
class Node:
    """One YAML node. `line` is 1-based; `tag` is only an explicit tag (`!!str`), else None."""

    kind: Kind
    line: int
    tag: str | None = None
    value: str = ""
    # Quoted or block scalars are strings whatever their text (yaml.v3's indicatedString).
    quoted: bool = False
    items: list[Node] = field(default_factory=list)
    # Mapping entries as (key, value) pairs, in document order.
    pairs: list[tuple[Node, Node]] = field(default_factory=list)
    anchor: str | None = None
    target: Node | None = None  # what an alias names

    @property
    def is_null(self) -> bool:
        return self.kind == "scalar" and resolve(self)[0] == NULL_TAG


class Budget:
    """Counts nodes as the decoder visits them, refusing an alias bomb as yaml.v3 does."""

    def __init__(self, display_path: str) -> None:
        self._display_path = display_path
        self.decoded = 0
        self.aliased = 0
        self._alias_depth = 0
        self._expanding: set[int] = set()

    def visit(self, node: Node) -> None:
        self.decoded += 1
        if self._alias_depth:
            self.aliased += 1
        if (
            self.aliased > _ALIAS_FLOOR
            and self.decoded > _DECODE_FLOOR
            and self.aliased / self.decoded > _ALIAS_RATIO
        ):
            raise BuildYmlError(
                self._display_path,
                node.line,
                "document contains excessive aliasing (an alias expansion bomb?)",
            )

    def enter_alias(self, node: Node) -> Node:
        """The node an alias names; call `leave_alias` with it when done."""
        target = node.target
        assert target is not None
        if id(target) in self._expanding:
            raise BuildYmlError(
                self._display_path, node.line, f"anchor '{node.value}' value contains itself"
            )
        self._expanding.add(id(target))
        self._alias_depth += 1
        return target

    def leave_alias(self, target: Node) -> None:
        self._expanding.discard(id(target))
        self._alias_depth -= 1


def parse_document(text: str, display_path: str) -> Node | None:
    """The first document of `text` as a node tree, or None when it has no document."""
    text = text.removeprefix("\ufeff")
    events = YAML(typ="rt", pure=True).parse(text)
    try:
        return _Builder(events, display_path, text).document()
    except BuildYmlError:
        raise
    except MarkedYAMLError as error:
        parts = [str(part) for part in (error.context, error.problem) if part]
        mark = error.problem_mark or error.context_mark
        line = int(mark.line) + 1 if mark is not None else 1
        raise BuildYmlError(display_path, line, f"invalid YAML: {'; '.join(parts)}") from error
    except YAMLError as error:
        # A reader error (a NUL byte, say) knows its offset in the text but not its line.
        position = getattr(error, "position", None)
        line = text.count("\n", 0, position) + 1 if isinstance(position, int) else 1
        summary = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise BuildYmlError(display_path, line, f"invalid YAML: {summary}") from error


class _Builder:
    def __init__(self, events: Iterator[Event], display_path: str, text: str) -> None:
        self._events = events
        self._display_path = display_path
        self._anchors: dict[str, Node] = {}

    def _next(self) -> Event:
        return next(self._events)

    def document(self) -> Node | None:
        for event in self._events:
            if isinstance(event, StreamEndEvent):
                return None
            if isinstance(event, NodeEvent):
                return self._node(event, 0)
        return None

    def _node(self, event: Event, depth: int) -> Node:
        line = int(event.start_mark.line) + 1
        if depth > MAX_DEPTH:
            raise BuildYmlError(self._display_path, line, f"nesting deeper than {MAX_DEPTH}")
        if isinstance(event, AliasEvent):
            name = str(event.anchor)
            target = self._anchors.get(name)
            if target is None:
                raise BuildYmlError(self._display_path, line, f"unknown anchor '{name}' referenced")
            return Node("alias", line, value=name, target=target)
        raw_tag, raw_anchor = getattr(event, "tag", None), getattr(event, "anchor", None)
        tag = str(raw_tag) if raw_tag is not None and str(raw_tag) != "!" else None
        anchor = str(raw_anchor) if raw_anchor is not None else None
        node: Node
        if isinstance(event, ScalarEvent):
            node = Node("scalar", line, tag=tag, value=str(event.value), quoted=bool(event.style))
        elif isinstance(event, SequenceStartEvent):
            node = Node("sequence", line, tag=tag)
            if anchor is not None:
                self._anchors[anchor] = node
            while not isinstance(item := self._next(), _END_EVENTS):
                node.items.append(self._node(item, depth + 1))
            return node
        elif isinstance(event, MappingStartEvent):
            node = Node("mapping", line, tag=tag)
            if anchor is not None:
                self._anchors[anchor] = node
            while not isinstance(key := self._next(), _END_EVENTS):
                key_node = self._node(key, depth + 1)
                node.pairs.append((key_node, self._node(self._next(), depth + 1)))
            return node
        else:  # pragma: no cover - the parser yields only the events above here
            raise BuildYmlError(self._display_path, line, "invalid YAML: unexpected event")
        node.anchor = anchor
        if anchor is not None:
            self._anchors[anchor] = node
        return node


_END_EVENTS = (MappingEndEvent, SequenceEndEvent, DocumentEndEvent)

# yaml.v3 resolve.go: the words with a fixed meaning; nothing else is a bool or null.
_WORDS: dict[str, tuple[str, object]] = {
    **{word: (BOOL_TAG, True) for word in ("true", "True", "TRUE")},
    **{word: (BOOL_TAG, False) for word in ("false", "False", "FALSE")},
    **{word: (NULL_TAG, None) for word in ("", "~", "null", "Null", "NULL")},
    **{word: (FLOAT_TAG, math.nan) for word in (".nan", ".NaN", ".NAN")},
    **{word: (FLOAT_TAG, math.inf) for word in (".inf", ".Inf", ".INF", "+.inf", "+.Inf")},
    "+.INF": (FLOAT_TAG, math.inf),
    **{word: (FLOAT_TAG, -math.inf) for word in ("-.inf", "-.Inf", "-.INF")},
    MERGE_KEY: (MERGE_TAG, MERGE_KEY),
}
_YAML_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_TIMESTAMP = re.compile(
    r"[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}"
    r"(?:(?:[Tt]|[ \t]+)[0-9]{1,2}:[0-9]{1,2}:[0-9]{1,2}(?:\.[0-9]*)?"
    r"(?:[ \t]*(?:Z|[-+][0-9]{1,2}(?::[0-9]{2})?))?)?"
)
_GO_INT = re.compile(r"[-+]?(?:0[xX][0-9a-fA-F]+|0[bB][01]+|0[oO]?[0-7]+|[1-9][0-9]*|0)")
_INT64 = (-(2**63), 2**63 - 1)
_UINT64_MAX = 2**64 - 1


def _go_int(plain: str) -> int | None:
    """strconv.ParseInt/ParseUint with base 0 (underscores already removed), or None."""
    if not _GO_INT.fullmatch(plain):
        return None
    sign = -1 if plain.startswith("-") else 1
    digits = plain.lstrip("+-")
    lowered = digits.lower()
    if lowered.startswith("0x"):
        value = int(digits[2:], 16)
    elif lowered.startswith("0b"):
        value = int(digits[2:], 2)
    elif lowered.startswith("0o"):
        value = int(digits[2:], 8)
    elif len(digits) > 1 and digits.startswith("0"):
        value = int(digits[1:], 8)
    else:
        value = int(digits)
    value *= sign
    if _INT64[0] <= value <= _UINT64_MAX:
        return value
    return None


def resolve(node: Node) -> tuple[str, object]:
    """(tag, value) of a scalar node as yaml.v3 resolves it: str, int, float, bool, None, or a
    timestamp given as its text."""
    text = node.value
    if node.quoted or node.tag == STR_TAG:
        return STR_TAG, text
    if node.tag not in (None, INT_TAG, FLOAT_TAG, BOOL_TAG, NULL_TAG, TIMESTAMP_TAG):
        # A tag yaml.v3 does not know (`!foo`, `!!binary`): the text, as a string.
        return node.tag or STR_TAG, text
    found = _WORDS.get(text)
    if found is not None:
        return found
    first = text[:1]
    if first.isdigit() or first in "+-":
        if (node.tag in (None, TIMESTAMP_TAG)) and _TIMESTAMP.fullmatch(text):
            return TIMESTAMP_TAG, text
        plain = text.replace("_", "")
        number = _go_int(plain)
        if number is not None:
            return INT_TAG, number
        if _YAML_FLOAT.fullmatch(plain):
            return FLOAT_TAG, float(plain)
    return STR_TAG, text
