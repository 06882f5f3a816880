"""Nothing left behind, nothing leaked, nothing borrowed from the machine.

- SIGKILL at random points of `lkpkg build --force --push`: no child outlives lkpkg by 100 ms,
  the next run leaves no temp entry and no buildah container, and the cache reads back.
- A build that ends, built or failed, leaves no mount and no container in the cache's store
  (after a `COPY --from` of a stage without instructions), and keeps the bases.
- Children's environments: buildah never sees a passphrase (a PATH shim records its environ).
- Hermetic builds: a base in buildah's machine-wide store is not used; a missing base or an
  unknown short name is one line naming the reference and how to get it.
- Long labels are not put on a command line; a long build arg is a one-line exit 2.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import BASE_REF, ROOT, git, lkpkg, run

pytestmark = pytest.mark.integration

KILLER = Path(__file__).with_name("_killer.py")
TINY = (
    f"FROM {BASE_REF} AS build\n"
    "RUN echo tiny > /tiny && sleep 0.5\n"
    "FROM scratch\n"
    "COPY --from=build /tiny /tiny\n"
)


def package_repo(root: Path, dockerfile: str = TINY, build_yml: str = "image: tiny\n") -> Path:
    package = root / "tiny"
    package.mkdir(parents=True)
    (package / "Dockerfile").write_text(dockerfile)
    (package / "build.yml").write_text(build_yml)
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "tiny")
    return package


def store_env(cache: Path) -> dict[str, str]:
    conf = cache.with_name(cache.name + ".buildah") / "storage.conf"
    return {**os.environ, "CONTAINERS_STORAGE_CONF": str(conf)}


def buildah_containers(cache: Path) -> list[str]:
    listed = run(["buildah", "containers", "--all", "--quiet"], env=store_env(cache)).stdout
    return listed.split()


def store_images(cache: Path) -> set[str]:
    """The IDs of every image in the cache's buildah store, dangling ones included."""
    listed = run(["buildah", "images", "--all", "--quiet", "--no-trunc"], env=store_env(cache))
    return set(listed.stdout.split())


def store_mounts(cache: Path) -> list[str]:
    store = str(cache.with_name(cache.name + ".buildah"))
    with open("/proc/mounts") as mounts:
        return [line.split()[1] for line in mounts if line.split()[1].startswith(store)]


def store_state(cache: Path) -> str:
    """What the store holds, for a failure's message: containers (name, image, mount),
    leftover build markers, mounts."""
    listed = run(
        ["buildah", "containers", "--all", "--format", "{{.ContainerName}} {{.ImageName}}"],
        env=store_env(cache),
    ).stdout
    builds = cache.with_name(cache.name + ".buildah") / "builds"
    markers = sorted(p.name for p in builds.iterdir()) if builds.is_dir() else None
    return f"containers: {listed.strip()!r}; markers: {markers}; mounts: {store_mounts(cache)}"


def tmp_entries(cache: Path) -> list[str]:
    tmp = cache / ".tmp"
    return sorted(os.listdir(tmp)) if tmp.is_dir() else []


def assert_cache_reads_back(cache: Path, ref: str) -> None:
    """umoci lists the ref, skopeo reads the index and the arch image, and lkpkg's fsck finds
    every blob intact. (oci-image-tool 1.0 refuses the in-toto layers of the attestation
    manifests the index lists, and refs with a registry port.)"""
    assert ref in run(["umoci", "ls", "--layout", str(cache)]).stdout
    inspected = json.loads(run(["skopeo", "inspect", "--raw", f"oci:{cache}:{ref}"]).stdout)
    assert inspected["manifests"]
    image = json.loads(run(["skopeo", "inspect", f"oci:{cache}:{ref}-amd64"]).stdout)
    assert image["Architecture"] == "amd64"
    fsck = lkpkg("cache", "fsck", "--cache", str(cache))
    assert "0 corrupt, 0 broken refs" in fsck.stdout


