"""The `FROM` references of a Dockerfile, so the images a build needs can be provided offline.

Only what decides which images a build reads is parsed: `ARG` defaults before and between
stages, `FROM [--platform=…] IMAGE [AS NAME]`, and line continuations. Stage names and
`scratch` are not images. Substitution follows the Dockerfile rules for `$VAR`, `${VAR}`,
`${VAR:-default}` and `${VAR:+alt}`; build args given by the caller win over defaults.

`from_stages` also says which platform each FROM reads: its `--platform=` value, with the
automatic platform args BuildKit defines in the global scope (`TARGETPLATFORM`, `TARGETOS`,
`TARGETARCH`, `TARGETVARIANT` and their `BUILD…` twins) substituted; else the target's.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from lkpkg.errors import LkpkgError
from lkpkg.oci.model import Platform

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


def platform_args(target: Platform, build: Platform) -> dict[str, str]:
    """BuildKit's automatic platform args for a build of `target` on `build`."""
    args: dict[str, str] = {}
    for prefix, platform in (("TARGET", target), ("BUILD", build)):
        args[f"{prefix}PLATFORM"] = str(platform)
        args[f"{prefix}OS"] = platform.os
        args[f"{prefix}ARCH"] = platform.architecture
        args[f"{prefix}VARIANT"] = platform.variant or ""
    return args


@dataclass(frozen=True)
class FromImage:
    """An image a FROM line reads (`name` as written, substituted) and for which platform:
    its `--platform=` (substituted), else the build's target (None when none was given)."""

    name: str
    platform: Platform | None
    # `--platform=` as written, for messages ("--platform=$BUILDPLATFORM").
    platform_flag: str | None = None


def from_stages(
    dockerfile: Path,
    build_args: Mapping[str, str],
    *,
    target: Platform | None = None,
    build: Platform | None = None,
) -> list[FromImage]:
    """Every image FROM lines read, in order, each once per platform, without stage names or
    scratch. `target`/`build` give the automatic platform args (`build` defaults to
    `target`); without `target`, a `--platform=` that names them stays unresolved (None)."""
    text = dockerfile.read_text(encoding="utf-8", errors="replace")
    automatic = platform_args(target, build or target) if target is not None else {}
    values: dict[str, str] = {}
    stages: set[str] = set()
    found: list[FromImage] = []
    for line in _logical_lines(text):
        parts = line.split()
        keyword = parts[0].upper()
        if keyword == "ARG" and len(parts) > 1:
            for decl in parts[1:]:
                name, _, default = decl.partition("=")
                if name in build_args:
                    values[name] = build_args[name]
                elif "=" in decl:
                    values[name] = _substitute(default.strip("\"'"), {**automatic, **values})
        elif keyword == "FROM":
            flags = [w for w in parts[1:] if w.startswith("--")]
            words = [w for w in parts[1:] if not w.startswith("--")]
            if not words:
                continue
            scope = {**automatic, **values, **build_args}
            image = _substitute(words[0], scope)
            is_image = image.lower() != "scratch" and image.lower() not in stages
            if len(words) >= 3 and words[1].upper() == "AS":
                stages.add(words[2].lower())
            flag = next((f for f in flags if f.lower().startswith("--platform=")), None)
            platform = target
            if flag is not None:
                platform = _platform(_substitute(flag.partition("=")[2], scope), target)
            entry = FromImage(image, platform, flag)
            if is_image and all((e.name, e.platform) != (image, platform) for e in found):
                found.append(entry)
    return found


def _platform(text: str, target: Platform | None) -> Platform | None:
    try:
        return Platform.parse(text)
    except LkpkgError:
        # Platform args unknown (no target given), or a value the builder will refuse itself.
        return target


def from_images(dockerfile: Path, build_args: Mapping[str, str]) -> list[str]:
    """The image references named by FROM lines, in order, without stage names or scratch."""
    names = [image.name for image in from_stages(dockerfile, build_args)]
    return list(dict.fromkeys(names))
