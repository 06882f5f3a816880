"""The `lkpkg` command: flags in, library calls, errors out as one line and an exit code.

No business logic lives here (see ko's CLI): each command builds its options, calls the
library, and prints. `LkpkgError` is caught once, in `main`; anything else is a bug and keeps
its traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import click

from lkpkg import __version__
from lkpkg.build.base import Builder
from lkpkg.build.select import BUILDER_NAMES, select_builder
from lkpkg.cache.layout import Cache, default_cache_dir
from lkpkg.errors import BuildError, InputError, LkpkgError, exit_code_for
from lkpkg.importer import import_rootfs
from lkpkg.oci.model import Platform
from lkpkg.package.model import load_packages
from lkpkg.pipeline.build import build_package
from lkpkg.platforms import host_platform
from lkpkg.reference import Reference


def _platforms(value: str | None) -> list[Platform] | None:
    if not value:
        return None
    platforms = []
    for item in value.split(","):
        item = item.strip()
        try:
            platforms.append(Platform.parse(item if "/" in item else f"linux/{item}"))
        except LkpkgError as exc:
            raise InputError(f"--platforms: {exc}") from exc
    return platforms


def _cache(path: Path | None) -> Cache:
    return Cache(path or default_cache_dir())


def _echo_err(message: str) -> None:
    click.echo(message, err=True)


cache_option = click.option(
    "--cache",
    "cache_dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="OCI layout cache (default $LINUXKIT_CACHE or ~/.linuxkit/cache).",
)
org_option = click.option(
    "--org", help="Override the org (may carry a registry: localhost:5000/wombat)."
)
hash_option = click.option("--hash", "hash_", help="Override the content hash part of the tag.")
dirs_argument = click.argument(
    "directories", nargs=-1, type=click.Path(path_type=Path, file_okay=False), required=True
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="lkpkg")
def cli() -> None:
    """Build, publish, sign and verify LinuxKit packages.

    \b
    Examples (the seed's workflows):
      lkpkg build --org wombat pkg/hello          # make ORG=wombat NOTRUST=1 tag
      lkpkg build --org wombat --hash foo pkg/hello
      lkpkg show-tag pkg/*
    """


@cli.command("show-tag")
@org_option
@hash_option
@dirs_argument
def show_tag(org: str | None, hash_: str | None, directories: Sequence[Path]) -> None:
    """Print ORG/IMAGE:HASH for each package, in argument order.

    \b
    HASH is the git tree id of the package directory at HEAD; a package with uncommitted
    changes gets the tree id it would have if committed now, followed by -dirty.
    """
    for package in load_packages(list(directories), org=org, hash_override=hash_):
        click.echo(package.reference().familiar())


@cli.command()
@org_option
@hash_option
@click.option(
    "--platforms",
    help="Comma-separated platforms, e.g. linux/amd64,linux/arm64 (default: the host's).",
)
@click.option(
    "--builder",
    type=click.Choice(BUILDER_NAMES),
    envvar="LKPKG_BUILDER",
    default="auto",
    show_default=True,
    help="Build engine: buildah (daemonless) or a Docker engine; auto prefers buildah.",
)
@click.option("--force", is_flag=True, help="Build even when the cache already holds the image.")
@click.option("-v", "--verbose", is_flag=True, help="Stream the builder's output.")
@cache_option
@dirs_argument
def build(
    org: str | None,
    hash_: str | None,
    platforms: str | None,
    builder: str,
    force: bool,
    verbose: bool,
    cache_dir: Path | None,
    directories: Sequence[Path],
) -> None:
    """Build packages into the local cache as ORG/IMAGE:HASH-ARCH and ORG/IMAGE:HASH.

    \b
    The image also lands in the builder's own store (buildah/podman or docker) as
    ORG/IMAGE:HASH-ARCH, so you can run it there. A platform already in the cache is not
    rebuilt unless --force.
    """
    packages = load_packages(list(directories), org=org, hash_override=hash_)
    targets = _platforms(platforms)
    cache = _cache(cache_dir)
    chosen: list[Builder] = []

    def factory() -> Builder:
        # Chosen on first need: a run where everything is cached needs no builder at all.
        if not chosen:
            chosen.append(select_builder(builder))
        return chosen[0]

    for package in packages:
        result = build_package(
            package,
            cache=cache,
            builder_factory=factory,
            platforms=targets,
            force=force,
            verbose=verbose,
            report=_echo_err,
        )
        built = ",".join(p.platform.architecture for p in result.platforms if p.built) or "-"
        click.echo(f"{result.reference.familiar()} {result.index.digest} built={built}")


@cli.group()
def cache() -> None:
    """Inspect the local OCI cache."""


@cache.command("ls")
@cache_option
def cache_ls(cache_dir: Path | None) -> None:
    """List references and digests in the cache."""
    for ref, descriptor in _cache(cache_dir).refs():
        click.echo(f"{ref}\t{descriptor.digest}")


@cli.command("import")
@click.argument("tarball", type=click.Path(path_type=Path, dir_okay=False))
@click.argument("reference")
@click.option(
    "--platform", "platform_", help="Platform of the root filesystem (default: the host's)."
)
@cache_option
def import_(tarball: Path, reference: str, platform_: str | None, cache_dir: Path | None) -> None:
    """Import a root filesystem tarball as a single-layer image REFERENCE.

    \b
    Example: lkpkg import bookworm-arm64.tar localhost/debian:bookworm --platform linux/arm64
    """
    platforms = _platforms(platform_)
    target = platforms[0] if platforms else host_platform()
    ref = Reference.parse(reference)
    index = import_rootfs(_cache(cache_dir), tarball, ref, target)
    click.echo(f"{ref.familiar()} {index.digest}")


def main(argv: Sequence[str] | None = None) -> None:
    try:
        cli.main(
            args=list(argv) if argv is not None else None, prog_name="lkpkg", standalone_mode=False
        )
    except click.exceptions.Abort:
        _echo_err("lkpkg: aborted")
        sys.exit(130)
    except click.ClickException as exc:
        _echo_err(f"lkpkg: error: {exc.format_message()}")
        sys.exit(2)
    except LkpkgError as exc:
        if isinstance(exc, BuildError):
            for line in exc.tail:
                _echo_err(f"  | {line}")
        _echo_err(f"lkpkg: error: {exc.message}")
        sys.exit(exit_code_for(exc))
    except KeyboardInterrupt:
        _echo_err("lkpkg: interrupted")
        sys.exit(130)