def kill_at_random_points(kills: int, seed: int, tmp_path: Path, cache: Path, org: str) -> None:
    package = package_repo(tmp_path / "repo")
    exe = str(ROOT / ".venv" / "bin" / "lkpkg")
    argv = [exe, "build", "--force", "--push", "--notrust", "--cache", str(cache), "--org", org]
    argv += ["--platforms", "linux/amd64", str(package)]
    images_before = store_images(cache)  # the bases the fixture loaded
    started = time.monotonic()
    run(argv)
    duration = time.monotonic() - started
    rng = random.Random(seed)
    landed = exiting = 0
    for _ in range(kills):
        delay = rng.uniform(0.05, duration)
        report = json.loads(
            run([sys.executable, str(KILLER), str(delay), "0.1", "--", *argv]).stdout
        )
        assert report["survivors"] == [], f"children outlived lkpkg by 100 ms: {report}"
        landed += not report["finished"]
        exiting += report.get("exiting", 0)
    left_before = tmp_entries(cache)
    run(argv)  # the next run
    ref = f"{org}/tiny:{git(package.parent, 'rev-parse', 'HEAD:tiny')}"
    assert tmp_entries(cache) == []
    assert buildah_containers(cache) == [], store_state(cache)
    assert store_mounts(cache) == [], store_state(cache)
    # buildah writes the image straight into the run's scratch layout: its store keeps the
    # bases and nothing of the builds, killed or not (no stage, no dangling layer).
    assert store_images(cache) == images_before
    # Locks of dead runs are swept too; none is held now that every run has ended.
    runs = cache / ".runs"
    live = [p.name for p in runs.iterdir()] if runs.is_dir() else []
    assert len(live) <= 1  # at most the last run's own, released with its process
    assert_cache_reads_back(cache, ref)
    print(
        f"\nkills={kills} landed_during_run={landed} seed={seed} in_exit_at_100ms={exiting} "
        f"temp_entries_before_next_run={len(left_before)} after=0 containers_after=0"
    )


def test_sigkill_during_build_and_push_leaves_nothing(tmp_path, cache_dir, registry_plain):
    org = f"{registry_plain.host}/{registry_plain.repo('kill')}"
    kill_at_random_points(10, 11, tmp_path, cache_dir, org)


@pytest.mark.slow
def test_sigkill_30_times_for_the_figure(tmp_path, cache_dir, registry_plain):
    if os.environ.get("LKPKG_SLOW") != "1":
        pytest.skip("30 kills take minutes: LKPKG_SLOW=1 to run (docs/reliability.md)")
    org = f"{registry_plain.host}/{registry_plain.repo('kill30')}"
    kill_at_random_points(30, 30, tmp_path, cache_dir, org)


def test_a_build_leaves_no_mount_when_it_ends_built_or_failed(tmp_path, cache_dir):
    images_before = store_images(cache_dir)  # the bases the fixture loaded
    # buildah 1.28 keeps the working container of a stage without instructions that a later
    # COPY --from reads, mounted, after a build that succeeded (examples/console's hello).
    empty_stage = (
        f"FROM {BASE_REF} AS base\n\nFROM scratch\nCOPY --from=base /etc/debian_version /v\n"
    )
    built = package_repo(tmp_path / "built", empty_stage)
    lkpkg("build", "--cache", str(cache_dir), "--platforms", "linux/amd64", str(built))
    assert store_mounts(cache_dir) == []
    assert buildah_containers(cache_dir) == []
    assert store_images(cache_dir) == images_before  # the base the stage used is still there

    # The same stage in a build that fails: lkpkg ends with the error and no mount either.
    failing = empty_stage.replace("FROM scratch", f"FROM {BASE_REF}") + "RUN exit 3\n"
    failed = package_repo(tmp_path / "failed", failing)
    result = lkpkg(
        "build", "--cache", str(cache_dir), "--platforms", "linux/amd64", str(failed), check=False
    )
    assert result.returncode == 1 and "failed (exit 3)" in result.stderr, result.stderr
    assert store_mounts(cache_dir) == []
    assert buildah_containers(cache_dir) == []
    assert store_images(cache_dir) == images_before


