"""The `lkpkg` command: flags in, library calls, errors out as one line and an exit code.

No business logic lives here (see ko's CLI): each command, in the module of its concept
(build, trust, cache), resolves its `Settings` once, builds its options, calls the library
and renders. `LkpkgError` is caught once, in `main`, and printed as `lkpkg: error: MESSAGE`
(then `lkpkg: hint: HINT` when it has one); anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

import click

from lkpkg import __version__
from lkpkg.errors import BuildError, LkpkgError, exit_code_for

# Command name → "module:attribute" under lkpkg.cli. A command's module is imported only when
# that command runs (or help lists them all), so `lkpkg show-tag` does not load the registry
# client, TLS or cryptography code that `push` needs.
COMMANDS = {
    "show-tag": "showtag:show_tag",
    "build": "build:build",
    "push": "build:push",
    "manifest": "build:manifest",
    "remote-tag": "build:remote_tag",
    "sign": "trust:sign",
    "verify": "trust:verify",
    "keygen": "trust:keygen",
    "cache": "cache:cache",
    "pin": "pin:pin",
    "plan": "plan:plan",
    "import": "cache:import_",
    "completion": "completion:completion",
    "init": "init:init",
    "makefile": "init:makefile",
    "doctor": "doctor:doctor",
    "sbom": "sbom:sbom",
    "provenance": "sbom:provenance",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, attribute = target.split(":")
        command = getattr(importlib.import_module(f"lkpkg.cli.{module}"), attribute)
        assert isinstance(command, click.Command)
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
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


def echo_err(message: str) -> None:
    click.echo(message, err=True)


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
        if exc.hint:
            echo_err(f"lkpkg: hint: {exc.hint}")
        sys.exit(exit_code_for(exc))
    except KeyboardInterrupt:
        echo_err("lkpkg: interrupted")
        sys.exit(130)
