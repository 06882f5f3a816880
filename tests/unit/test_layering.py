"""Layering rules of the registry and auth packages, checked on their source."""

from __future__ import annotations

import re
from pathlib import Path

import lkpkg

SRC = Path(lkpkg.__file__).parent
ENVIRONMENT_READ = re.compile(r"os\.environ|os\.getenv|getenv\(|environb")


def _modules(package: str) -> list[Path]:
    return sorted((SRC / package).glob("*.py"))


def test_registry_and_auth_read_no_environment() -> None:
    # Settings enter once, at the CLI; these packages take every value as an argument.
    offenders = [
        f"{path.relative_to(SRC)}:{number}"
        for package in ("registry", "auth")
        for path in _modules(package)
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if ENVIRONMENT_READ.search(line)
    ]
    assert offenders == []


def test_registry_does_not_import_auth() -> None:
    # TLS trust and credentials are handed in (TlsPolicy, Keychain); layers point down.
    offenders = [
        str(path.relative_to(SRC))
        for path in _modules("registry")
        if re.search(r"^\s*(from|import) (lkpkg\.auth|importlib)", path.read_text(), re.M)
    ]
    assert offenders == []


def test_registry_modules_stay_small() -> None:
    sizes = {p.name: len(p.read_text().splitlines()) for p in _modules("registry")}
    assert {name: n for name, n in sizes.items() if n > 450} == {}