def build_after_a_dead_build(cache: Path, package: Path) -> None:
    """Leave a dead build's marker in the cache's store, build `package` again, and check
    the build's sweep left the store empty: no mount, no container, no marker."""
    builds = cache.with_name(cache.name + ".buildah") / "builds"
    builds.mkdir(exist_ok=True)
    (builds / "999999-dead").touch()
    again = lkpkg(
        "build", "--force", "--cache", str(cache), "--platforms", "linux/amd64", str(package)
    )
    assert "built=amd64" in again.stdout
    assert store_mounts(cache) == [], store_state(cache)
    assert buildah_containers(cache) == [], store_state(cache)
    assert not list(builds.iterdir())


def test_a_dead_builds_leftover_mount_does_not_stall_the_store(tmp_path, cache_dir):
    # A killed buildah can leave a layer it was making mounted, which buildah can then never
    # delete ("unlinkat …/merged: device or resource busy", after a 10 s wait on every
    # command). Played here by a bind mount in the store's overlay directory beside a dead
    # build's marker: the next build, alone on the store, detaches it before it sweeps.
    package = package_repo(tmp_path / "repo")
    lkpkg("build", "--cache", str(cache_dir), "--platforms", "linux/amd64", str(package))
    store = cache_dir.with_name(cache_dir.name + ".buildah")
    merged = store / "graph" / "overlay" / ("f" * 64) / "merged"
    merged.mkdir(parents=True)
    source = tmp_path / "elsewhere"
    source.mkdir()
    run(["mount", "--bind", str(source), str(merged)])
    try:
        assert store_mounts(cache_dir) == [str(merged)]
        build_after_a_dead_build(cache_dir, package)
    finally:
        subprocess.run(["umount", "-l", str(merged)], capture_output=True, check=False)


def test_a_container_a_killed_buildah_left_without_its_metadata_is_removed(tmp_path, cache_dir):
    # Killed at the wrong moment, `buildah build` leaves a container in the store before it
    # wrote its own metadata: `buildah containers --all` lists it (no image name), and
    # `buildah rm --all` passes over it, exit 0 (a full CI run found one after test_hygiene's
    # kills). Played here with containers-storage's own tool, beside a dead build's marker.
    package = package_repo(tmp_path / "repo")
    lkpkg("build", "--cache", str(cache_dir), "--platforms", "linux/amd64", str(package))
    image = sorted(store_images(cache_dir))[0].removeprefix("sha256:")
    run(
        ["containers-storage", "create-container", "--name", "debian-working-container", image],
        env=store_env(cache_dir),
    )
    assert buildah_containers(cache_dir) != []
    run(["buildah", "rm", "--all"], env=store_env(cache_dir))
    assert buildah_containers(cache_dir) != []  # what buildah alone leaves
    build_after_a_dead_build(cache_dir, package)


def test_buildah_never_sees_a_passphrase(tmp_path, cache_dir):
    package = package_repo(tmp_path / "repo")
    dumps = tmp_path / "environ"
    dumps.mkdir()
    shim = tmp_path / "shim"
    shim.mkdir()
    real = run(["sh", "-c", "command -v buildah"]).stdout.strip()
    (shim / "buildah").write_text(f'#!/bin/sh\nenv > "{dumps}/$$.env"\nexec {real} "$@"\n')
    (shim / "buildah").chmod(0o755)
    secrets = {
        "COSIGN_PASSWORD": "cosign-secret-1",
        "DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE": "root-secret-2",
        "DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE": "repo-secret-3",
        "NOTARY_TARGETS_PASSPHRASE": "notary-secret-4",
    }
    env = {**secrets, "PATH": f"{shim}:{os.environ['PATH']}"}
    lkpkg(
        "build",
        "--force",
        "--cache",
        str(cache_dir),
        "--platforms",
        "linux/amd64",
        str(package),
        env=env,
    )
    seen = [p.read_text() for p in dumps.iterdir()]
    assert len(seen) >= 2  # at least the build and the export
    for text in seen:
        for name, value in secrets.items():
            assert value not in text and f"{name}=" not in text


