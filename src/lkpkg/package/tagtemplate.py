"""build.yml `tag:` and `--tag`: the subset of Go's text/template that linuxkit tags use.

linuxkit renders the tag as a Go text/template executed over `{"Hash": <hash>}`. What tag
templates use in practice is supported exactly: text, `{{.Hash}}`, `{{slice .Hash I J}}`,
`{{printf FORMAT ARGS...}}` (verbs `%s %v %q %d %x %%` with flags, width and precision),
`{{print ...}}`, `{{len .Hash}}`, pipelines (`{{.Hash | printf "%.12s"}}`), comments and
`{{-`/`-}}` trim markers. Anything else (other fields, variables, `if`/`range`, other
functions) is refused with a clear message when the template is parsed, rather than rendered
differently from linuxkit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TypeAlias

DEFAULT_TAG_TEMPLATE = "{{.Hash}}"

Arg: TypeAlias = "str | int | Call | HashField"


class TemplateError(ValueError):
    """A template that cannot be parsed or rendered; the message is one line."""


@dataclass(frozen=True)
class HashField:
    pass


@dataclass(frozen=True)
class Call:
    function: str
    args: tuple[Arg, ...]


@dataclass(frozen=True)
class Template:
    """A parsed template: text pieces and pipelines, in order."""

    source: str
    parts: tuple[str | Call, ...]

    def render(self, hash: str) -> str:
        out: list[str] = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
            else:
                out.append(_text(_evaluate(part, hash)))
        return "".join(out)


_FUNCTIONS = ("printf", "print", "slice", "len")
_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>"(?:[^"\\\n]|\\.)*")
      | (?P<raw>`[^`]*`)
      | (?P<number>-?[0-9]+)
      | (?P<field>\.[A-Za-z_][A-Za-z0-9_]*)
      | (?P<dot>\.)
      | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
      | (?P<pipe>\|)
      | (?P<open>\()
      | (?P<close>\))
      | (?P<other>\S)
    )""",
    re.VERBOSE,
)
_ESCAPES = {"n": "\n", "t": "\t", "\\": "\\", '"': '"', "'": "'", "r": "\r", "a": "\a"}


def parse(source: str) -> Template:
    """Parse `source` ("" means the default, as in linuxkit); raise TemplateError."""
    if source == "":
        source = DEFAULT_TAG_TEMPLATE
    parts: list[str | Call] = []
    position = 0
    while True:
        start = source.find("{{", position)
        if start < 0:
            parts.append(source[position:])
            break
        text = source[position:start]
        end, inner, trim_left, trim_right = _action(source, start)
        if trim_left:
            text = text.rstrip(" \t\r\n")
        parts.append(text)
        position = end
        if trim_right:
            while position < len(source) and source[position] in " \t\r\n":
                position += 1
        stripped = inner.strip()
        if stripped.startswith("/*"):
            if not stripped.endswith("*/"):
                raise TemplateError("unclosed comment")
            continue
        parts.append(_pipeline(stripped))
    return Template(source, tuple(part for part in parts if part != ""))


def _action(source: str, start: int) -> tuple[int, str, bool, bool]:
    """(end, inside, trim left, trim right) of the action starting at `start`."""
    index = start + 2
    trim_left = source.startswith("- ", index) or source.startswith("-\t", index)
    if trim_left:
        index += 1
    quote: str | None = None
    scan = index
    while scan < len(source):
        char = source[scan]
        if quote is not None:
            if char == "\\" and quote == '"':
                scan += 2
                continue
            if char == quote:
                quote = None
        elif char in '"`':
            quote = char
        elif source.startswith("}}", scan):
            inner = source[index:scan]
            trim_right = inner.endswith((" -", "\t-"))
            if trim_right:
                inner = inner[:-1]
            return scan + 2, inner, trim_left, trim_right
        scan += 1
    raise TemplateError("unclosed action: a '{{' without its '}}'")


def _pipeline(text: str) -> Call:
    tokens = _tokens(text)
    commands: list[list[tuple[str, str]]] = [[]]
    for token in tokens:
        if token[0] == "pipe":
            commands.append([])
        else:
            commands[-1].append(token)
    if any(not command for command in commands):
        raise TemplateError("missing command in a pipeline")
    result: Arg | None = None
    for command in commands:
        call = _command(command, result)
        result = call
    assert isinstance(result, Call)
    return result


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:  # only trailing spaces are left
            break
        position = match.end()
        kind = match.lastgroup
        assert kind is not None
        if kind == "field" and tokens and match.start(kind) == match.start():
            # `slice.Hash`, `.Hash.X`: a field of what comes before; Go fails on these.
            raise TemplateError(f"'{tokens[-1][1]}{match.group(kind)}' is not supported")
        tokens.append((kind, match.group(kind)))
    return tokens


