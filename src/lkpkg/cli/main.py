"""The `lkpkg` command: flags in, library calls, errors out as one line and an exit code.

No business logic lives here (see ko's CLI): each command, in the module of its concept
(build, trust, cache), resolves its `Settings` once, builds its options, calls the library
and renders. `LkpkgError` is caught once, in `main`, and printed as `lkpkg: error: MESSAGE`
(then `lkpkg: hint: HINT` when it has one); anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

import click

from lkpkg import __version__, signals, startup
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


# Commands whose start-up is most of their cost: the cyclic collector stays off until their
# run's work begins (lkpkg.startup); every other command gets it back once it is resolved.
QUICK_START = frozenset({"show-tag", "build", "push"})


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
        if cmd_name not in QUICK_START:
            startup.resume()
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
    """Run the command in `argv` (default: the process's arguments).

    As the process's own entry point (`argv` None), it starts without the cyclic garbage
    collector (`lkpkg.startup`) and ends the process once the command is done, without the
    interpreter's teardown: see `_end_process`.
    """
    if argv is None:
        startup.pause()
        _block_async_backends()
        signals.install()
    code = _run(argv)
    if argv is None:
        _end_process(code)
    if code:
        sys.exit(code)


def _block_async_backends() -> None:
    """httpcore imports anyio, when it is installed, for its async backends (about 1 ms);
    lkpkg's registry client is synchronous. None in sys.modules makes that import fail, and
    httpcore keeps the stubs it has for a missing anyio. Only in lkpkg's own process: a
    library caller may well use anyio."""
    sys.modules.setdefault("anyio", None)  # type: ignore[arg-type]


def _run(argv: Sequence[str] | None) -> int:
    """The command's exit code; its error, if any, printed as one line (and a hint)."""
    try:
        cli.main(
            args=list(argv) if argv is not None else None, prog_name="lkpkg", standalone_mode=False
        )
    except click.exceptions.Abort:
        echo_err("lkpkg: aborted")
        return 130
    except click.ClickException as exc:
        echo_err(f"lkpkg: error: {exc.format_message()}")
        return 2
    except LkpkgError as exc:
        if isinstance(exc, BuildError):
            for line in exc.tail:
                echo_err(f"  | {line}")
        echo_err(f"lkpkg: error: {exc.message}")
        if exc.hint:
            echo_err(f"lkpkg: hint: {exc.hint}")
        return exit_code_for(exc)
    except KeyboardInterrupt:
        echo_err("lkpkg: interrupted")
        return 130
    except signals.Terminated:
        echo_err("lkpkg: terminated")
        return signals.EXIT_TERMINATED
    return 0


def _end_process(code: int) -> NoReturn:
    """Flush, reap, and leave with `code` at once.

    The interpreter's teardown (module and object finalisation, thread-pool joins of threads
    that have all ended) costs a re-push or a no-op build 20-30 ms of CPU and does nothing
    lkpkg needs: every file, lock, scratch directory and connection is closed by the `with`
    or `finally` that opened it before the command returns. What the atexit hooks would
    still do is done here: flush stdout and stderr (a failed flush, as at the interpreter's
    own exit, makes the code 120), flush logging, and kill any child's process group still
    alive (`proc.kill_live_groups`). A bug's traceback never comes here: it propagates.
    """
    logging = sys.modules.get("logging")  # not imported by every command (show-tag)
    if logging is not None:
        logging.shutdown()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        code = code or 120
    # Only `proc` starts the children it tracks: if it was never imported (show-tag, a
    # re-push), there is no group to kill and nothing to import.
    proc = sys.modules.get("lkpkg.proc")
    if proc is not None:
        proc.kill_live_groups()
    os._exit(code)
