"""`lkpkg pin`: pin the images of LinuxKit YAML files to verified digests."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import click

from lkpkg.cli.common import (
    insecure_option,
    notrust_option,
    tag_mode_of,
    tag_mode_option,
    timeout_option,
    trust_ca_option,
)
from lkpkg.errors import LkpkgError
from lkpkg.pipeline.registries import RegistryPool


@click.command()
@click.option(
    "--check",
    is_flag=True,
    help="Change nothing; exit 1 unless every image is pinned, current and verified.",
)
@click.option(
    "--update",
    "update_dirs",
    multiple=True,
    type=click.Path(path_type=Path, file_okay=False),
    metavar="PKGDIR",
    help="Move references to this package's repository to its current tag first; repeatable.",
)
@click.option("--org", help="The org of the --update packages (as for show-tag).")
@tag_mode_option
@notrust_option
@click.option(
    "--key",
    type=click.Path(path_type=Path, dir_okay=False),
    help="cosign public key: a valid signature for it is required.",
)
@click.option(
    "--insecure",
    "unverified",
    is_flag=True,
    help="With --notrust and no --key: pin without verifying any signature.",
)
@trust_ca_option
@insecure_option
@timeout_option
@click.option(
    "--json", "json_output", is_flag=True, help="Print every reference, old and new, as JSON."
)
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path, dir_okay=False))
def pin(
    check: bool,
    update_dirs: Sequence[Path],
    org: str | None,
    tag_mode: str | None,
    notrust: bool,
    key: Path | None,
    unverified: bool,
    trust_ca: Path | None,
    insecure: Sequence[str],
    timeout: float | None,
    json_output: bool,
    files: Sequence[Path],
) -> None:
    """Pin every image of LinuxKit YAML FILES to the digest that verified.

    \b
    Each image linuxkit reads (kernel.image, init, onboot, onshutdown, services, volumes) is
    resolved in its registry, verified (Docker Content Trust unless --notrust; cosign with
    --key; an index and every platform image) and rewritten NAME:TAG@sha256:DIGEST, in place:
    comments, quoting and layout are kept. A reference that fails is left as it is and named
    on one line; the exit status is then 1. Already pinned references are verified again; one
    whose tag now names another digest fails rather than moving.
    Examples:
      lkpkg pin --key cosign.pub linuxkit.yml
      lkpkg pin --check linuxkit.yml                 # CI: pinned, current, signed?
      lkpkg pin --update pkg/init --update pkg/getty linuxkit.yml   # bump to their tags, pin
    """
    from lkpkg.consumer.pin import Pinner, Status, pin_files
    from lkpkg.consumer.verify import TrustPolicy, Verifier
    from lkpkg.package.model import load_packages

    policy = TrustPolicy(dct=not notrust, key=key, insecure=unverified, trust_ca=trust_ca)
    policy.check("pin")
    updates = {}
    if update_dirs:
        for package in load_packages(list(update_dirs), org=org, tag_mode=tag_mode_of(tag_mode)):
            ref = package.reference()
            updates[ref.name] = ref
    registries = RegistryPool(insecure, os.environ, timeout=timeout)
    try:
        verifier = Verifier(policy, registries, os.environ)
        pinner = Pinner(registries, verifier, check=check, updates=updates)
        results = pin_files(pinner, list(files))
    finally:
        registries.close()
    every = [r for f in results for r in f.results]
    failed = [r for r in every if not r.status.good]
    if json_output:
        click.echo(json.dumps([r.to_json() for r in every], indent=2))
    else:
        for r in every:
            if r.new is not None and r.status.good:
                verb = "would pin" if check else r.status.value
                click.echo(f"{r.file}:{r.site.line}: {verb} {r.site.text} -> {r.new}")
    for r in failed:
        click.echo(f"{r.file}:{r.site.line}: {r.site.text}: {r.reason}", err=True)
    counts = {s: sum(1 for r in every if r.status is s) for s in Status}
    summary = ", ".join(f"{n} {s.value}" for s, n in counts.items() if n)
    click.echo(
        f"{len(every)} image references in {len(results)} files: {summary or 'none'}", err=True
    )
    if failed:
        what = "do not pass --check" if check else "were not pinned"
        raise LkpkgError(f"pin: {len(failed)} of {len(every)} image references {what}")
