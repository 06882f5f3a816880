"""Shell completion: the script names lkpkg, and completing a subcommand works."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.conftest import ROOT, lkpkg


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_script_is_printed(shell):
    script = lkpkg("completion", shell).stdout
    assert "_LKPKG_COMPLETE" in script


def test_bash_completion_completes_subcommands():
    env = {
        **os.environ,
        "_LKPKG_COMPLETE": "bash_complete",
        "COMP_WORDS": "lkpkg pu",
        "COMP_CWORD": "1",
    }
    out = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "lkpkg")],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    # click's bash protocol: one "type,value" line per candidate.
    assert out.split() == ["plain,push"]
