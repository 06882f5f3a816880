"""A bug in one package's work during a many-package run keeps its traceback."""

from __future__ import annotations

from pathlib import Path

from lkpkg.oci.model import Platform
from lkpkg.package.model import load_packages
from lkpkg.pipeline.run import RunOptions, execute, plan_run
from lkpkg.pipeline.schedule import Failed, Succeeded
from lkpkg.progress import PlainProgress
from tests.conftest import git


def package(repo: Path, name: str) -> Path:
    directory = repo / name
    directory.mkdir(parents=True)
    (directory / "Dockerfile").write_text("FROM scratch\n")
    (directory / "build.yml").write_text(f"image: {name}\narches: [amd64]\n")
    return directory


def test_an_unexpected_exception_keeps_its_traceback_and_others_still_run(tmp_path, capsys):
    repo = tmp_path / "repo"
    one, two = package(repo, "one"), package(repo, "two")
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "two packages")
    options = RunOptions(platforms=(Platform("linux", "amd64"),), jobs=1)
    plan = plan_run(load_packages([one, two]), options)

    def work(number: int, emit: object) -> str:
        if plan.packages[number].spec.image == "one":
            raise ZeroDivisionError("a bug, not a user error")
        return "done"

    with PlainProgress() as display:
        outcomes = execute(plan, work, jobs=options.jobs, on_event=display)
    err = capsys.readouterr().err
    assert "Traceback" in err and "ZeroDivisionError: a bug, not a user error" in err
    by_image = {plan.packages[i].spec.image: o for i, o in enumerate(outcomes)}
    assert isinstance(by_image["one"], Failed)
    assert isinstance(by_image["two"], Succeeded)
