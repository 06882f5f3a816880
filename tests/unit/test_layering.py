"""Layering rules of the registry and auth packages, checked on their source."""

from __future__ import annotations

import re
import subprocess
import sys
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


def test_the_pipeline_does_not_load_httpx_until_a_registry_is_used() -> None:
    # Commands that never talk to a registry (a no-op build) should not pay for httpx.
    code = (
        "import sys, lkpkg.pipeline.run, lkpkg.registry.protocol;"
        "assert 'httpx' not in sys.modules, 'httpx imported';"
        "from lkpkg.registry import RegistryClient;"
        "assert 'httpx' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
