"""The host's platform, and whether another platform can be emulated here (qemu-user binfmt)."""

from __future__ import annotations

import platform as _platform
from pathlib import Path

from lkpkg.errors import EnvironmentProblem
from lkpkg.oci.model import Platform

# The GOARCH names build.yml `arches` and the `-ARCH` tag suffixes use.
KNOWN_ARCHES: tuple[str, ...] = (
    "amd64",
    "arm64",
    "arm",
    "386",
    "ppc64le",
    "s390x",
    "riscv64",
    "mips64le",
    "loong64",
)

# uname -m → GOARCH, the names build.yml `arches` and the tag suffixes use.
_MACHINE_TO_ARCH = {
    "x86_64": "amd64",
    "amd64": "amd64",
    "aarch64": "arm64",
    "arm64": "arm64",
    "armv7l": "arm",
    "armv6l": "arm",
    "i686": "386",
    "i386": "386",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
    "riscv64": "riscv64",
}

# GOARCH → the qemu binfmt handler name Debian's qemu-user-static registers.
_QEMU_NAME = {
    "amd64": "qemu-x86_64",
    "arm64": "qemu-aarch64",
    "arm": "qemu-arm",
    "386": "qemu-i386",
    "ppc64le": "qemu-ppc64le",
    "s390x": "qemu-s390x",
    "riscv64": "qemu-riscv64",
    "mips64le": "qemu-mips64el",
    "loong64": "qemu-loongarch64",
}

# Architectures a host runs natively besides its own (an x86-64 CPU runs i386 code).
_NATIVE_TOO = {"amd64": {"386"}}

BINFMT_DIR = Path("/proc/sys/fs/binfmt_misc")


def host_platform() -> Platform:
    machine = _platform.machine().lower()
    arch = _MACHINE_TO_ARCH.get(machine, machine)
    return Platform("linux", arch)


def emulation_problem(target: Platform, binfmt_dir: Path = BINFMT_DIR) -> str | None:
    """Why `target` cannot be built on this host, or None when it can (natively or via qemu)."""
    host = host_platform()
    if target.architecture == host.architecture:
        return None
    if target.architecture in _NATIVE_TOO.get(host.architecture, set()):
        return None
    name = _QEMU_NAME.get(target.architecture)
    if name is None:
        return f"no known emulator for {target}"
    entry = binfmt_dir / name
    try:
        state = entry.read_text().splitlines()[0].strip()
    except OSError:
        return (
            f"cannot build {target} on {host}: no qemu-user binfmt handler '{name}' "
            "(apt-get install qemu-user-static binfmt-support)"
        )
    if state != "enabled":
        return (
            f"cannot build {target} on {host}: binfmt handler '{name}' is {state} "
            f"(update-binfmts --enable {name})"
        )
    return None


def require_buildable(target: Platform) -> None:
    problem = emulation_problem(target)
    if problem is not None:
        raise EnvironmentProblem(problem)
