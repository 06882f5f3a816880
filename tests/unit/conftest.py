"""Fixtures shared by unit tests."""

from __future__ import annotations

import os

import pytest


@pytest.fixture
def isolated_git(monkeypatch: pytest.MonkeyPatch) -> None:
    """git as on a fresh machine: no inherited GIT_* variables, no user or system config."""
    for name in list(os.environ):
        if name.startswith("GIT_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", "/dev/null")
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
