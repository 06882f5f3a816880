"""The `lkpkg` command: flags in, library calls, errors out as one line and an exit code.

No business logic lives here (see ko's CLI): each command, in the module of its concept
(build, trust, cache), builds its options, calls the library and prints. `LkpkgError` is
caught once, in `main`; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import click

from lkpkg import __version__
from lkpkg.cli import build, cache, completion, doctor, init, trust
from lkpkg.cli.common import echo_err
from lkpkg.errors import BuildError, LkpkgError, exit_code_for


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="lkpkg")
def cli() -> None:
    """Build, publish, sign and verify LinuxKit packages.

    \b
    Examples (the seed's workflows):
      lkpkg build --org wombat pkg/hello                     # make ORG=wombat NOTRUST=1 tag
      lkpkg push --org localhost:5000/wombat --notrust pkg/hello    # ... NOTRUST=1 push
      DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE=... lkpkg push pkg/hello   # make (maintainer)
      lkpkg show-tag pkg/*
    """


for command in (
    build.show_tag,
    build.build,
    build.push,
    build.manifest,
    trust.sign,
    trust.verify,
    trust.keygen,
    cache.cache,
    cache.import_,
    completion.completion,
    init.init,
    init.makefile,
    doctor.doctor,
):
    cli.add_command(command)


def main(argv: Sequence[str] | None = None) -> None:
    try:
        cli.main(
            args=list(argv) if argv is not None else None, prog_name="lkpkg", standalone_mode=False
        )
    except click.exceptions.Abort:
        echo_err("lkpkg: aborted")
        sys.exit(130)
    except click.ClickException as exc:
        echo_err(f"lkpkg: error: {exc.format_message()}")
        sys.exit(2)
    except LkpkgError as exc:
        if isinstance(exc, BuildError):
            for line in exc.tail:
                echo_err(f"  | {line}")
        echo_err(f"lkpkg: error: {exc.message}")
        sys.exit(exit_code_for(exc))
    except KeyboardInterrupt:
        echo_err("lkpkg: interrupted")
        sys.exit(130)
