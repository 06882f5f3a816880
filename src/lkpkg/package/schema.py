"""Decoding a YAML node tree into values by Go types, as yaml.v3 decodes into linuxkit's structs.

A schema is built from a few Go-shaped types (`Str`, `Bool`, `Int`, `Any`, `ListOf`, `MapOf`,
`Struct`), and `Decoder.decode` follows yaml.v3's rules for each (decode.go):

* string field: any scalar, as the text written (`1.10` stays `1.10`); a collection is refused.
* bool field: `true/false` in the cases yaml.v3 resolves, and the YAML 1.1 words
  `y/yes/on/n/no/off` (lower, Title or UPPER case) that it accepts into a typed bool; not
  quoted `"true"`, not `1`.
* int field: an integer as Go reads it (`0666` octal, `0x1f`, `0o17`, `1_000`), a float is
  truncated, anything else refused.
* null: a scalar field keeps its default (`ABSENT`), a list, map or pointer becomes nil
  (`None`); a null list item is dropped; a null map value is the zero value.
* struct: only its known keys (`KnownFields(true)`), with did-you-mean; duplicate keys refused;
  `<<` merges are honoured, keys written in the mapping winning over merged ones.
* interface{} (`Any`): str, int, float, bool, None, lists and string-keyed maps; what JSON
  cannot carry (NaN, infinities, timestamps) is refused, because linuxkit puts it in a label.

Every refusal is one `BuildYmlError` with the line of the offending node.
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final, NoReturn, TypeAlias

from lkpkg.errors import BuildYmlError
from lkpkg.package.yamlnodes import (
    BINARY_TAG,
    BOOL_TAG,
    FLOAT_TAG,
    INT_TAG,
    MERGE_TAG,
    NULL_TAG,
    STR_TAG,
    TIMESTAMP_TAG,
    Budget,
    Node,
    resolve,
)

JSONValue: TypeAlias = bool | int | float | str | list["JSONValue"] | dict[str, "JSONValue"] | None


class _Absent:
    def __repr__(self) -> str:
        return "ABSENT"


# What a null leaves a scalar field at: "not set, keep the default".
ABSENT: Final = _Absent()

_TRUE_WORDS = frozenset({"y", "Y", "yes", "Yes", "YES", "on", "On", "ON"})
_FALSE_WORDS = frozenset({"n", "N", "no", "No", "NO", "off", "Off", "OFF"})
_QUOTE_LIMIT = 80


@dataclass(frozen=True)
class Str:
    pass


@dataclass(frozen=True)
class Bool:
    pass


@dataclass(frozen=True)
class Int:
    low: int = -(2**63)
    high: int = 2**63 - 1


@dataclass(frozen=True)
class Any:
    pass


@dataclass(frozen=True)
class ListOf:
    item: GoType


@dataclass(frozen=True)
class MapOf:
    value: GoType


@dataclass(frozen=True)
class Struct:
    fields: Mapping[str, GoType]
    # A pointer to a struct becomes nil on null; a struct value stays as it is.
    pointer: bool = False
    # Go's `json:",omitempty"` on every field: a nil field is left out of the result (what
    # linuxkit's JSON label of the struct holds), rather than kept as None.
    omit_nil: bool = False


GoType: TypeAlias = Str | Bool | Int | Any | ListOf | MapOf | Struct
Value: TypeAlias = object


def quote(text: str) -> str:
    """`text` in single quotes, shortened, with unprintable characters escaped (one line)."""
    if len(text) > _QUOTE_LIMIT:
        text = text[:_QUOTE_LIMIT] + "..."
    shown = "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)
    return f"'{shown}'"


def unknown_key(key: str, known: list[str] | tuple[str, ...], within: str | None) -> str:
    import difflib  # only for the suggestion of an error

    where = f" in {quote(within)}" if within else ""
    close = difflib.get_close_matches(key, known, n=1)
    suggestion = f" (did you mean {quote(close[0])}?)" if close else ""
    return f"unknown key {quote(key)}{where}{suggestion}"


def describe(node: Node) -> str:
    """A short description of a node for 'got ...' in messages."""
    if node.kind == "mapping":
        return "mapping"
    if node.kind == "sequence":
        return "list"
    tag, value = resolve(node)
    if tag == NULL_TAG:
        return "null"
    if tag == BOOL_TAG:
        return f"boolean {node.value}"
    if tag == INT_TAG:
        return f"integer {node.value}"
    if tag == FLOAT_TAG:
        return f"float {node.value}"
    if tag == TIMESTAMP_TAG:
        return f"timestamp {node.value}"
    if tag == STR_TAG:
        return f"string {quote(str(value))}"
    return f"value tagged {tag}"


class Decoder:
    """Decodes nodes of one document; `budget` bounds alias expansion over the whole of it."""

    def __init__(self, display_path: str) -> None:
        self.display_path = display_path
        self.budget = Budget(display_path)
        # The line of each decoded value by its dotted name (`arches[1]`), for later checks.
        self.lines: dict[str, int] = {}

    def fail(self, node: Node, message: str) -> NoReturn:
        raise BuildYmlError(self.display_path, node.line, message)

    def decode(self, node: Node, go_type: GoType, name: str) -> Value:
        """The value of `node` as `go_type`: ABSENT for "keep the default", None for nil."""
        self.budget.visit(node)
        self.lines.setdefault(name, node.line)
        if node.kind == "alias":
            target = self.budget.enter_alias(node)
            try:
                return self.decode(target, go_type, name)
            finally:
                self.budget.leave_alias(target)
        if node.kind == "scalar" and resolve(node)[0] == NULL_TAG:
            if isinstance(go_type, ListOf | MapOf | Any) or (
                isinstance(go_type, Struct) and go_type.pointer
            ):
                return None
            return ABSENT
        match go_type:
            case Str():
                return self._string(node, name)
            case Bool():
                return self._bool(node, name)
            case Int():
                return self._int(node, go_type, name)
            case Any():
                return self._any(node, name)
            case ListOf():
                return self._list(node, go_type, name)
            case MapOf():
                return self._map(node, go_type, name)
            case Struct():
                return self._struct(node, go_type, name)

    def _scalar(self, node: Node, name: str, wanted: str) -> tuple[str, object]:
        if node.kind != "scalar":
            # An unquoted {{.Hash}} is a YAML flow mapping, the likeliest way to get here.
            hint = (
                ' (quote it: tag: "{{.Hash}}")' if node.kind == "mapping" and name == "tag" else ""
            )
            self.fail(node, f"{quote(name)} must be {wanted}, got {describe(node)}{hint}")
        return resolve(node)

    def _string(self, node: Node, name: str) -> str:
        self._scalar(node, name, "a string")
        text = node.value
        if node.tag == BINARY_TAG:
            try:
                text = base64.b64decode("".join(text.split()), validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                self.fail(node, f"{quote(name)} is !!binary but not base64 of UTF-8 text")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            self.fail(node, f"{quote(name)} is not valid Unicode (it holds a lone surrogate)")
        return text

    def _bool(self, node: Node, name: str) -> bool:
        tag, value = self._scalar(node, name, "a boolean")
        if tag == BOOL_TAG:
            return bool(value)
        if tag == STR_TAG and value in _TRUE_WORDS:
            return True
        if tag == STR_TAG and value in _FALSE_WORDS:
            return False
        return self.fail(
            node,
            f"{quote(name)} must be a boolean (true/false, yes/no, on/off), got {describe(node)}",
        )

    def _int(self, node: Node, go_type: Int, name: str) -> int:
        tag, value = self._scalar(node, name, "an integer")
        number: int | None = None
        if tag == INT_TAG and isinstance(value, int):
            number = value
        elif tag == FLOAT_TAG and isinstance(value, float) and math.isfinite(value):
            number = int(value)  # yaml.v3 truncates a float into an int field
        if number is None:
            self.fail(node, f"{quote(name)} must be an integer, got {describe(node)}")
        if not go_type.low <= number <= go_type.high:
            self.fail(
                node,
                f"{quote(name)} must be between {go_type.low} and {go_type.high}, got {number}",
            )
        return number

    def _any(self, node: Node, name: str) -> JSONValue:
        if node.kind == "sequence":
            return [self._json(item, f"{name}[{i}]") for i, item in enumerate(node.items)]
        if node.kind == "mapping":
            result: dict[str, JSONValue] = {}
            for key, item in self._entries(node, name):
                result[key.value] = self._json(item, f"{name}.{key.value}")
            return result
        tag, value = resolve(node)
        if tag == FLOAT_TAG and isinstance(value, float) and not math.isfinite(value):
            self.fail(node, f"{quote(name)} must be a finite number, got {describe(node)}")
        if tag == TIMESTAMP_TAG:
            self.fail(node, f"{quote(name)} is a YAML timestamp; quote it to make it a string")
        if tag in (BOOL_TAG, INT_TAG, FLOAT_TAG):
            assert isinstance(value, bool | int | float)
            return value
        return self._string(node, name)

    def _json(self, node: Node, name: str) -> JSONValue:
        value = self.decode(node, Any(), name)
        assert not isinstance(value, _Absent)
        return value  # type: ignore[return-value]

    def _list(self, node: Node, go_type: ListOf, name: str) -> list[Value]:
        if node.kind != "sequence":
            what = "a list of strings" if isinstance(go_type.item, Str) else "a list"
            self.fail(node, f"{quote(name)} must be {what}, got {describe(node)}")
        items: list[Value] = []
        for index, item in enumerate(node.items):
            value = self.decode(item, go_type.item, f"{name}[{index}]")
            if not isinstance(value, _Absent):  # yaml.v3 drops an item it could not set
                items.append(value)
        return items

    def _map(self, node: Node, go_type: MapOf, name: str) -> dict[str, Value]:
        if node.kind != "mapping":
            self.fail(node, f"{quote(name)} must be a mapping, got {describe(node)}")
        result: dict[str, Value] = {}
        for key, value in self._entries(node, name):
            decoded = self.decode(value, go_type.value, f"{name}.{key.value}")
            result[key.value] = _zero(go_type.value) if isinstance(decoded, _Absent) else decoded
        return result

    def _struct(self, node: Node, go_type: Struct, name: str) -> dict[str, Value]:
        if node.kind != "mapping":
            wanted = (
                f"{quote(name)} must be a mapping"
                if name
                else "must be a mapping of keys to values"
            )
            self.fail(node, f"{wanted}, got {describe(node)}")
        result: dict[str, Value] = {}
        known = list(go_type.fields)
        for key, value in self._entries(node, name):
            field_type = go_type.fields.get(key.value)
            if field_type is None:
                self.fail(key, unknown_key(key.value, known, name or None))
            full = f"{name}.{key.value}" if name else key.value
            self.lines.setdefault(full, key.line)
            decoded = self.decode(value, field_type, full)
            if isinstance(decoded, _Absent) or (decoded is None and go_type.omit_nil):
                continue
            result[key.value] = decoded
        return result

    def _entries(self, node: Node, name: str) -> list[tuple[Node, Node]]:
        """A mapping's (key, value) pairs with `<<` merges applied; keys are string scalars."""
        written: dict[str, Node] = {}
        merged: dict[str, tuple[Node, Node]] = {}
        pairs: list[tuple[Node, Node]] = []
        for written_key, value in node.pairs:
            key = self._deref(written_key)
            if key.kind != "scalar":
                self.fail(key, f"keys in {quote(name) if name else 'build.yml'} must be strings")
            tag, _ = resolve(key)
            if tag == MERGE_TAG:
                for merged_key, merged_value in self._merge_sources(value, name):
                    merged.setdefault(merged_key.value, (merged_key, merged_value))
                continue
            if key.value in written:
                self.fail(
                    key,
                    f"duplicate key {quote(key.value)} "
                    f"(already defined at line {written[key.value].line})",
                )
            written[key.value] = key
            pairs.append((key, value))
        extra = [pair for text, pair in merged.items() if text not in written]
        return extra + pairs

    def _merge_sources(self, value: Node, name: str) -> list[tuple[Node, Node]]:
        self.budget.visit(value)
        if value.kind == "alias":
            target = self.budget.enter_alias(value)
            try:
                return self._merge_sources(target, name)
            finally:
                self.budget.leave_alias(target)
        if value.kind == "sequence":
            found: list[tuple[Node, Node]] = []
            for item in value.items:
                found.extend(self._merge_sources(item, name))
            return found
        if value.kind != "mapping":
            self.fail(value, "a '<<' merge needs a mapping or a list of mappings")
        return self._entries(value, name)

    def _deref(self, node: Node) -> Node:
        seen = 0
        while node.kind == "alias" and node.target is not None:
            node = node.target
            seen += 1
            if seen > 100:
                self.fail(node, "alias chain too long")
        return node


def _zero(go_type: GoType) -> Value:
    zero: Mapping[type, Callable[[], Value]] = {Str: str, Bool: bool, Int: int}
    maker = zero.get(type(go_type))
    return maker() if maker is not None else None
