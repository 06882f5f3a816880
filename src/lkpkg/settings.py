"""Settings: what lkpkg takes from its flags and the environment, resolved once, at the edge.

The CLI resolves one `Settings` per command (`resolve_settings`, flags winning over the
environment) and hands it, or the parts of it a call needs, down as parameters. Library
modules never read `os.environ` themselves (as ggcr's `remote.WithAuth` and httpx's
`Client(timeout=...)` take options instead of reading globals), so a script or a test drives
lkpkg with exactly the settings it passes, and two calls with different settings in one
process do not see each other's.

`env` is the environment captured at resolution, for what is by nature read from it and
must never appear in argv, logs or `repr`: passphrases (`DOCKER_CONTENT_TRUST_*`,
`COSIGN_PASSWORD`), the docker config directory and its credential helpers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING

from lkpkg.errors import InputError

if TYPE_CHECKING:
    # Imported where they are resolved: `show-tag` reads its options here and needs neither
    # the cache nor the build engines' settings.
    from lkpkg.package.deptag import TagMode

# Read here (LINUXKIT_CACHE, DOCKER_HOST and LKPKG_DOCKER_CLIENT through their modules'
# resolvers); the CLI also lets click read LKPKG_BUILDER, LKPKG_PROGRESS, LKPKG_NOTRUST,
# LKPKG_SIGN_KEY and LKPKG_INSECURE_REGISTRIES as flag defaults.
SOURCE_DATE_EPOCH_ENV = "SOURCE_DATE_EPOCH"
TAG_MODE_ENV = "LKPKG_TAG_MODE"

BUILDER_CHOICES = ("auto", "buildah", "docker")
PROGRESS_CHOICES = ("auto", "rich", "plain")


def _epoch(value: str | None) -> int | None:
    """SOURCE_DATE_EPOCH as reproducible-builds.org defines it: decimal seconds; anything
    else is ignored (as before: the commit time is used instead)."""
    if value and value.isdigit():
        return int(value)
    return None


@dataclass(frozen=True)
class Settings:
    """Everything a command takes from flags and environment, as values."""

    cache_dir: Path
    builder: str = "auto"
    # `PLATFORM=URL` items as given (parsed by build/select's `parse_builder_hosts`).
    builder_hosts: tuple[str, ...] = ()
    docker_host: str | None = None
    docker_client: str | None = None
    source_date_epoch: int | None = None
    insecure_registries: tuple[str, ...] = ()
    notrust: bool = False
    sign_key: Path | None = None
    trust_ca: Path | None = None
    progress: str = "auto"
    # `--timeout`: the longest a registry request may wait without progress (None: 60 s).
    timeout: float | None = None
    # Secrets live here: never compared, hashed or shown.
    env: Mapping[str, str] = field(
        default_factory=lambda: MappingProxyType({}), repr=False, compare=False, hash=False
    )

    def __post_init__(self) -> None:
        if self.builder not in BUILDER_CHOICES:
            raise InputError(
                f"unknown builder '{self.builder}': choose one of {', '.join(BUILDER_CHOICES)}"
            )
        if self.progress not in PROGRESS_CHOICES:
            raise InputError(
                f"unknown progress mode '{self.progress}': choose one of "
                f"{', '.join(PROGRESS_CHOICES)}"
            )
        if self.timeout is not None and not self.timeout > 0:
            raise InputError(f"--timeout {self.timeout}: give a number of seconds above 0")


def resolve_settings(
    env: Mapping[str, str],
    *,
    cache_dir: Path | None = None,
    builder: str | None = None,
    builder_hosts: Sequence[str] = (),
    insecure: Sequence[str] = (),
    notrust: bool = False,
    sign_key: Path | None = None,
    trust_ca: Path | None = None,
    progress: str | None = None,
    timeout: float | None = None,
) -> Settings:
    """The settings of one command: each flag given wins, else its environment variable.
    The cache directory and the build engines' variables are read by their own modules'
    resolvers (`default_cache_dir`, `EngineSettings.from_environ`), here, once."""
    from lkpkg.builders.engines import EngineSettings
    from lkpkg.cache.layout import default_cache_dir

    engines = EngineSettings.from_environ(env)
    return Settings(
        cache_dir=cache_dir if cache_dir is not None else default_cache_dir(env),
        builder=(builder or "auto").lower(),
        builder_hosts=tuple(builder_hosts),
        docker_host=engines.docker_host,
        docker_client=engines.docker_client,
        source_date_epoch=_epoch(env.get(SOURCE_DATE_EPOCH_ENV)),
        # `--insecure-registry a,b` and the variable's comma-separated form both work.
        insecure_registries=tuple(h for item in insecure for h in item.split(",") if h),
        notrust=notrust,
        sign_key=sign_key,
        trust_ca=trust_ca,
        progress=progress or "auto",
        timeout=timeout,
        env=MappingProxyType(dict(env)),
    )


def resolve_tag_mode(flag: str | None, env: Mapping[str, str]) -> TagMode:
    """`--tag-mode` if given, else $LKPKG_TAG_MODE, else `tree` (linuxkit's tag): what every
    command that computes tags passes to `load_packages` (package/deptag)."""
    from lkpkg.package.deptag import TagMode

    if flag:
        return TagMode.parse(flag)
    value = env.get(TAG_MODE_ENV, "")
    return TagMode.parse(value, TAG_MODE_ENV) if value.strip() else TagMode.TREE