def test_a_base_only_in_the_machine_store_is_not_used(tmp_path, base_cache, buildah_store):
    # The machine-wide store (the fixture's) holds the base; lkpkg's cache does not.
    image = run(["buildah", "pull", "--quiet", f"oci:{base_cache}:{BASE_REF}"]).stdout.split()[-1]
    run(["buildah", "tag", image, BASE_REF])
    package = package_repo(tmp_path / "repo")
    empty = tmp_path / "empty-cache"
    result = lkpkg(
        "build", "--cache", str(empty), "--platforms", "linux/amd64", str(package), check=False
    )
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("lkpkg: error:")]
    assert len(errors) == 1 and result.stderr.splitlines()[-1] == errors[0]
    assert f"FROM {BASE_REF}: not in the cache" in result.stderr
    assert f"lkpkg cache pull {BASE_REF}" in result.stderr and "scripts/mkbase" in result.stderr
    assert "pinging" not in result.stderr


def test_an_unknown_short_name_fails_with_our_message(tmp_path, cache_dir):
    package = package_repo(tmp_path / "repo", "FROM wombat/greeter:latest\nRUN true\n")
    result = lkpkg(
        "build", "--cache", str(cache_dir), "--platforms", "linux/amd64", str(package), check=False
    )
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("lkpkg: error:")]
    assert len(errors) == 1 and result.stderr.splitlines()[-1] == errors[0]
    assert "FROM wombat/greeter:latest: not in the cache" in result.stderr
    assert "lkpkg cache pull docker.io/wombat/greeter:latest" in result.stderr
    assert "short-name" not in result.stderr


def test_a_short_name_the_cache_holds_resolves_like_docker(tmp_path, cache_dir):
    index = json.loads((cache_dir / "index.json").read_text())
    base = next(
        m
        for m in index["manifests"]
        if m["annotations"]["org.opencontainers.image.ref.name"] == BASE_REF
    )
    alias = {
        **base,
        "annotations": {"org.opencontainers.image.ref.name": "docker.io/library/debian:bookworm"},
    }
    index["manifests"].append(alias)
    (cache_dir / "index.json").write_text(json.dumps(index))
    dockerfile = TINY.replace(BASE_REF, "debian:bookworm")
    package = package_repo(tmp_path / "repo", dockerfile)
    lkpkg("build", "--cache", str(cache_dir), "--platforms", "linux/amd64", str(package))


def test_long_labels_go_through_and_long_build_args_are_one_line(tmp_path, cache_dir):
    # build.yml's config becomes the org.mobyproject.config label: 200 KiB of it.
    big_env = "BIG=" + "x" * (200 * 1024)
    build_yml = f"image: tiny\nconfig:\n  env:\n    - {big_env}\n"
    package = package_repo(tmp_path / "repo", build_yml=build_yml)
    shown = lkpkg("build", "--cache", str(cache_dir), "--platforms", "linux/amd64", str(package))
    assert "Traceback" not in shown.stderr
    index = json.loads((cache_dir / "index.json").read_text())
    digest = next(
        m["digest"]
        for m in index["manifests"]
        if m["annotations"]["org.opencontainers.image.ref.name"].endswith("-amd64")
        and "tiny" in m["annotations"]["org.opencontainers.image.ref.name"]
    )
    blobs = cache_dir / "blobs" / "sha256"
    manifest = json.loads((blobs / digest.split(":")[1]).read_text())
    config = json.loads((blobs / manifest["config"]["digest"].split(":")[1]).read_text())
    label = json.loads(config["config"]["Labels"]["org.mobyproject.config"])
    assert label["env"] == [big_env]

    # A gitrepo that long is also the SOURCE build arg, which only a command line can carry.
    source = "https://example.com/" + "y" * (200 * 1024)
    other = package_repo(tmp_path / "repo2", build_yml=f"image: tiny\ngitrepo: {source}\n")
    result = lkpkg(
        "build", "--cache", str(cache_dir), "--platforms", "linux/amd64", str(other), check=False
    )
    assert result.returncode == 2, result.stderr
    last = result.stderr.splitlines()[-1]
    assert last.startswith("lkpkg: error: build arg SOURCE is 204") and "at most" in last
    assert "Argument list too long" not in result.stderr and "Traceback" not in result.stderr


