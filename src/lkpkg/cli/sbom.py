"""Commands that print attestations from the cache: sbom, provenance."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from lkpkg.cli.common import cache_option, open_cache, parse_platforms
from lkpkg.errors import InputError

_OUTPUT = click.option(
    "--output",
    "-o",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write to this file; with several platforms one file each: x.spdx.json gives "
    "x-amd64.spdx.json, x-arm64.spdx.json.",
)
_PLATFORMS = click.option(
    "--platforms", help="Comma-separated platforms (default: every platform of REF)."
)


def _show(
    reference: str,
    predicate_type: str,
    platforms: str | None,
    cache_dir: Path | None,
    output: Path | None,
) -> None:
    from lkpkg.attest.read import predicates
    from lkpkg.reference import Reference

    ref = Reference.parse(reference)
    cache = open_cache(cache_dir)
    descriptor = cache.resolve(str(ref))
    if descriptor is None:
        raise InputError(f"{ref.familiar()} is not in the cache {cache.root}; build or pull it")
    wanted = parse_platforms(platforms) or []
    found = predicates(cache, descriptor.digest, predicate_type, wanted, where=ref.familiar())
    if output is None:
        value: Any = (
            found[0].predicate if len(found) == 1 else {str(f.platform): f.predicate for f in found}
        )
        click.echo(json.dumps(value, indent=2, ensure_ascii=False))
        return
    for f in found:
        path = output
        if len(found) > 1:
            stem, dot, extensions = output.name.partition(".")
            path = output.with_name(f"{stem}-{f.platform.arch_tag}{dot}{extensions}")
        path.write_text(json.dumps(f.predicate, indent=2, ensure_ascii=False) + "\n")
        click.echo(f"{f.platform}\t{f.image_digest}\t{path}")


@click.command()
@_PLATFORMS
@_OUTPUT
@cache_option
@click.argument("reference")
def sbom(
    reference: str, platforms: str | None, output: Path | None, cache_dir: Path | None
) -> None:
    """Print the SPDX SBOM of REFERENCE (ORG/IMAGE:TAG in the cache), per platform.

    \b
    Examples:
      lkpkg sbom wombat/hello:<hash> --platforms linux/arm64
      lkpkg sbom wombat/hello:<hash> -o hello.spdx.json    # hello-amd64.spdx.json, ...
    """
    from lkpkg.attest.spdx import PREDICATE_TYPE

    _show(reference, PREDICATE_TYPE, platforms, cache_dir, output)


@click.command()
@_PLATFORMS
@_OUTPUT
@cache_option
@click.argument("reference")
def provenance(
    reference: str, platforms: str | None, output: Path | None, cache_dir: Path | None
) -> None:
    """Print the SLSA provenance of REFERENCE (ORG/IMAGE:TAG in the cache), per platform.

    \b
    Example: lkpkg provenance wombat/hello:<hash> --platforms linux/amd64
    """
    from lkpkg.attest.provenance import PREDICATE_TYPE

    _show(reference, PREDICATE_TYPE, platforms, cache_dir, output)
