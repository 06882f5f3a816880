"""`lkpkg doctor`'s checks of building: which builder `--builder` picks, each
`--builder-host` engine, and whether each platform builds here (natively, on a builder host,
or under qemu-user)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from lkpkg.builders.base import EngineSettings
from lkpkg.builders.buildah import BuildahBuilder
from lkpkg.builders.docker import DockerBuilder
from lkpkg.builders.select import BUILDER_ORDER, builder_candidates
from lkpkg.checks import CheckResult
from lkpkg.oci.model import Platform
from lkpkg.platforms import BINFMT_DIR, emulation_problem, host_platform

# The fix for a missing qemu-user handler; the test suite and docs name it too.
QEMU_PACKAGES = "apt-get install qemu-user-static binfmt-support"


def builder_check(choice: str, problems: Mapping[str, str | None]) -> CheckResult:
    """What `--builder choice` picks given each builder's `problem()` (None: usable)."""
    name = f"builder ({choice})"
    candidates = builder_candidates(choice)
    picked = next((b for b in candidates if problems.get(b, "") is None), None)
    if picked is not None:
        others = "; ".join(
            f"{b}: {problems[b] or 'usable too'}"
            for b in BUILDER_ORDER
            if b != picked and b in problems
        )
        return CheckResult.ok(name, f"picks {picked}" + (f"; {others}" if others else ""))
    why = "; ".join(f"{b}: {problems.get(b) or 'not checked'}" for b in candidates)
    if choice == "buildah":
        fix = "apt-get install buildah"
    elif choice == "docker":
        fix = _docker_fix(problems.get("docker") or "")
    else:
        fix = (
            "apt-get install buildah (daemonless, preferred), or apt-get install docker.io and "
            "start dockerd (or point DOCKER_HOST at a running engine)"
        )
    usable = [b for b in BUILDER_ORDER if b not in candidates and problems.get(b, "") is None]
    if usable:
        fix += f", or --builder {usable[0]} (usable here)"
    return CheckResult.fail(name, f"no usable builder: {why}", fix)


def _docker_fix(problem: str) -> str:
    if "client" in problem:
        return (
            "apt-get install docker.io (a client with buildx, or one older than 23.0), "
            "or set LKPKG_DOCKER_CLIENT to such a client"
        )
    return "start dockerd (systemctl start docker), or point DOCKER_HOST at a running engine"


def probe_builders(settings: EngineSettings) -> dict[str, str | None]:
    """Each builder's `problem()` here: every one, so the report says why the others cannot."""
    return {
        "buildah": BuildahBuilder(settings=settings).problem(),
        "docker": DockerBuilder(settings=settings).problem(),
    }


def builder_host_check(platform: str, url: str, problem: str | None) -> CheckResult:
    """The verdict on one `--builder-host PLATFORM=URL` engine from its `problem()`."""
    name = f"builder host {platform}"
    if problem is None:
        return CheckResult.ok(name, f"the Docker engine at {url} answers")
    if "client" in problem:
        fix = _docker_fix(problem)
    else:
        ssh = " (ssh:// also needs a key ssh-agent offers)" if url.startswith("ssh://") else ""
        fix = (
            f"start dockerd where {url} points and check it is reachable from here{ssh}, "
            f"or drop --builder-host {platform}={url}"
        )
    # The builder's own words for an engine that does not answer name the local one
    # ("set DOCKER_HOST"): not shown for a builder host.
    detail = problem if "client" in problem else f"no Docker engine answers at {url}"
    return CheckResult.fail(name, detail, fix)


# -- platforms --------------------------------------------------------------------------------


def platform_check(
    platform: Platform, *, builder_hosts: Mapping[str, str], binfmt_dir: Path = BINFMT_DIR
) -> CheckResult:
    """Whether `platform` builds here: natively, on a builder host, or under qemu-user."""
    name = f"platform {platform}"
    url = builder_hosts.get(str(platform))
    if url is not None:
        return CheckResult.ok(name, f"built natively on the builder host {url}")
    host = host_platform()
    problem = emulation_problem(platform, binfmt_dir)
    if problem is None:
        # Asked again without any handler: None means the CPU runs it (amd64 runs 386 too).
        if emulation_problem(platform, binfmt_dir / "lkpkg-doctor-no-handlers") is None:
            return CheckResult.ok(name, f"native on this {host} host")
        return CheckResult.ok(
            name, f"emulated: its qemu-user binfmt handler in {binfmt_dir} is enabled"
        )
    detail, fix = problem.message, problem.hint
    remote = f"--builder-host {platform}=ssh://user@a-{platform.architecture}-host"
    if fix is None:
        return CheckResult.fail(
            name, detail, f"build it on a {platform.architecture} machine: {remote}"
        )
    if not binfmt_dir.is_dir():
        fix = f"mount -t binfmt_misc binfmt_misc {binfmt_dir}, then {fix}"
    return CheckResult.fail(name, detail, f"{fix}, or {remote}")
