"""Platforms as linuxkit knows them: GOARCH names, validation, the host's platform, and whether
another platform can be emulated here (qemu-user binfmt)."""

from __future__ import annotations

import platform as _platform
from pathlib import Path
from typing import TYPE_CHECKING

from lkpkg.errors import EnvironmentProblem, InputError

if TYPE_CHECKING:
    # build.yml's arches need no OCI model: show-tag never loads it.
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

# What linuxkit builds when build.yml names no `arches` (pkglib NewPkgInfo).
DEFAULT_ARCHES: tuple[str, ...] = ("amd64", "arm64", "riscv64")

# Kernel and distribution spellings people type for a GOARCH; only used to suggest a fix.
_ARCH_ALIASES = {
    "x86_64": "amd64",
    "x86-64": "amd64",
    "x64": "amd64",
    "aarch64": "arm64",
    "armv8": "arm64",
    "i386": "386",
    "i686": "386",
    "x86": "386",
    "armhf": "arm",
    "armv7": "arm",
    "armv7l": "arm",
    "riscv": "riscv64",
    "ppc64el": "ppc64le",
    "loongarch64": "loong64",
}

# The variants containerd's platforms package knows, per architecture ("" for none).
KNOWN_VARIANTS: dict[str, tuple[str, ...]] = {
    "arm64": (
        "v8",
        "v8.0",
        "v8.1",
        "v8.2",
        "v8.3",
        "v8.4",
        "v8.5",
        "v8.6",
        "v8.7",
        "v8.8",
        "v8.9",
        "v9",
        "v9.0",
        "v9.1",
        "v9.2",
        "v9.3",
        "v9.4",
        "v9.5",
    ),
    "arm": ("v5", "v6", "v7", "v8"),
    "amd64": ("v1", "v2", "v3", "v4"),
}


def arch_problem(arch: str, where: str = "") -> str | None:
    """Why `arch` is not a GOARCH lkpkg builds for ("unknown arch 'x' (did you mean ...)")."""
    if arch in KNOWN_ARCHES:
        return None
    shown = "".join(c if c.isprintable() else repr(c)[1:-1] for c in arch[:80])
    guess = _ARCH_ALIASES.get(arch.lower())
    if guess is None:
        import difflib  # only for the suggestion of an error

        close = difflib.get_close_matches(arch.lower(), KNOWN_ARCHES, n=1)
        guess = close[0] if close else None
    hint = f"did you mean '{guess}'?" if guess is not None else f"known: {', '.join(KNOWN_ARCHES)}"
    return f"unknown arch '{shown}'{where} ({hint})"


def platform_problem(platform: Platform) -> str | None:
    """Why `platform` is not one linuxkit builds: linux only, a known arch and variant."""
    if platform.os != "linux":
        return f"unsupported OS '{platform.os}' in {platform}: LinuxKit packages are linux only"
    problem = arch_problem(platform.architecture, f" in {platform}")
    if problem is not None:
        return problem
    variant = platform.variant or ""
    if variant and variant not in KNOWN_VARIANTS.get(platform.architecture, ()):
        known = ", ".join(KNOWN_VARIANTS.get(platform.architecture, ())) or "none"
        return f"unknown variant '{variant}' for {platform.architecture} (known: {known})"
    return None


def validate_platform(platform: Platform) -> Platform:
    """`platform`, or an InputError (exit 2) saying why linuxkit would not build it."""
    problem = platform_problem(platform)
    if problem is not None:
        raise InputError(problem)
    return platform


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
    from lkpkg.oci.model import Platform

    machine = _platform.machine().lower()
    arch = _MACHINE_TO_ARCH.get(machine, machine)
    return Platform("linux", arch)


def emulation_problem(target: Platform, binfmt_dir: Path = BINFMT_DIR) -> EnvironmentProblem | None:
    """Why `target` cannot be built on this host (with the fix as its `hint` when there is
    one), or None when it can (natively or via qemu)."""
    host = host_platform()
    if target.architecture == host.architecture:
        return None
    if target.architecture in _NATIVE_TOO.get(host.architecture, set()):
        return None
    name = _QEMU_NAME.get(target.architecture)
    if name is None:
        return EnvironmentProblem(f"no known emulator for {target}")
    entry = binfmt_dir / name
    try:
        state = entry.read_text().splitlines()[0].strip()
    except OSError:
        return EnvironmentProblem(
            f"cannot build {target} on {host}: no qemu-user binfmt handler '{name}'",
            hint="apt-get install qemu-user-static binfmt-support",
        )
    if state != "enabled":
        return EnvironmentProblem(
            f"cannot build {target} on {host}: binfmt handler '{name}' is {state}",
            hint=f"update-binfmts --enable {name}",
        )
    return None


def require_buildable(target: Platform) -> None:
    problem = emulation_problem(target)
    if problem is not None:
        raise problem
