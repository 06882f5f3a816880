"""Choosing builders: `--builder auto|buildah|docker` for the platforms
this host builds, and `--builder-host PLATFORM=URL` for platforms a Docker engine on another
host builds natively (ssh://user@host, tcp://host:port, unix:///path — docker's own URLs)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from lkpkg.builders.base import Builder, EngineSettings
from lkpkg.errors import EnvironmentProblem, InputError
from lkpkg.oci.model import Platform
from lkpkg.settings import BUILDER_CHOICES

BUILDER_NAMES = BUILDER_CHOICES
# The order `auto` tries builders in: buildah first (daemonless), then a Docker engine.
BUILDER_ORDER = ("buildah", "docker")


def builder_candidates(choice: str) -> tuple[str, ...]:
    """The builders `--builder choice` tries, in order."""
    return BUILDER_ORDER if choice == "auto" else (choice,)


def select_builder(name: str | None = None, settings: EngineSettings | None = None) -> Builder:
    """The builder to use: `auto` prefers buildah (daemonless), else a Docker engine."""
    choice = (name or "auto").lower()
    if choice not in BUILDER_NAMES:
        raise InputError(f"unknown builder '{choice}': choose one of {', '.join(BUILDER_NAMES)}")
    makers: dict[str, Callable[[EngineSettings | None], Builder]] = {
        "buildah": _buildah,
        "docker": _docker,
    }
    problems: list[str] = []
    for candidate in builder_candidates(choice):
        builder = makers[candidate](settings)  # made only when the ones before it cannot run
        problem = builder.problem()
        if problem is None:
            return builder
        problems.append(f"{builder.name}: {problem}")
    raise EnvironmentProblem("no usable builder: " + "; ".join(problems))


# Each engine's module is imported when that engine is made: a buildah build never loads the
# docker builder (nor tarfile, for its `docker save` archives).
def _buildah(settings: EngineSettings | None) -> Builder:
    from lkpkg.builders.buildah import BuildahBuilder

    return BuildahBuilder(settings=settings)


def _docker(settings: EngineSettings | None, host: str | None = None) -> Builder:
    from lkpkg.builders.docker import DockerBuilder

    return DockerBuilder(host=host, remote=host is not None, settings=settings)


def parse_builder_hosts(values: Sequence[str]) -> dict[str, str]:
    """`linux/arm64=ssh://user@host` items → {"linux/arm64": "ssh://user@host"}."""
    hosts: dict[str, str] = {}
    for value in values:
        platform, sep, url = value.partition("=")
        if not sep or not platform or "://" not in url:
            raise InputError(
                f"--builder-host '{value}': expected PLATFORM=URL, e.g. linux/arm64=ssh://user@host"
            )
        scheme = url.split("://", 1)[0]
        if scheme not in ("ssh", "tcp", "unix"):
            raise InputError(f"--builder-host '{value}': URL must be ssh://, tcp:// or unix://")
        normalized = Platform.parse(platform if "/" in platform else f"linux/{platform}")
        hosts[str(normalized)] = url
    return hosts


def builders(
    name: str | None,
    hosts: Mapping[str, str] | None = None,
    settings: EngineSettings | None = None,
) -> Callable[[Platform], Builder]:
    """The builder for each platform: its `--builder-host` engine, else the local choice.

    Builders are made on first need, so a run where everything is cached needs none; each is
    made once and checked (`problem()`) before its first use.
    """
    made: dict[str, Builder] = {}

    def for_platform(platform: Platform) -> Builder:
        url = (hosts or {}).get(str(platform))
        key = url or "local"
        if key not in made:
            if url is None:
                made[key] = select_builder(name, settings)
            else:
                remote = _docker(settings, url)
                problem = remote.problem()
                if problem is not None:
                    raise EnvironmentProblem(f"builder host for {platform}: {problem}")
                made[key] = remote
        return made[key]

    return for_platform