def _command(tokens: list[tuple[str, str]], piped: Arg | None) -> Call:
    kind, word = tokens[0]
    if kind == "name":
        if word not in _FUNCTIONS:
            raise TemplateError(
                f"function '{word}' is not supported in tag templates "
                f"(supported: .Hash, {', '.join(_FUNCTIONS)})"
            )
        args = [_operand(token) for token in tokens[1:]]
        if piped is not None:
            args.append(piped)
        return Call(word, tuple(args))
    if len(tokens) > 1 or piped is not None:
        raise TemplateError(f"can't give an argument to non-function {word}")
    return Call("value", (_operand(tokens[0]),))


def _operand(token: tuple[str, str]) -> Arg:
    kind, word = token
    if kind == "field":
        if word != ".Hash":
            raise TemplateError(f"unknown field '{word}': only .Hash is available")
        return HashField()
    if kind == "number":
        return int(word)
    if kind == "string":
        return _unescape(word[1:-1])
    if kind == "raw":
        return word[1:-1]
    if kind == "dot":
        raise TemplateError("'.' alone is not supported: use .Hash")
    if kind in ("open", "close"):
        raise TemplateError("parenthesised pipelines are not supported in tag templates")
    if kind == "name":
        raise TemplateError(f"function '{word}' must come first in a command")
    raise TemplateError(f"unexpected {word!r} in action")


def _unescape(body: str) -> str:
    out: list[str] = []
    index = 0
    while index < len(body):
        char = body[index]
        if char == "\\":
            following = body[index + 1 : index + 2]
            if following not in _ESCAPES:
                raise TemplateError(f"unsupported escape '\\{following}' in a string")
            out.append(_ESCAPES[following])
            index += 2
            continue
        out.append(char)
        index += 1
    return "".join(out)


def _evaluate(arg: Arg, hash: str) -> str | int:
    if isinstance(arg, HashField):
        return hash
    if isinstance(arg, str | int):
        return arg
    values = [_evaluate(a, hash) for a in arg.args]
    if arg.function == "value":
        return values[0]
    if arg.function == "slice":
        return _slice(values)
    if arg.function == "print":
        return _sprint(values)
    if arg.function == "len":
        if len(values) != 1 or not isinstance(values[0], str):
            raise TemplateError("len takes one string, such as .Hash")
        return len(values[0].encode())
    return _sprintf(values)


def _slice(values: list[str | int]) -> str:
    if not values or not isinstance(values[0], str):
        raise TemplateError("slice needs a string first, such as .Hash")
    text, indices = values[0], values[1:]
    if len(indices) > 2 or not all(isinstance(i, int) for i in indices):
        raise TemplateError("slice takes a string and at most two integer indices")
    low = int(indices[0]) if indices else 0
    high = int(indices[1]) if len(indices) > 1 else len(text)
    if not 0 <= low <= high <= len(text):
        raise TemplateError(f"slice index out of range: [{low}:{high}] of {len(text)} characters")
    return text[low:high]


def _text(value: str | int) -> str:
    return value if isinstance(value, str) else str(value)


def _sprint(values: list[str | int]) -> str:
    # fmt.Sprint adds a space between operands when neither is a string.
    out = ""
    for index, value in enumerate(values):
        if index and not isinstance(value, str) and not isinstance(values[index - 1], str):
            out += " "
        out += _text(value)
    return out


# Compiled (and kept in re's cache) by the first printf, not by every import.
_VERB = r"%(?P<flags>[-+# 0]*)(?P<width>[0-9]+)?(?:\.(?P<precision>[0-9]*))?(?P<verb>.)?"


def _sprintf(values: list[str | int]) -> str:
    if not values or not isinstance(values[0], str):
        raise TemplateError("printf needs a format string first")
    fmt, args = values[0], list(values[1:])
    out: list[str] = []
    position = 0
    used = 0
    for match in re.finditer(_VERB, fmt):
        out.append(fmt[position : match.start()])
        position = match.end()
        verb = match["verb"]
        if verb == "%":
            out.append("%")
            continue
        if verb is None or verb not in "svqdx":
            raise TemplateError(f"printf verb '%{verb or ''}' is not supported in tag templates")
        if used >= len(args):
            out.append(f"%!{verb}(MISSING)")
            continue
        out.append(_format(args[used], match))
        used += 1
    out.append(fmt[position:])
    if used < len(args):
        extra = ", ".join(f"{'string' if isinstance(a, str) else 'int'}={a}" for a in args[used:])
        out.append(f"%!(EXTRA {extra})")
    return "".join(out)


def _format(value: str | int, match: re.Match[str]) -> str:
    verb, flags = match["verb"], match["flags"]
    precision = match["precision"]
    if verb in "sv" or (verb == "x" and isinstance(value, str)):
        text = _text(value)
        if precision is not None and isinstance(value, str):
            text = text[: int(precision or 0)]
        if verb == "x":
            text = text.encode().hex()
    elif verb == "q":
        if not isinstance(value, str):
            raise TemplateError("printf %q of a number is not supported in tag templates")
        text = '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    elif isinstance(value, int):
        text = format(value, "x" if verb == "x" else "d")
    else:
        return f"%!{verb}(string={value})"
    width = int(match["width"] or 0)
    if "-" in flags:
        return text.ljust(width)
    fill = "0" if "0" in flags and isinstance(value, int) else " "
    return text.rjust(width, fill)
