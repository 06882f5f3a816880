"""The doctor command: runs `lkpkg.doctor`'s checks and prints one line each, with its fix."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import click
from rich.console import Console
from rich.text import Text

from lkpkg.builders.select import parse_builder_hosts
from lkpkg.checks import CheckResult, Status
from lkpkg.cli.common import (
    builder_host_option,
    builder_option,
    cache_option,
    insecure_option,
    notrust_option,
    package_directories,
    parse_platforms,
    sign_key_option,
    tag_mode_of,
    tag_mode_option,
    trust_ca_option,
)
from lkpkg.doctor import (
    BINFMT_DIR_VARIABLE,
    DEFAULT_TIMEOUT,
    DoctorOptions,
    Summary,
    run_checks,
)
from lkpkg.errors import DoctorFailed
from lkpkg.platforms import BINFMT_DIR

_LABEL_WIDTH = 4
_STYLES = {Status.OK: "bold green", Status.WARN: "bold yellow", Status.FAIL: "bold red"}


def plain_lines(result: CheckResult) -> list[str]:
    """`ok   name: detail`, and for a check that is not ok `     fix: ...` under it."""
    lines = [f"{result.status.value:<{_LABEL_WIDTH}} {result.name}: {result.detail}"]
    if result.fix is not None:
        lines.append(f"{'':<{_LABEL_WIDTH}} fix: {result.fix}")
    return lines


def rich_lines(result: CheckResult) -> list[Text]:
    """The same lines as `plain_lines`, coloured by status."""
    style = _STYLES[result.status]
    lines = [
        Text.assemble(
            (f"{result.status.value:<{_LABEL_WIDTH}}", style),
            " ",
            (result.name, "bold"),
            f": {result.detail}",
        )
    ]
    if result.fix is not None:
        lines.append(Text.assemble(f"{'':<{_LABEL_WIDTH}} ", ("fix:", style), f" {result.fix}"))
    return lines


class _Printer:
    """Rich colour on a terminal; plain, unwrapped lines otherwise (pipes, logs, CI)."""

    def __init__(self) -> None:
        self._console = Console(highlight=False, soft_wrap=True)
        self._rich = self._console.is_terminal

    def check(self, result: CheckResult) -> None:
        if self._rich:
            for text in rich_lines(result):
                self._console.print(text)
        else:
            for line in plain_lines(result):
                click.echo(line)

    def summary(self, summary: Summary) -> None:
        if self._rich:
            style = "bold red" if summary.failed else "bold yellow" if summary.warnings else "green"
            self._console.print(Text(str(summary), style=style))
        else:
            click.echo(str(summary))


@click.command()
@click.option("--org", help="The org to push to (may carry a registry: localhost:5000/wombat).")
@click.option(
    "--platforms",
    help="Comma-separated, e.g. linux/amd64,linux/arm64 (default: the host's, plus every "
    "arch in the packages' build.yml).",
)
@builder_option
@builder_host_option
@notrust_option
@sign_key_option("Check that this cosign key loads with $COSIGN_PASSWORD.")
@trust_ca_option
@insecure_option
@click.option(
    "--binfmt-dir",
    type=click.Path(path_type=Path, file_okay=False),
    envvar=BINFMT_DIR_VARIABLE,
    default=BINFMT_DIR,
    show_default=True,
    help=f"Where the qemu-user binfmt handlers are registered (or ${BINFMT_DIR_VARIABLE}).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0.1, max=300),
    default=DEFAULT_TIMEOUT,
    show_default=True,
    help="Seconds each network step (connect, TLS, an answer) may take.",
)
@cache_option
@tag_mode_option
@click.argument(
    "directories", nargs=-1, type=click.Path(path_type=Path), callback=package_directories
)
def doctor(
    org: str | None,
    platforms: str | None,
    builder: str,
    builder_hosts: Sequence[str],
    notrust: bool,
    sign_key: Path | None,
    trust_ca: Path | None,
    insecure: Sequence[str],
    binfmt_dir: Path,
    timeout: float,
    cache_dir: Path | None,
    tag_mode: str | None,
    directories: Sequence[Path],
) -> None:
    """Check that this host can build, push and sign; say how to fix what it cannot.

    \b
    One line per check (ok, warn or FAIL, and a `fix:` line under each that is not ok):
    the builder --builder picks, each --builder-host engine, qemu-user emulation for each
    platform, each target registry (reachable; docker credentials and where they are from),
    and unless --notrust the trust server and the DCT passphrases; with --sign-key the cosign
    key. Secrets are never shown. Exit 0 when nothing failed, 1 otherwise.
    With DIRs, the registries, signed repositories and arches come from the packages, and
    every FROM of each must be in the cache (--cache) for each platform it would build.

    \b
    Examples:
      lkpkg doctor --org localhost:5000/wombat --notrust
      lkpkg doctor --platforms linux/amd64,linux/arm64 pkg/*
    """
    options = DoctorOptions(
        org=org,
        platforms=parse_platforms(platforms),
        builder=builder,
        builder_hosts=parse_builder_hosts(builder_hosts),
        notrust=notrust,
        sign_key=sign_key,
        trust_ca=trust_ca,
        insecure=list(insecure),
        directories=list(directories),
        binfmt_dir=binfmt_dir,
        env=dict(os.environ),
        timeout=timeout,
        cache_dir=cache_dir,
        tag_mode=tag_mode_of(tag_mode),
    )
    printer = _Printer()
    results: list[CheckResult] = []
    for result in run_checks(options):
        printer.check(result)
        results.append(result)
    summary = Summary.of(results)
    printer.summary(summary)
    if summary.failed:
        raise DoctorFailed(
            f"{summary.failed} of {summary.total} checks failed; each FAIL has its fix under it"
        )
