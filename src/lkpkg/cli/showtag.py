"""`lkpkg show-tag`: the reference each package would be built and pushed as.

It reads build.yml and asks git, nothing more: no Dockerfile (it may be generated later),
no builder, no cache, no registry. Flags and environment are linuxkit's (`linuxkit pkg
show-tag` and the `linuxkit pkg` flags that change a tag), resolved here and passed down.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import click

from lkpkg.cli.common import (
    ORG_ENV,
    cache_option,
    dirs_argument,
    insecure_option,
    open_cache,
    resolve_org_and_hash,
    tag_mode_of,
    tag_mode_option,
)
from lkpkg.package.model import BUILD_YML, Package, load_packages
from lkpkg.reference import Reference


@click.command("show-tag")
@click.option("--org", help=f"Override the org (default build.yml's, or ${ORG_ENV}).")
@click.option("--hash", "hash_", help="Override the content hash part of the tag.")
@click.option(
    "--tag",
    "tag_template",
    help="Override build.yml's tag: a template over {{.Hash}}, e.g. '{{slice .Hash 0 12}}'.",
)
@click.option(
    "--hash-commit",
    default="HEAD",
    show_default=True,
    help="Hash the package as it is in this commit (never dirty).",
)
@click.option(
    "--hash-path",
    type=click.Path(path_type=Path, file_okay=False),
    help="Hash this directory (a parent of every package) instead of each package's own.",
)
@click.option("--dev", is_flag=True, help="Org $USER and hash 'dev', unless --org/--hash say.")
@click.option(
    "--build-yml",
    default=BUILD_YML,
    show_default=True,
    help="Name of each package's build file.",
)
@click.option("--force-dirty", is_flag=True, help="Treat every package as dirty.")
@click.option(
    "--network/--nonetwork",
    "_network",
    default=None,
    help="Accepted as linuxkit accepts it on every pkg command; no effect on a tag.",
)
@click.option(
    "--disable-cache/--enable-cache",
    "_disable_cache",
    default=None,
    help="Accepted as linuxkit accepts it on every pkg command; no effect on a tag.",
)
@click.option(
    "--canonical",
    is_flag=True,
    help="Print the fully qualified reference (docker.io/linuxkit/foo:TAG).",
)
@click.option(
    "--check",
    is_flag=True,
    help="Exit 1, one line each, when an image was built on a dependency (@lkt:pkg:) whose "
    "tag has moved since; reads the cache and, when --org names a registry host, the registry.",
)
@tag_mode_option
@cache_option
@insecure_option
@dirs_argument
def show_tag(
    org: str | None,
    hash_: str | None,
    tag_template: str | None,
    hash_commit: str,
    hash_path: Path | None,
    dev: bool,
    build_yml: str,
    force_dirty: bool,
    _network: bool | None,
    _disable_cache: bool | None,
    canonical: bool,
    check: bool,
    tag_mode: str | None,
    cache_dir: Path | None,
    insecure: Sequence[str],
    directories: Sequence[Path],
) -> None:
    """Print ORG/IMAGE:TAG for each package, in argument order, as `linuxkit pkg show-tag`.

    \b
    TAG is build.yml's `tag:` template (default {{.Hash}}) over HASH, the git tree id of
    the package directory at HEAD. A package with uncommitted changes gets the tree id it
    would have if committed now, followed by -dirty (linuxkit: HEAD's tree id followed by
    -dirty-<7 hex of a content hash>; clean packages get the same tag from both).

    \b
    Examples (the seed's `make show-tag`):
      lkpkg show-tag pkg/init                          # linuxkit/init:<tree id>
      lkpkg show-tag --org wombat --hash foo pkg/*     # wombat/<image>:foo for each
      lkpkg show-tag --canonical pkg/init              # docker.io/linuxkit/init:<tree id>
      lkpkg show-tag --tag '{{slice .Hash 0 12}}' pkg/init
    """
    org, hash_ = resolve_org_and_hash(org, hash_, dev, dict(os.environ))
    packages = load_packages(
        list(directories),
        org=org,
        hash_override=hash_,
        build_yml=build_yml,
        hash_commit=hash_commit,
        hash_path=hash_path,
        tag_template=tag_template,
        check_dockerfile=False,
        force_dirty=force_dirty,
        tag_mode=tag_mode_of(tag_mode),
    )
    for package in packages:
        # linuxkit prints ORG + "/" + IMAGE + ":" + TAG as they are, not normalised.
        shown = f"{package.repository}:{package.tag}"
        click.echo(str(Reference.parse(shown)) if canonical else shown)
    if check and _stale(packages, cache_dir, insecure, org):
        raise SystemExit(1)


def _stale(
    packages: Sequence[Package], cache_dir: Path | None, insecure: Sequence[str], org: str | None
) -> bool:
    """Print each image built on a dependency that has moved since (pipeline/dependencies)."""
    from lkpkg.pipeline.dependencies import check, describe

    cache = open_cache(cache_dir)
    host = (org or "").split("/", 1)[0]
    pool = None
    if "." in host or ":" in host or host == "localhost":
        from lkpkg.pipeline.registries import RegistryPool

        pool = RegistryPool([h for item in insecure for h in item.split(",") if h], os.environ)
    stale = False
    try:
        for package in packages:
            registry = pool(package.reference().domain) if pool is not None else None
            for arch_ref, change in check(package, cache, registry):
                click.echo(f"lkpkg: {describe(arch_ref, change)}", err=True)
                stale = True
    finally:
        if pool is not None:
            pool.close()
    return stale
