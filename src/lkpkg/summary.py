"""The end of a run, rendered: the `RunReport` of pipeline/run.py as a rich table (terminal),
aligned text (logs and pipes), JSON (`--json`, for machines) and one line per package (stdout).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from lkpkg.pipeline.report import PackageReport, RunReport

if TYPE_CHECKING:
    # rich is imported only to draw the table on a terminal: logs and pipes never load it.
    from rich.console import Console
    from rich.table import Table

# Compiled (and kept in re's cache) by the first table, not by every import.
_TREE_TAG = r"([0-9a-f]{12})[0-9a-f]{28}(-dirty)?"


def result_lines(report: RunReport) -> list[str]:
    """One line on stdout per package that made it, as a single-package run always printed:
    `ORG/IMAGE:TAG INDEX built=ARCHES` (build) or `... pushed=ARCHES signed=KINDS` (push)."""
    lines = []
    for package in report.packages:
        if not package.ok:
            continue
        start = f"{package.image}:{package.tag} {package.index}"
        if report.command == "push":
            signed = ",".join(package.signed) or "-"
            # The table's words: the arches this run uploaded, else `unchanged`.
            lines.append(f"{start} pushed={package.pushed_text()} signed={signed}")
        else:
            built = ",".join(_arch(p.platform) for p in package.platforms if p.built) or "-"
            lines.append(f"{start} built={built}")
    return lines


def _arch(platform: str) -> str:
    """The architecture of `OS/ARCH[/VARIANT]`."""
    return platform.split("/")[1]


def _columns(summaries: Sequence[PackageReport], push: bool) -> list[tuple[str, list[str]]]:
    columns = [
        ("PACKAGE", [s.image for s in summaries]),
        ("TAG", [s.tag for s in summaries]),
        (
            "PLATFORMS",
            [",".join(p.platform.split("/")[-1] for p in s.platforms) for s in summaries],
        ),
        ("STATUS", [s.status for s in summaries]),
    ]
    if push:
        columns.append(("PUSHED", [s.pushed_text() for s in summaries]))
    columns.append(("SIGNED", [",".join(s.signed) or "-" for s in summaries]))
    columns.append(("NOTE", [s.note() for s in summaries]))
    return columns


def summary_text(summaries: Sequence[PackageReport], *, push: bool) -> str:
    """The summary as aligned columns of plain text (for logs and pipes)."""
    columns = _columns(summaries, push)
    widths = [max(len(title), *(len(v) for v in values)) for title, values in columns]
    lines = []
    for row in range(-1, len(summaries)):
        cells = [
            (title if row < 0 else values[row]).ljust(width)
            for (title, values), width in zip(columns, widths, strict=True)
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def _short_tag(tag: str) -> str:
    """A tree-id tag cut to 12 hex digits, as docker shortens ids; other tags as they are."""
    match = re.fullmatch(_TREE_TAG, tag)
    return match.group(1) + (match.group(2) or "") if match else tag


def summary_table(summaries: Sequence[PackageReport], *, push: bool) -> Table:
    """The summary as a rich table (for a terminal; full tags are on stdout and in --json)."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    styles = {"built": "green", "skipped": "cyan", "failed": "bold red", "blocked": "red"}
    table = Table(box=box.SIMPLE_HEAD, header_style="bold", pad_edge=False)
    columns = _columns(summaries, push)
    columns[1] = ("TAG", [_short_tag(tag) for tag in columns[1][1]])
    for title, values in columns:
        if title == "NOTE":
            # The only column that gives way on a narrow terminal: it wraps.
            table.add_column(title, overflow="fold")
        else:
            width = max(len(title), *(len(v) for v in values))
            table.add_column(title, no_wrap=True, min_width=width)
    for row, summary in enumerate(summaries):
        cells = [Text(values[row]) for _, values in columns]
        cells[3].stylize(styles.get(summary.status, ""))
        table.add_row(*cells)
    return table


def fits(console: Console, table: Table) -> bool:
    """Whether `table` shows every column at `console`'s width (rich drops the columns that
    do not fit; then the aligned text, which never cuts, is printed instead)."""
    from rich.measure import Measurement

    unbounded = console.options.update(width=1 << 16)
    return Measurement.get(console, unbounded, table).minimum <= console.width


def summary_json(report: RunReport) -> dict[str, Any]:
    """The summary for machines: everything the table says, with full references and digests."""
    summaries, command = report.packages, report.command
    packages = []
    for s in summaries:
        packages.append(
            {
                "directory": s.directory,
                "image": s.image,
                "reference": s.reference,
                "tag": s.tag,
                "status": s.status,
                "index": s.index,
                "platforms": [
                    {
                        "platform": p.platform,
                        "reference": p.reference,
                        "digest": p.digest,
                        "built": p.built,
                        **({"pushed": p.pushed} if command == "push" else {}),
                        "reused_from": p.reused_from,
                    }
                    for p in s.platforms
                ],
                "signed": list(s.signed),
                "error": s.error,
                "blocked_by": list(s.blocked_by),
                "needs": list(s.needs),
            }
        )
    return {
        "command": command,
        "ok": all(s.ok for s in summaries),
        "counts": {
            status: sum(1 for s in summaries if s.status == status)
            for status in ("built", "skipped", "failed", "blocked")
        },
        "packages": packages,
    }
