"""The cyclic collector during start-up (lkpkg.startup): off from the process entry until a
run's work begins or a command other than build, push and show-tag is resolved; never
touched for a library caller. Each case runs in its own interpreter (the collector's state
is the process's)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import git


def probe(code: str) -> object:
    done = subprocess.run(
        [sys.executable, "-c", f"import gc, json\n{code}"],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_library_caller_keeps_its_collector_as_it_was():
    assert probe(
        "from lkpkg import startup\n"
        "startup.resume()\n"
        "print(json.dumps([gc.isenabled(), gc.get_freeze_count()]))"
    ) == [True, 0]
    assert (
        probe(
            "gc.disable()\n"
            "from lkpkg import startup\n"
            "startup.pause(); startup.resume()\n"  # it was off before: not ours to turn on
            "print(json.dumps(gc.isenabled()))"
        )
        is False
    )


def test_the_run_turns_the_collector_back_on_before_any_work(tmp_path):
    repo = tmp_path / "repo"
    (repo / "one").mkdir(parents=True)
    (repo / "one" / "build.yml").write_text("image: one\n")
    (repo / "one" / "Dockerfile").write_text("FROM scratch\n")
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "one")
    found = probe(
        "from lkpkg import startup\n"
        "from lkpkg.oci.model import Platform\n"
        "from lkpkg.package.model import load_packages\n"
        "from lkpkg.pipeline.run import RunOptions, execute, plan_run\n"
        "startup.pause()\n"
        "off = gc.isenabled()\n"
        "options = RunOptions(platforms=(Platform('linux', 'amd64'),), jobs=1)\n"
        f"plan = plan_run(load_packages([__import__('pathlib').Path({str(repo / 'one')!r})]),"
        " options)\n"
        "seen = []\n"
        "execute(plan, lambda n, emit: seen.append(gc.isenabled()), jobs=1,"
        " on_event=lambda *a: None)\n"
        "print(json.dumps([off, gc.isenabled(), gc.get_freeze_count() > 0, seen]))"
    )
    assert found == [False, True, True, [True]]


@pytest.mark.parametrize(
    ("command", "enabled"), [("build", False), ("show-tag", False), ("cache", True)]
)
def test_commands_other_than_build_push_and_show_tag_get_it_back_once_resolved(command, enabled):
    found = probe(
        "import click\n"
        "from lkpkg import startup\n"
        "from lkpkg.cli import main\n"
        "startup.pause()\n"
        f"main.cli.get_command(click.Context(main.cli), {command!r})\n"
        "print(json.dumps(gc.isenabled()))"
    )
    assert found is enabled
