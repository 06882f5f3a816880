"""What the commands share: option groups, and settings resolved once from flags and the
environment (the only place, with each command's own flags, that reads `os.environ`)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from lkpkg.errors import InputError, LkpkgError
from lkpkg.platforms import validate_platform
from lkpkg.settings import (
    BUILDER_CHOICES,
    PROGRESS_CHOICES,
    resolve_settings,
    resolve_tag_mode,
)

if TYPE_CHECKING:
    # Imported where used: `show-tag` (which shares these options) opens no cache and parses
    # no platform.
    from lkpkg.cache.layout import Cache
    from lkpkg.oci.model import Platform
    from lkpkg.package.deptag import TagMode
    from lkpkg.settings import Settings

F = TypeVar("F", bound=Callable[..., Any])

ORG_ENV = "LINUXKIT_PKG_ORG"


def resolve_org_and_hash(
    org: str | None, hash_: str | None, dev: bool, environ: dict[str, str]
) -> tuple[str | None, str | None]:
    """linuxkit's order: `--dev` gives org $USER and hash `dev`; `--org`, else
    $LINUXKIT_PKG_ORG, overrides the org; `--hash` overrides the hash."""
    if org is None and environ.get(ORG_ENV):
        org = environ[ORG_ENV]
    if dev:
        if org is None:
            user = environ.get("USER", "")
            if not user:
                raise InputError("--dev: $USER is not set, and it names the org")
            org = user
        if hash_ is None:
            hash_ = "dev"
    return org, hash_


def parse_platforms(value: str | None) -> list[Platform] | None:
    if not value:
        return None
    from lkpkg.oci.model import Platform

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


def parse_skip_platforms(value: str | None, platforms: list[Platform] | None) -> tuple[str, ...]:
    """--skip-platforms as arches; refused beside --platforms, as linuxkit refuses it."""
    if not value:
        return ()
    if platforms:
        raise InputError("--skip-platforms and --platforms may not be used together")
    found = parse_platforms(value) or []
    return tuple(p.architecture for p in found)


def open_cache(path: Path | None) -> Cache:
    from lkpkg.cache.layout import Cache, default_cache_dir

    return Cache(path or default_cache_dir(os.environ))


def settings(**flags: Any) -> Settings:
    """This command's settings: its flags (click already folded in their LKPKG_* variables),
    then the environment, read here once."""
    return resolve_settings(os.environ, **flags)


def tag_mode_of(flag: str | None) -> TagMode:
    """--tag-mode, else $LKPKG_TAG_MODE (settings.resolve_tag_mode), for load_packages."""
    return resolve_tag_mode(flag, os.environ)


def echo_err(message: str) -> None:
    click.echo(message, err=True)


def options(*decorators: Callable[[F], F]) -> Callable[[F], F]:
    def apply(function: F) -> F:
        for decorator in reversed(decorators):
            function = decorator(function)
        return function

    return apply


def _cache_path(_: click.Context, __: click.Parameter, value: str | None) -> Path | None:
    """`--cache ''` would silently be the current directory (Path('') is '.'): refused."""
    if value is None:
        return None
    if not value.strip():
        raise click.BadParameter("give a directory (an empty path would be the current one)")
    return Path(value)


cache_option = click.option(
    "--cache",
    "cache_dir",
    type=click.Path(file_okay=False),
    callback=_cache_path,
    help="OCI layout cache (default $LINUXKIT_CACHE or ~/.linuxkit/cache).",
)
insecure_option = click.option(
    "--insecure-registry",
    "insecure",
    multiple=True,
    envvar="LKPKG_INSECURE_REGISTRIES",
    help="A registry (host[:port]) that may be spoken to over plain http; loopback always may.",
)
timeout_option = click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    envvar="LKPKG_TIMEOUT",
    help="Seconds a registry request may wait without progress, retries included (default 60).",
)


def package_directories(
    ctx: click.Context, _: click.Parameter, given: tuple[Path, ...]
) -> tuple[Path, ...]:
    """The package directories among DIR...: with several (a glob such as `pkg/*`), a file
    or a directory without a build file is skipped with a note; named alone, refused."""
    if len(given) < 2:
        for path in given:
            if path.is_file():
                raise click.BadParameter(f"{path} is a file, not a package directory")
        return given
    build_yml = ctx.params.get("build_yml") or "build.yml"
    kept: list[Path] = []
    for path in given:
        if path.exists() and not (path / build_yml).is_file():
            what = "a file" if not path.is_dir() else f"a directory without {build_yml}"
            click.echo(f"lkpkg: skipping {path}: {what}", err=True)
        else:
            kept.append(path)
    if not kept:
        raise click.BadParameter(f"none of the {len(given)} paths is a package directory")
    return tuple(kept)


dirs_argument = click.argument(
    "directories",
    nargs=-1,
    type=click.Path(path_type=Path),
    required=True,
    callback=package_directories,
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
    type=click.Choice(BUILDER_CHOICES),
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

tag_mode_option = click.option(
    "--tag-mode",
    type=click.Choice(["tree", "deps"], case_sensitive=False),
    help="tree: HASH is the package's tree (linuxkit's); deps: also folds in its dependencies' "
    "(@lkt:pkg:, FROM a sibling) so a new base rebuilds them. Default $LKPKG_TAG_MODE, else tree.",
)
package_options = options(
    tag_mode_option,
    click.option(
        "--org",
        envvar="LINUXKIT_PKG_ORG",
        help="Override the org (may carry a registry: localhost:5000/wombat); "
        "default $LINUXKIT_PKG_ORG, else build.yml's.",
    ),
    click.option("--hash", "hash_", help="Override the content hash part of the tag."),
    click.option(
        "--tag",
        "tag_template",
        help="Override build.yml's tag: a template over {{.Hash}} (linuxkit's --tag).",
    ),
    click.option("--dev", is_flag=True, help="Org $USER and hash 'dev', unless --org/--hash say."),
    click.option(
        "--build-yml", default="build.yml", show_default=True, help="Name of the build file."
    ),
    click.option(
        "--hash-path",
        type=click.Path(path_type=Path, file_okay=False),
        help="Hash this directory (a parent of every package) instead of each package's own.",
    ),
    click.option(
        "--hash-commit",
        default="HEAD",
        show_default=True,
        help="Only HEAD: linuxkit refuses to build at another commit (show-tag takes any).",
    ),
    click.option("--force-dirty", is_flag=True, help="Treat every package as dirty."),
    click.option(
        "--network/--nonetwork",
        default=None,
        help="Override build.yml's network for every package.",
    ),
    click.option(
        "--disable-cache/--enable-cache",
        default=None,
        help="Override build.yml's disable-cache for every package.",
    ),
)
build_options = options(
    click.option(
        "--platforms",
        help="Comma-separated, e.g. linux/amd64,linux/arm64; overrides build.yml's arches "
        "(default: every arch build.yml lists, else amd64,arm64,riscv64, as linuxkit; qemu "
        "for foreign ones).",
    ),
    click.option(
        "--skip-platforms",
        help="Comma-separated arches (or linux/ARCH) of build.yml not to build, as linuxkit's; "
        "not with --platforms.",
    ),
    builder_option,
    builder_host_option,
    click.option(
        "--force", is_flag=True, help="Build even when the cache already holds the image."
    ),
    click.option("-v", "--verbose", is_flag=True, help="Stream the builder's output."),
    click.option(
        "--build-arg-file",
        "build_arg_files",
        multiple=True,
        type=click.Path(path_type=Path, dir_okay=False),
        help="File of KEY=VALUE lines (linuxkit's): build args for every package, overriding "
        "build.yml's; @lkt:pkg:/@lkt:pkgs: paths relative to the file. Repeatable.",
    ),
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
    timeout_option,
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
        type=click.Choice(PROGRESS_CHOICES),
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
