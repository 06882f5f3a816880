"""Commands on the local cache: cache ls, import."""

from __future__ import annotations

from pathlib import Path

import click

from lkpkg.cli.common import cache_option, open_cache, parse_platforms
from lkpkg.importer import import_rootfs
from lkpkg.platforms import host_platform
from lkpkg.reference import Reference


@click.group()
def cache() -> None:
    """Inspect the local OCI cache."""


@cache.command("ls")
@cache_option
def cache_ls(cache_dir: Path | None) -> None:
    """List references and digests in the cache.

    \b
    Example: LINUXKIT_CACHE=~/.linuxkit/cache lkpkg cache ls | grep wombat/hello
    """
    for ref, descriptor in open_cache(cache_dir).refs():
        click.echo(f"{ref}\t{descriptor.digest}")


@click.command("import")
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
    platforms = parse_platforms(platform_)
    target = platforms[0] if platforms else host_platform()
    ref = Reference.parse(reference)
    index = import_rootfs(open_cache(cache_dir), tarball, ref, target)
    click.echo(f"{ref.familiar()} {index.digest}")
