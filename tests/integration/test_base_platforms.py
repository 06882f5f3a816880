"""A base the cache holds only for other platforms: refused before buildah runs, in one line
naming the reference, the platform, what the cache holds and how to get it; a stage's own
`--platform=` is checked for that platform; doctor reports the same gap. A cross build's
`FROM --platform=$BUILDPLATFORM` stage runs on the host's platform, as BuildKit runs it
(buildah 1.28 alone gives BUILDPLATFORM the target's value; lkpkg passes the host's)."""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import tarfile
from pathlib import Path

from tests.conftest import BASE_REF, git, lkpkg


def package_repo(root: Path, dockerfile: str) -> Path:
    package = root / "tiny"
    package.mkdir(parents=True)
    (package / "Dockerfile").write_text(dockerfile)
    (package / "build.yml").write_text("image: tiny\norg: wombat\n")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "tiny")
    return package


def recording_buildah(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """PATH with a `buildah` that logs each invocation, then runs the real one."""
    real = shutil.which("buildah")
    assert real is not None
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "buildah.log"
    log.touch()
    wrapper = bin_dir / "buildah"
    wrapper.write_text(f'#!/bin/sh\necho "$*" >> {log}\nexec {real} "$@"\n')
    wrapper.chmod(0o755)
    return {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}, log


def builds(log: Path) -> list[str]:
    return [line for line in log.read_text().splitlines() if line.split()[:1] == ["build"]]


def test_a_base_missing_the_target_platform_is_one_line_and_buildah_never_builds(
    tmp_path, cache_dir
):
    package = package_repo(tmp_path / "repo", f"FROM {BASE_REF}\nRUN true\n")
    env, log = recording_buildah(tmp_path)
    result = lkpkg(
        "build",
        "--cache",
        str(cache_dir),
        "--platforms",
        "linux/riscv64",
        str(package),
        env=env,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("lkpkg: error:")]
    assert len(errors) == 1 and result.stderr.splitlines()[-1] == errors[0]
    error = errors[0]
    assert f"FROM {BASE_REF}: not in the cache for linux/riscv64" in error
    assert "only for linux/amd64, linux/arm64" in error
    assert f"lkpkg cache pull --platforms linux/riscv64 {BASE_REF}" in error
    assert "scripts/mkbase riscv64" in error
    assert builds(log) == []

    doctor = lkpkg(
        "doctor",
        "--notrust",
        "--org",
        "localhost:1/wombat",
        "--timeout",
        "1",
        "--cache",
        str(cache_dir),
        "--platforms",
        "linux/riscv64",
        str(package),
        check=False,
    )
    assert doctor.returncode == 1
    lines = doctor.stdout.splitlines()
    (bases,) = [n for n, line in enumerate(lines) if "bases localhost:1/wombat/tiny" in line]
    assert "FAIL" in lines[bases] and "not in the cache for linux/riscv64" in lines[bases]
    assert f"lkpkg cache pull --platforms linux/riscv64 {BASE_REF}" in lines[bases + 1]
    ok = lkpkg(
        "doctor",
        "--notrust",
        "--org",
        "localhost:1/wombat",
        "--timeout",
        "1",
        "--cache",
        str(cache_dir),
        "--platforms",
        "linux/amd64",
        str(package),
        check=False,
    )
    assert any(
        "bases localhost:1/wombat/tiny" in line and "ok" in line for line in ok.stdout.splitlines()
    )


def test_a_stage_platform_flag_is_checked_for_that_platform(tmp_path, cache_dir):
    # The target (the host's) is in the cache; the stage's own --platform is not.
    dockerfile = f"FROM --platform=linux/riscv64 {BASE_REF} AS tools\nRUN true\nFROM {BASE_REF}\n"
    package = package_repo(tmp_path / "repo", dockerfile)
    env, log = recording_buildah(tmp_path)
    result = lkpkg("build", "--cache", str(cache_dir), str(package), env=env, check=False)
    assert result.returncode == 2, result.stderr
    error = result.stderr.splitlines()[-1]
    assert error.startswith("lkpkg: error:")
    assert "not in the cache for linux/riscv64 (--platform=linux/riscv64)" in error
    assert builds(log) == []


REF_NAME = "org.opencontainers.image.ref.name"


def layer_file(cache: Path, ref_suffix: str, name: str) -> tuple[str, bytes]:
    """(architecture, content of `name`) of the one-layer image whose ref ends `ref_suffix`."""
    index = json.loads((cache / "index.json").read_text())
    (entry,) = [
        m
        for m in index["manifests"]
        if m.get("annotations", {})
        .get("org.opencontainers.image.ref.name", "")
        .endswith(ref_suffix)
    ]

    def blob(digest: str) -> bytes:
        return (cache / "blobs" / "sha256" / digest.split(":", 1)[1]).read_bytes()

    manifest = json.loads(blob(entry["digest"]))
    config = json.loads(blob(manifest["config"]["digest"]))
    (layer,) = manifest["layers"]
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob(layer["digest"])))) as tar:
        member = tar.extractfile(name)
        assert member is not None
        return config["architecture"], member.read()


def test_a_cross_build_runs_a_buildplatform_stage_on_the_host(tmp_path, cache_dir):
    # riscv64 is not in the cache, but only the scratch stage is built for it; the stage that
    # runs reads the base for the host's platform, which the cache has.
    dockerfile = (
        f"FROM --platform=$BUILDPLATFORM {BASE_REF} AS tools\n"
        "RUN uname -m > /machine\n"
        "FROM scratch\n"
        "COPY --from=tools /machine /machine\n"
    )
    package = package_repo(tmp_path / "repo", dockerfile)
    result = lkpkg("build", "--cache", str(cache_dir), "--platforms", "linux/riscv64", str(package))
    assert result.returncode == 0, result.stderr
    architecture, machine = layer_file(cache_dir, "-riscv64", "machine")
    assert architecture == "riscv64"
    assert machine.decode().strip() == os.uname().machine
