"""Inputs lkpkg cannot honour are refused in one line (exit 2), never silently ignored."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.conftest import ROOT, git


def run_lkpkg(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ROOT / ".venv" / "bin" / "lkpkg"), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "LKPKG_PROGRESS": "plain"},
        check=False,
    )


def test_an_empty_cache_path_is_refused_not_taken_as_the_current_directory(tmp_path):
    for argv in (["cache", "ls", "--cache", ""], ["build", "--cache", " ", "nowhere"]):
        result = run_lkpkg(*argv, cwd=tmp_path)
        assert result.returncode == 2, result.stderr
        assert "--cache" in result.stderr and "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []  # nothing written where we stand


def test_depends_docker_images_is_refused_before_any_build(tmp_path):
    repo = tmp_path / "repo"
    pkg = repo / "withdeps"
    pkg.mkdir(parents=True)
    (pkg / "Dockerfile").write_text("FROM scratch\nCOPY images /images\n")
    (pkg / "build.yml").write_text(
        "image: withdeps\narches: [amd64]\n"
        "depends:\n  docker-images:\n    target-dir: images\n"
        f"    list: [alpine:3.20@sha256:{'a' * 64}]\n"
    )
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "a package with docker-images")
    shown = run_lkpkg("show-tag", str(pkg), cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr  # the tag does not need the images
    cache = tmp_path / "cache"
    result = run_lkpkg(
        "build", "--cache", str(cache), "--platforms", "linux/amd64", str(pkg), cwd=tmp_path
    )
    assert result.returncode == 2, result.stderr
    assert "depends.docker-images is not supported" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (cache / "index.json").exists()


def test_platforms_on_a_package_without_dockerfile_is_one_line_not_a_traceback(tmp_path):
    repo = tmp_path / "repo"
    pkg = repo / "nodocker"
    pkg.mkdir(parents=True)
    (pkg / "build.yml").write_text("image: nodocker\narches:\n")  # linuxkit's arches-null shape
    git(repo, "init", "-q")
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "a package with no Dockerfile")
    cache = tmp_path / "cache"
    skipped = run_lkpkg("build", "--cache", str(cache), str(pkg), cwd=tmp_path)
    assert skipped.returncode == 0, skipped.stderr  # no arches: skipped, as linuxkit does
    result = run_lkpkg(
        "build", "--cache", str(cache), "--platforms", "linux/amd64", str(pkg), cwd=tmp_path
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "dockerfile 'Dockerfile' not found" in result.stderr