def test_children_die_with_lkpkg_within_100ms(tmp_path, cache_dir):
    # A RUN step that would outlive buildah if only buildah were killed; wherever the kill
    # lands (loading, building, in the RUN step), nothing may survive lkpkg by 100 ms.
    package = package_repo(tmp_path / "repo", f"FROM {BASE_REF}\nRUN sleep 300\n")
    exe = str(ROOT / ".venv" / "bin" / "lkpkg")
    argv = [exe, "build", "--cache", str(cache_dir), "--platforms", "linux/amd64", str(package)]
    report = json.loads(run([sys.executable, str(KILLER), "8", "0.1", "--", *argv]).stdout)
    assert not report["finished"]
    assert report["survivors"] == [], report
    # The next build on the cache removes the dead build's working container and its mount.
    quick = package_repo(tmp_path / "repo2")
    lkpkg("build", "--cache", str(cache_dir), "--platforms", "linux/amd64", str(quick))
    assert buildah_containers(cache_dir) == []
    assert store_mounts(cache_dir) == []


def _ctrl_c_or_term(signum: int) -> None:
    """preexec_fn: the child starts with SIGINT and SIGTERM at their defaults, whatever this
    process was given (a CI runner may start the tests with SIGINT ignored)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


@pytest.mark.parametrize(
    ("signum", "code", "words"),
    [(signal.SIGINT, 130, "lkpkg: aborted"), (signal.SIGTERM, 143, "lkpkg: terminated")],
)
def test_ctrl_c_or_sigterm_stops_a_build_at_once_and_cleans_up(
    tmp_path, cache_dir, signum, code, words
):
    # A build that would run 317 s. Signalled once lkpkg says it is building: the run stops
    # now (not when the build is done), its scratch directory, the builder's container and
    # mount are gone, the cache has no image for it, and nothing of it runs on.
    package = package_repo(tmp_path / "repo", f"FROM {BASE_REF}\nRUN sleep 317\n")
    exe = str(ROOT / ".venv" / "bin" / "lkpkg")
    argv = [exe, "build", "--progress", "plain", "--cache", str(cache_dir)]
    argv += ["--platforms", "linux/amd64", str(package)]
    child = subprocess.Popen(
        argv,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        preexec_fn=lambda: _ctrl_c_or_term(signum),
    )
    assert child.stderr is not None
    lines = []
    for line in child.stderr:
        lines.append(line)
        if "building with buildah" in line:
            break
    child.send_signal(signum)
    try:
        rest = child.stderr.read()
        returncode = child.wait(timeout=60)  # a guard against a hang, far below the RUN's 317 s
    finally:
        if child.poll() is None:
            child.kill()
    assert returncode == code, "".join(lines) + rest
    assert rest.rstrip().endswith(words), rest
    assert tmp_entries(cache_dir) == []
    assert buildah_containers(cache_dir) == []
    assert store_mounts(cache_dir) == []
    tag = git(package.parent, "rev-parse", "HEAD:tiny")
    assert not [
        ref for ref in run(["umoci", "ls", "--layout", str(cache_dir)]).stdout.split() if tag in ref
    ]
    # No `sleep 317` of the build runs on (its group was killed, and waited for).
    assert not [
        p for p in Path("/proc").iterdir() if p.name.isdigit() and _cmdline(p) == "sleep 317"
    ]


def _cmdline(proc: Path) -> str:
    try:
        return (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return ""
