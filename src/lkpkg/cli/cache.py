"""Commands on the local cache: cache ls, pull, rm, clean; import."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import click

from lkpkg.cli.common import (
    cache_option,
    insecure_option,
    notrust_option,
    open_cache,
    parse_platforms,
    timeout_option,
    trust_ca_option,
)
from lkpkg.errors import InputError, LkpkgError
from lkpkg.importer import import_rootfs
from lkpkg.pipeline.registries import RegistryPool
from lkpkg.platforms import host_platform
from lkpkg.reference import Reference

key_option = click.option(
    "--key",
    type=click.Path(path_type=Path, dir_okay=False),
    help="cosign public key: a valid signature for it is required.",
)
unverified_option = click.option(
    "--insecure",
    "unverified",
    is_flag=True,
    help="With --notrust and no --key: go ahead without verifying any signature.",
)
published_only_option = click.option(
    "--published-only",
    is_flag=True,
    help="Only refs whose digest the registry serves under the same name (linuxkit's flag).",
)


@click.group()
def cache() -> None:
    """Inspect and manage the local OCI cache (linuxkit's layout)."""


@cache.command("ls")
@cache_option
def cache_ls(cache_dir: Path | None) -> None:
    """List references and digests in the cache.

    \b
    Example: LINUXKIT_CACHE=~/.linuxkit/cache lkpkg cache ls | grep wombat/hello
    """
    if cache_dir is not None and not cache_dir.is_dir():
        raise InputError(f"{cache_dir}: no cache there (not a directory)")
    for ref, descriptor in open_cache(cache_dir).refs():
        click.echo(f"{ref}\t{descriptor.digest}")


@cache.command("pull")
@click.option(
    "--platforms", help="Only these platforms of an index, e.g. linux/arm64 (default: all)."
)
@notrust_option
@key_option
@unverified_option
@trust_ca_option
@insecure_option
@timeout_option
@cache_option
@click.option(
    "--from-yaml",
    "yaml_files",
    multiple=True,
    type=click.Path(path_type=Path, dir_okay=False),
    metavar="FILE.yml",
    help="Also every image a LinuxKit YAML uses (after `lkpkg pin`: what was verified).",
)
@click.argument("references", nargs=-1)
def cache_pull(
    platforms: str | None,
    notrust: bool,
    key: Path | None,
    unverified: bool,
    trust_ca: Path | None,
    insecure: Sequence[str],
    timeout: float | None,
    cache_dir: Path | None,
    yaml_files: Sequence[Path],
    references: Sequence[str],
) -> None:
    """Pull REFERENCES from their registry into the cache, verified before anything is written.

    \b
    A tag is resolved to one digest, that digest is verified (Docker Content Trust unless
    --notrust; cosign with --key; for an index every platform image too), then downloaded,
    checked blob by blob, and stored as linuxkit stores a pull: the reference as given (a
    pinned TAG@sha256:... too, so `linuxkit build` finds pinned YAML offline), and for a tag
    TAG-ARCH per platform. Replaces what the cache held under those names.
    Examples:
      lkpkg cache pull linuxkit/init:8f1e7a0c
      lkpkg cache pull --notrust --key cosign.pub --platforms linux/arm64 \\
          localhost:5000/wombat/hello:4b825dc6@sha256:...
      lkpkg cache pull --from-yaml linuxkit.yml     # then: linuxkit build linuxkit.yml
    """
    from lkpkg.cache.pull import pull
    from lkpkg.consumer.verify import TrustPolicy, Verifier

    policy = TrustPolicy(dct=not notrust, key=key, insecure=unverified, trust_ca=trust_ca)
    policy.check("cache pull")
    refs: list[tuple[Reference, Reference | None]] = [
        (Reference.parse(r), None) for r in references
    ]
    if yaml_files:
        from lkpkg.consumer.yamlrefs import find_references

        for path in yaml_files:
            for site in find_references(path):
                ref = Reference.parse(site.text)
                # linuxkit caches an image written without a tag under the bare name.
                refs.append((ref, ref if ref.tag is None and ref.digest is None else None))
        refs = list(dict.fromkeys(refs))
    if not refs:
        raise InputError("cache pull: name a REFERENCE or give --from-yaml")
    wanted = parse_platforms(platforms)
    store = open_cache(cache_dir)
    registries = RegistryPool(insecure, os.environ, timeout=timeout)
    try:
        verifier = Verifier(policy, registries, os.environ)

        def verify(pinned: Reference) -> None:
            click.echo(verifier(pinned), err=True)

        for ref, store_as in refs:
            pulled = pull(
                store,
                registries(ref.domain),
                ref,
                platforms=wanted,
                verify=verify,
                store_as=store_as,
            )
            what = ", ".join(str(p) for p in pulled.platforms) or "one image"
            click.echo(
                f"pulled {pulled.reference} {pulled.digest} ({what}; "
                f"{pulled.blobs_fetched} blobs, {pulled.bytes_fetched} bytes fetched)"
            )
    finally:
        registries.close()


def _cache_names(references: Sequence[str]) -> list[str]:
    return [str(Reference.parse(r)) for r in references]


def _published(
    names: Sequence[str],
    store_refs: dict[str, str],
    insecure: Sequence[str],
    timeout: float | None,
) -> list[str]:
    """The names whose digest the registry serves under the same name; one line for each other."""
    registries = RegistryPool(insecure, os.environ, timeout=timeout)
    keep: list[str] = []
    try:
        for name in names:
            ref = Reference.parse(name)
            try:
                head = registries(ref.domain).head_manifest(
                    ref.path, ref.digest or ref.tag or "latest"
                )
            except LkpkgError as exc:
                click.echo(
                    f"{name}: not checked in the registry ({exc.message}), left in cache", err=True
                )
                continue
            if head is None:
                click.echo(f"{name}: not in the registry, left in cache", err=True)
            elif head.digest != store_refs[name]:
                click.echo(
                    f"{name}: the registry has {head.digest}, the cache"
                    f" {store_refs[name]}, left in cache",
                    err=True,
                )
            else:
                keep.append(name)
    finally:
        registries.close()
    return keep


@cache.command("rm")
@published_only_option
@insecure_option
@timeout_option
@cache_option
@click.argument("references", nargs=-1, required=True)
def cache_rm(
    published_only: bool,
    insecure: Sequence[str],
    timeout: float | None,
    cache_dir: Path | None,
    references: Sequence[str],
) -> None:
    """Remove REFERENCES from the cache, with the blobs no other ref uses.

    \b
    linuxkit's `cache rm`: short names are expanded (wombat/hello:abc is
    docker.io/wombat/hello:abc). Unlike linuxkit, a blob another ref still needs (the
    TAG-ARCH image of an index) is kept.
    Example: lkpkg cache rm linuxkit/init:8f1e7a0c
    """
    from lkpkg.cache.remove import remove_refs

    store = open_cache(cache_dir)
    names = _cache_names(references)
    if published_only:
        digests = {name: desc.digest for name, desc in store.refs()}
        names = _published([n for n in names if n in digests], digests, insecure, timeout)
    removed = remove_refs(store, names)
    for name in removed.refs:
        click.echo(f"removed {name}")
    click.echo(f"{len(removed.refs)} refs, {removed.blobs} blobs removed", err=True)


@cache.command("clean")
@published_only_option
@insecure_option
@timeout_option
@cache_option
def cache_clean(
    published_only: bool, insecure: Sequence[str], timeout: float | None, cache_dir: Path | None
) -> None:
    """Empty the cache (with --published-only: remove what the registry holds identically).

    \b
    Example: lkpkg cache clean --published-only
    """
    from lkpkg.cache.remove import clean, remove_refs

    store = open_cache(cache_dir)
    if not published_only:
        clean(store)
        click.echo(f"cache emptied: {store.root}")
        return
    digests = {name: desc.digest for name, desc in store.refs()}
    names = _published(sorted(digests), digests, insecure, timeout)
    removed = remove_refs(store, names)
    click.echo(f"{len(removed.refs)} refs, {removed.blobs} blobs removed", err=True)


@cache.command("fsck")
@click.option("--repair", is_flag=True, help="Remove corrupt and orphan blobs, stale temp dirs.")
@cache_option
def cache_fsck(repair: bool, cache_dir: Path | None) -> None:
    """Check every blob against its digest and every ref; find orphans and stale temp dirs.

    Exit 1 when a blob is corrupt or a ref does not resolve (after --repair: when a ref
    still does not).

    \b
    Example: lkpkg cache fsck --repair
    """
    from lkpkg.cache.check import fsck

    report = fsck(open_cache(cache_dir), repair=repair)
    click.echo("\n".join(report.lines()))
    if report.broken_refs or (report.corrupt and not repair):
        raise SystemExit(1)


@cache.command("gc")
@cache_option
def cache_gc(cache_dir: Path | None) -> None:
    """Remove blobs no ref reaches and temp dirs of dead runs.

    \b
    Example: lkpkg cache gc
    """
    from lkpkg.cache.check import gc

    click.echo("\n".join(gc(open_cache(cache_dir)).lines()))


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
