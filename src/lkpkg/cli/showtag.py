"""`lkpkg show-tag`: the reference each package would be built and pushed as.

It reads build.yml and asks git, nothing more: no builder, no cache, no registry.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import click

from lkpkg.cli.common import dirs_argument, package_options
from lkpkg.package.model import load_packages


@click.command("show-tag")
@package_options
@dirs_argument
def show_tag(org: str | None, hash_: str | None, directories: Sequence[Path]) -> None:
    """Print ORG/IMAGE:HASH for each package, in argument order.

    \b
    HASH is the git tree id of the package directory at HEAD; a package with uncommitted
    changes gets the tree id it would have if committed now, followed by -dirty.

    \b
    Examples (the seed's `make show-tag`):
      lkpkg show-tag pkg/init                          # linuxkit/init:<tree id>
      lkpkg show-tag --org wombat --hash foo pkg/*     # wombat/<image>:foo for each
    """
    for package in load_packages(list(directories), org=org, hash_override=hash_):
        click.echo(package.reference().familiar())
