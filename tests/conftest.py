"""Shared fixtures: real services and tools, started on demand and cleaned up afterwards."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest_plugins = ["tests.fixtures.registry", "tests.fixtures.notary", "tests.fixtures.faultproxy"]

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
BASE_REF = "localhost/debian:bookworm"


def run(argv: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, check=True, capture_output=True, text=True, **kwargs)  # type: ignore[call-overload, no-any-return]


def git(repo: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_CONFIG_GLOBAL": "/dev/null",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
        "GIT_AUTHOR_DATE": "2026-01-01T00:00:00Z",
        "GIT_COMMITTER_DATE": "2026-01-01T00:00:00Z",
    }
    return run(["git", "-C", str(repo), *args], env=env).stdout.strip()


@pytest.fixture(scope="session", autouse=True)
def _no_mounts_left(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """containers-storage keeps a store's overlay directory (and a killed build's container)
    mounted after buildah exits; the tests make stores under their own directories, so at the
    end every mount below the session's base directory is undone: pytest can then remove the
    directories, and the machine keeps no mount of ours. Torn down last (defined first)."""
    yield
    base = str(tmp_path_factory.getbasetemp())
    points = [line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()]
    ours = [p for p in points if p == base or p.startswith(base + "/")]
    for point in sorted(set(ours), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True, check=False)


@pytest.fixture(scope="session")
def base_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache holding the Debian base for amd64 and arm64, made once per session by mkbase."""
    if shutil.which("mmdebstrap") is None:
        pytest.fail("mmdebstrap missing: run scripts/install")
    cache = tmp_path_factory.mktemp("base-cache")
    subprocess.run(
        [str(ROOT / "scripts" / "mkbase"), "amd64", "arm64"],
        check=True,
        env={**os.environ, "LINUXKIT_CACHE": str(cache)},
    )
    _load_builder_store(cache)
    return cache


def _load_builder_store(root: Path) -> None:
    """Load the bases into the cache's own buildah store once, so that each test's copy of the
    cache starts with a loaded store (as a user's cache does after its first build)."""
    from lkpkg.builders.base import EngineSettings, builder_store
    from lkpkg.builders.bases import base_images
    from lkpkg.builders.buildah import BuildahBuilder
    from lkpkg.cache.layout import Cache

    cache = Cache(root)
    with cache.scratch_dir("load") as scratch:
        dockerfile = scratch / "Dockerfile"
        dockerfile.write_text(f"FROM {BASE_REF}\n")
        builder = BuildahBuilder(settings=EngineSettings.from_environ(os.environ))
        builder.load_bases(base_images(cache, dockerfile, {}, scratch), builder_store(cache))
    cache.close()


@pytest.fixture
def cache_dir(base_cache: Path, tmp_path: Path) -> Path:
    """A private copy of the base cache and of its buildah store; files are hard links (blobs
    are immutable, and the store replaces its metadata files rather than rewriting them)."""
    target = tmp_path / "cache"
    run(["cp", "-al", str(base_cache), str(target)])
    store = base_cache.with_name(base_cache.name + ".buildah")
    if store.is_dir():
        run(["cp", "-al", str(store), str(target.with_name(target.name + ".buildah"))])
    return target


@pytest.fixture(scope="session")
def buildah_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """An isolated containers-storage for buildah, removed at the end of the session."""
    root = tmp_path_factory.mktemp("buildah")
    conf = root / "storage.conf"
    conf.write_text(
        f'[storage]\ndriver = "overlay"\ngraphroot = "{root}/graph"\nrunroot = "{root}/run"\n'
    )
    previous = os.environ.get("CONTAINERS_STORAGE_CONF")
    os.environ["CONTAINERS_STORAGE_CONF"] = str(conf)
    try:
        yield root
    finally:
        subprocess.run(["buildah", "rm", "--all"], capture_output=True, check=False)
        subprocess.run(["buildah", "rmi", "--all", "--force"], capture_output=True, check=False)
        subprocess.run(["umount", "-R", f"{root}/graph/overlay"], capture_output=True, check=False)
        if previous is None:
            os.environ.pop("CONTAINERS_STORAGE_CONF", None)
        else:
            os.environ["CONTAINERS_STORAGE_CONF"] = previous
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def docker_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Docker engine of our own on a private socket; yields its DOCKER_HOST."""
    if shutil.which("dockerd") is None:
        pytest.fail("dockerd missing: run scripts/install")
    root = Path("/tmp") / f"lkpkg-dockerd-{os.getpid()}"  # short: unix socket paths are limited
    for sub in ("data", "exec", "run"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    host = f"unix://{root}/run/docker.sock"
    log = (root / "dockerd.log").open("w")
    proc = subprocess.Popen(
        [
            "dockerd",
            "--iptables=false",
            "--bridge=none",
            "--host",
            host,
            "--data-root",
            f"{root}/data",
            "--exec-root",
            f"{root}/exec",
            "--pidfile",
            f"{root}/run/docker.pid",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            probe = subprocess.run(
                ["/usr/bin/docker", "version", "--format", "{{.Server.Version}}"],
                env={**os.environ, "DOCKER_HOST": host},
                capture_output=True,
                check=False,
            )
            if probe.returncode == 0:
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("dockerd did not start: " + (root / "dockerd.log").read_text()[-2000:])
            time.sleep(0.3)
        yield host
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        subprocess.run(["umount", "-R", f"{root}/data"], capture_output=True, check=False)
        shutil.rmtree(root, ignore_errors=True)


def lkpkg(
    *args: str, env: dict[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run the installed console script, as a user would.

    `build` and `push` without --platforms or --skip-platforms are given the host's platform
    explicitly: lkpkg's own default (every arch of build.yml, as linuxkit) would build
    arm64 and riscv64 under qemu, which the tests of other things need not pay for. Tests
    of that default call `lkpkg_default_platforms`."""
    return lkpkg_default_platforms(*_host_platform_unless_named(args), env=env, check=check)


def _host_platform_unless_named(args: tuple[str, ...]) -> tuple[str, ...]:
    command = next((n for n, a in enumerate(args) if not a.startswith("-")), None)
    if command is None or args[command] not in ("build", "push"):
        return args
    if any(a.split("=")[0] in ("--platforms", "--skip-platforms") for a in args):
        return args
    host = f"linux/{platform_host()}"
    return (*args[: command + 1], "--platforms", host, *args[command + 1 :])


def platform_host() -> str:
    from lkpkg.platforms import host_platform

    return host_platform().architecture


def lkpkg_default_platforms(
    *args: str, env: dict[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run the installed console script with exactly `args`."""
    exe = ROOT / ".venv" / "bin" / "lkpkg"
    result = subprocess.run(
        [str(exe), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=False,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"lkpkg {' '.join(args)} exited {result.returncode}:\n{result.stderr}")
    return result


def copy_examples(dest: Path, *names: str) -> Path:
    """Copy example packages into a fresh git repository and commit them."""
    dest.mkdir(parents=True, exist_ok=True)
    for name in names or ("hello", "greeter", "motd", "shared"):
        shutil.copytree(EXAMPLES / name, dest / name)
    git(dest, "init", "-q", "-b", "main")
    git(dest, "add", "-A")
    git(dest, "commit", "-q", "-m", "examples")
    return dest
