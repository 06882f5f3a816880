"""`lkpkg plan`: what a package tree still needs built, in waves, for a fleet of CI runners."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import click

from lkpkg.cli.common import (
    dirs_argument,
    insecure_option,
    parse_platforms,
    tag_mode_of,
    tag_mode_option,
    timeout_option,
)
from lkpkg.errors import InputError


@click.command()
@click.option(
    "--platforms", help="Only these platforms, e.g. linux/amd64,linux/arm64 (default: build.yml's)."
)
@click.option("--org", help="Override the org (may carry a registry: localhost:5000/wombat).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(("json", "github", "gitlab", "dot", "mermaid")),
    default="json",
    show_default=True,
    help="json: waves of cells; github: a strategy.matrix; gitlab: a child pipeline with "
    "parallel:matrix jobs; dot, mermaid: the graph and its waves.",
)
@click.option(
    "--wave",
    type=click.IntRange(min=0),
    help="With --format github: only this wave's cells (one matrix per job).",
)
@click.option(
    "--gitlab-include",
    metavar="FILE",
    help="With --format gitlab: include FILE; cell jobs extend its .lkpkg-runner job.",
)
@click.option(
    "--no-registry",
    is_flag=True,
    help="Do not ask the registry: plan every package and platform (to draw the tree).",
)
@tag_mode_option
@insecure_option
@timeout_option
@dirs_argument
def plan(
    platforms: str | None,
    org: str | None,
    fmt: str,
    wave: int | None,
    gitlab_include: str | None,
    no_registry: bool,
    tag_mode: str | None,
    insecure: Sequence[str],
    timeout: float | None,
    directories: Sequence[Path],
) -> None:
    """Print the package x arch cells DIRECTORIES still need, in dependency waves.

    \b
    A cell is one package for one platform whose TAG-ARCH the registry lacks. Wave 0 needs
    nothing unbuilt; a later wave waits for the packages it builds on (@lkt:pkg:, FROM a
    sibling). Each runner takes a cell and runs, for its platform:
      lkpkg cache pull --platforms PLATFORM PULL...     (the images it builds on)
      lkpkg push --platforms PLATFORM DIRS...           (those packages, then its own)
    The registry is the shared cache: nothing is built twice, and the index gathers the
    arches the runners push. See docs/scale.md for complete CI workflows.
    Examples:
      lkpkg plan --org ghcr.io/me pkg/*
      lkpkg plan --org ghcr.io/me --format github pkg/*   # {"waves": [{"include": [...]}, ...]}
      lkpkg plan --no-registry --format mermaid pkg/*
    """
    from lkpkg.consumer.plan import make_plan, render
    from lkpkg.oci.model import ImageIndex, parse_manifest_bytes
    from lkpkg.package.model import Package, load_packages
    from lkpkg.pipeline.graph import package_graph
    from lkpkg.pipeline.registries import RegistryPool

    if wave is not None and fmt != "github":
        raise InputError("--wave goes with --format github (the other formats hold every wave)")
    given = {d.resolve(): str(d).rstrip("/") or "." for d in directories}
    packages = load_packages(list(directories), org=org, tag_mode=tag_mode_of(tag_mode))
    graph = package_graph(packages)
    registries = RegistryPool(insecure, os.environ, timeout=timeout)

    def present(package: Package, arch: str) -> bool:
        if no_registry:
            return False
        ref = package.reference()
        head = registries(ref.domain).head_manifest(ref.path, f"{package.tag}-{arch}")
        return head is not None

    def index_arches(package: Package) -> set[str]:
        ref = package.reference()
        client = registries(ref.domain)
        if client.head_manifest(ref.path, package.tag) is None:
            return set()
        body = parse_manifest_bytes(client.get_manifest(ref.path, package.tag).data)
        if not isinstance(body, ImageIndex):
            return set()
        return {m.platform.architecture for m in body.manifests if m.platform is not None}

    try:
        result = make_plan(
            graph,
            given,
            parse_platforms(platforms),
            present,
            None if no_registry else index_arches,
        )
    finally:
        registries.close()
    click.echo(render(result, fmt, wave, gitlab_include), nl=False)
    pending = len(result.pending)
    click.echo(
        f"{pending} cells to build in {len(result.waves)} waves; "
        f"{len(result.cells) - pending} already in the registry",
        err=True,
    )
    for repair in result.repairs:
        ref = result.reference(repair.package).familiar()
        click.echo(
            f"{ref}: the index lacks {', '.join(repair.missing)} although the arch tags are"
            f" there; rebuild it with: lkpkg manifest {ref}",
            err=True,
        )
