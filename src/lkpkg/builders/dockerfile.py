"""The `FROM` references of a Dockerfile, so the images a build needs can be provided offline.

Only what decides which images a build reads is parsed: `ARG` defaults before and between
stages, `FROM [--platform=…] IMAGE [AS NAME]`, and line continuations. Stage names and
`scratch` are not images. Substitution follows the Dockerfile rules for `$VAR`, `${VAR}`,
`${VAR:-default}` and `${VAR:+alt}`; build args given by the caller win over defaults.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

_VAR = re.compile(
    r"\$(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?::(?P<op>[-+])(?P<word>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)


def _substitute(text: str, values: Mapping[str, str]) -> str:
    def repl(m: re.Match[str]) -> str:
        name = m.group("braced") or m.group("bare")
        value = values.get(name, "")
        op = m.group("op")
        if op == "-":
            return value or m.group("word")
        if op == "+":
            return m.group("word") if value else ""
        return value

    return _VAR.sub(repl, text)


def _logical_lines(text: str) -> list[str]:
    lines: list[str] = []
    current = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        current += stripped
        lines.append(current)
        current = ""
    if current:
        lines.append(current)
    return lines


def from_images(dockerfile: Path, build_args: Mapping[str, str]) -> list[str]:
    """The image references named by FROM lines, in order, without stage names or scratch."""
    text = dockerfile.read_text(encoding="utf-8", errors="replace")
    values: dict[str, str] = {}
    stages: set[str] = set()
    images: list[str] = []
    for line in _logical_lines(text):
        parts = line.split()
        keyword = parts[0].upper()
        if keyword == "ARG" and len(parts) > 1:
            for decl in parts[1:]:
                name, _, default = decl.partition("=")
                if name in build_args:
                    values[name] = build_args[name]
                elif "=" in decl:
                    values[name] = _substitute(default.strip("\"'"), values)
        elif keyword == "FROM":
            words = [w for w in parts[1:] if not w.startswith("--")]
            if not words:
                continue
            image = _substitute(words[0], {**values, **build_args})
            is_image = image.lower() != "scratch" and image.lower() not in stages
            if len(words) >= 3 and words[1].upper() == "AS":
                stages.add(words[2].lower())
            if is_image and image not in images:
                images.append(image)
    return images
