"""What the commands share: option groups, the cache, registry clients, builders."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from lkpkg.builders.base import Builder, EngineSettings
from lkpkg.builders.select import BUILDER_NAMES, builders, parse_builder_hosts
from lkpkg.cache.layout import Cache, default_cache_dir
from lkpkg.errors import InputError, LkpkgError
from lkpkg.oci.model import Platform
from lkpkg.platforms import validate_platform
from lkpkg.progress import PROGRESS_MODES

if TYPE_CHECKING:
    from lkpkg.auth.keychain import Keychain
    from lkpkg.registry.client import RegistryClient

F = TypeVar("F", bound=Callable[..., Any])


def parse_platforms(value: str | None) -> list[Platform] | None:
    if not value:
        return None
    platforms = []
    for item in value.split(","):
        item = item.strip()
        try:
            platforms.append(
                validate_platform(Platform.parse(item if "/" in item else f"linux/{item}"))
            )
        except LkpkgError as exc:
            raise InputError(f"--platforms: {exc}") from exc
    return platforms


def open_cache(path: Path | None) -> Cache:
    return Cache(path or default_cache_dir(os.environ))


def echo_err(message: str) -> None:
    click.echo(message, err=True)


def options(*decorators: Callable[[F], F]) -> Callable[[F], F]:
    def apply(function: F) -> F:
        for decorator in reversed(decorators):
            function = decorator(function)
        return function

    return apply


cache_option = click.option(
    "--cache",
    "cache_dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="OCI layout cache (default $LINUXKIT_CACHE or ~/.linuxkit/cache).",
)
insecure_option = click.option(
    "--insecure-registry",
    "insecure",
    multiple=True,
    envvar="LKPKG_INSECURE_REGISTRIES",
    help="A registry (host[:port]) that may be spoken to over plain http; loopback always may.",
)
dirs_argument = click.argument(
    "directories", nargs=-1, type=click.Path(path_type=Path, file_okay=False), required=True
)
notrust_option = click.option(
    "--notrust",
    is_flag=True,
    envvar="LKPKG_NOTRUST",
    help="No Docker Content Trust (the seed's NOTRUST=1).",
)
trust_ca_option = click.option(
    "--trust-ca",
    type=click.Path(path_type=Path, dir_okay=False),
    help="CA of the trust server (default $DOCKER_CONFIG/tls/<server>/ca.crt when present).",
)


def sign_key_option(
    help_text: str = "Also sign cosign-style with this key (passphrase in $COSIGN_PASSWORD).",
) -> Callable[[F], F]:
    return click.option(
        "--sign-key",
        type=click.Path(path_type=Path, dir_okay=False),
        envvar="LKPKG_SIGN_KEY",
        help=help_text,
    )


builder_option = click.option(
    "--builder",
    type=click.Choice(BUILDER_NAMES),
    envvar="LKPKG_BUILDER",
    default="auto",
    show_default=True,
    help="Build engine: buildah (daemonless) or a Docker engine; auto prefers buildah.",
)
builder_host_option = click.option(
    "--builder-host",
    "builder_hosts",
    multiple=True,
    metavar="PLATFORM=URL",
    help="Build PLATFORM on the Docker engine at URL (ssh://user@host, tcp://, unix://), "
    "natively; repeatable.",
)

package_options = options(
    click.option("--org", help="Override the org (may carry a registry: localhost:5000/wombat)."),
    click.option("--hash", "hash_", help="Override the content hash part of the tag."),
)
build_options = options(
    click.option(
        "--platforms", help="Comma-separated, e.g. linux/amd64,linux/arm64 (default: the host's)."
    ),
    builder_option,
    builder_host_option,
    click.option(
        "--force", is_flag=True, help="Build even when the cache already holds the image."
    ),
    click.option("-v", "--verbose", is_flag=True, help="Stream the builder's output."),
    click.option(
        "--sbom",
        type=click.BOOL,
        default=True,
        show_default=True,
        help="Attach an SPDX SBOM to each image built (--sbom=false: none).",
    ),
    click.option(
        "--provenance",
        type=click.BOOL,
        default=True,
        show_default=True,
        help="Attach SLSA provenance to each image built (--provenance=false: none).",
    ),
)
push_options = options(
    click.option("--allow-dirty", is_flag=True, help="Push a package with uncommitted changes."),
    click.option(
        "--release",
        "releases",
        multiple=True,
        help="Also push ORG/IMAGE:TAG-ARCH and ORG/IMAGE:TAG (default: git tags on HEAD); "
        "never moves an existing release.",
    ),
    notrust_option,
    sign_key_option(),
    trust_ca_option,
    insecure_option,
)


def default_jobs() -> int:
    """The number of cores this process may run on (its CPU affinity, as nproc counts)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


run_options = options(
    click.option(
        "-j",
        "--jobs",
        type=click.IntRange(min=1),
        help="Packages to work on at once; one waits for what it builds FROM "
        "(default: the number of cores).",
    ),
    click.option(
        "--progress",
        type=click.Choice(PROGRESS_MODES),
        default="auto",
        show_default=True,
        envvar="LKPKG_PROGRESS",
        help="rich: a live table; plain: one greppable line per event; auto: rich on a terminal.",
    ),
    click.option(
        "--json",
        "json_output",
        is_flag=True,
        help="Print a JSON summary of every package on stdout instead of one line each.",
    ),
)


@dataclass(frozen=True)
class PushOptions:
    """Every option of build and push, as the commands receive them."""

    org: str | None
    hash_: str | None
    platforms: str | None
    builder: str
    builder_hosts: Sequence[str]
    force: bool
    verbose: bool
    allow_dirty: bool
    releases: Sequence[str]
    notrust: bool
    sign_key: Path | None
    trust_ca: Path | None
    insecure: Sequence[str]
    cache_dir: Path | None
    jobs: int | None = None
    progress: str = "auto"
    json_output: bool = False
    sbom: bool = True
    provenance: bool = True


class Registries:
    """One registry client per registry host for the whole run (connections and tokens reused)."""

    def __init__(self, insecure: Sequence[str]) -> None:
        self._insecure = [h for item in insecure for h in item.split(",") if h]
        self._clients: dict[str, RegistryClient] = {}
        self._keychain: Keychain | None = None
        # Packages are pushed from several threads; each registry must still get one client.
        self._lock = threading.Lock()

    def __call__(self, domain: str) -> RegistryClient:
        with self._lock:
            if domain not in self._clients:
                # Imported on first use: only commands that talk to a registry pay for
                # httpx, TLS and credential helpers at start-up.
                from lkpkg.auth import tls
                from lkpkg.auth.dockerconfig import default_config_dir
                from lkpkg.auth.keychain import Keychain
                from lkpkg.registry.client import RegistryClient

                if self._keychain is None:
                    self._keychain = Keychain(env=os.environ)
                self._clients[domain] = RegistryClient(
                    domain,
                    keychain=self._keychain,
                    tls=tls,
                    insecure=self._insecure,
                    config_dir=default_config_dir(os.environ),
                )
            return self._clients[domain]

    def close(self) -> None:
        for client in self._clients.values():
            client.close()


def builders_for(options: PushOptions) -> Callable[[Platform], Builder]:
    """The builder per platform, safe to ask from several threads (each made and checked once)."""
    choose = builders(
        options.builder,
        parse_builder_hosts(options.builder_hosts),
        EngineSettings.from_environ(os.environ),
    )
    lock = threading.Lock()

    def builder_for(platform: Platform) -> Builder:
        with lock:
            return choose(platform)

    return builder_for
