"""What a run of many packages shows while it works, and the summary it ends with.

Two displays behind one interface, `Progress`:
- `PlainProgress`: one stable line per event on stderr, prefixed `lkpkg: `, in the pipeline's
  own words (`lkpkg: wombat/hello:TAG-amd64: building with buildah`, `...: built sha256:…`,
  `...: in cache, not rebuilt`, `...: pushed sha256:…`, `lkpkg: wombat/hello:TAG: index …`),
  plus `failed: …` and `blocked: …` lines. Made to be grepped and logged; the default when
  stderr is not a terminal.
- `RichProgress`: a live table with one row per package and platform (waiting, building,
  built, pushing N/M blobs, pushed, failed, blocked), for a terminal.

Both are fed from many threads at once, so every method takes the display's lock.

The summary (`PackageSummary`) is rendered as aligned text, as a rich table, or as JSON.
"""

from __future__ import annotations

import re
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import Any, Protocol, TextIO

from rich import box
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

PROGRESS_MODES = ("auto", "rich", "plain")
PREFIX = "lkpkg: "
_DIGEST = re.compile(r"sha256:([0-9a-f]{12})[0-9a-f]{52}")
_TREE_TAG = re.compile(r"([0-9a-f]{12})[0-9a-f]{28}(-dirty)?")


def choose_mode(requested: str, stream: TextIO | None = None) -> str:
    """`rich` or `plain`: `auto` is rich only when `stream` (stderr) is a terminal that can
    redraw (not TERM=dumb, as in an editor's shell)."""
    if requested != "auto":
        return requested
    console = Console(file=stream if stream is not None else sys.stderr)
    return "rich" if console.is_terminal and not console.is_dumb_terminal else "plain"


@dataclass(frozen=True)
class Item:
    """One package of the run as the display names it: `subject` is `ORG/IMAGE:TAG` (what
    the pipeline's messages start with), `name` is `ORG/IMAGE` (what a narrow table shows)."""

    subject: str
    arches: tuple[str, ...]
    name: str = ""


class Progress(Protocol):
    """Events of a run. `item` is the package's position in the items given at creation."""

    def __enter__(self) -> Progress: ...

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None: ...

    def reporter(self, item: int) -> Callable[[str], None]:
        """The `report` callback for the pipeline working on `item` ("SUBJECT: what")."""
        ...

    def started(self, item: int) -> None: ...

    def finished(self, item: int) -> None: ...

    def failed(self, item: int, message: str, tail: Sequence[str]) -> None: ...

    def blocked(self, item: int, by: Sequence[int]) -> None:
        """`item` will not be attempted: the items `by`, which it needs, failed."""
        ...

    def blob(self, item: int, arch: str, size: int, total: tuple[int, int]) -> None:
        """One more blob of `item`'s `arch` image is in the registry; `total` is the image's
        (blob count, bytes)."""
        ...


class PlainProgress:
    """Greppable lines on a stream; nothing is ever redrawn."""

    def __init__(
        self, items: Sequence[Item], stream: TextIO | None = None, *, announce_failures: bool = True
    ) -> None:
        self._items = list(items)
        self._stream = stream
        # With a single package its error is the run's last line already; saying it twice
        # would only bury it.
        self._announce_failures = announce_failures
        self._lock = threading.Lock()

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        return None

    def _write(self, lines: Sequence[str]) -> None:
        stream = self._stream if self._stream is not None else sys.stderr
        with self._lock:
            stream.write("".join(f"{line}\n" for line in lines))
            stream.flush()

    def reporter(self, item: int) -> Callable[[str], None]:
        def report(message: str) -> None:
            self._write([PREFIX + message])

        return report

    def started(self, item: int) -> None:
        return None

    def finished(self, item: int) -> None:
        return None

    def failed(self, item: int, message: str, tail: Sequence[str]) -> None:
        if self._announce_failures:
            subject = self._items[item].subject
            self._write([f"{PREFIX}{subject}: failed: {message}", *(f"  | {t}" for t in tail)])

    def blocked(self, item: int, by: Sequence[int]) -> None:
        subject = self._items[item].subject
        needs = ", ".join(self._items[i].subject for i in by)
        self._write([f"{PREFIX}{subject}: blocked: needs {needs}, which failed"])

    def blob(self, item: int, arch: str, size: int, total: tuple[int, int]) -> None:
        return None  # a line per blob would drown the lines that matter


# -- the live display ---------------------------------------------------------------------

_WAITING, _RUNNING, _DONE, _FAILED, _BLOCKED = "waiting", "running", "done", "failed", "blocked"
_STYLES = {_WAITING: "dim", _RUNNING: "yellow", _DONE: "green", _FAILED: "red", _BLOCKED: "red"}
_ICONS = {_WAITING: "·", _DONE: "✓", _FAILED: "✗", _BLOCKED: "⊘"}
_ORDER = {_RUNNING: 0, _FAILED: 1, _BLOCKED: 2, _WAITING: 3, _DONE: 4}
_CLOCKED = ("building", "pushing")


@dataclass
class _Row:
    name: str
    arch: str
    state: str = _WAITING
    status: str = "waiting"
    started: float | None = None
    ended: float | None = None
    blobs: int = 0
    sent: int = 0
    changed: float = field(default_factory=time.monotonic)

    def set(self, state: str, status: str) -> None:
        now = time.monotonic()
        # The clock runs from the platform's own first step, not from its package's start:
        # a package's platforms are built one after the other.
        if state == _RUNNING and self.started is None and status.startswith(_CLOCKED):
            self.started = now
        if state in (_DONE, _FAILED, _BLOCKED) and self.ended is None:
            self.ended = now
        if state != _RUNNING or self.state != _RUNNING:
            self.changed = now
        self.state, self.status = state, status


def _short(text: str) -> str:
    return _DIGEST.sub(r"sha256:\1", text)


def _mib(size: int) -> str:
    return f"{size / (1 << 20):.1f}"


# The last word a pipeline says about a platform; anything else means more is to come.
_FINAL_BUILD = ("built", "in cache")
_FINAL_PUSH = ("pushed", "unchanged", "already in the registry")


def _row_state(text: str, push: bool) -> str:
    return _DONE if text.startswith(_FINAL_PUSH if push else _FINAL_BUILD) else _RUNNING


class RichProgress:
    """A live table on a terminal: one row per package and platform, busiest first."""

    def __init__(
        self,
        items: Sequence[Item],
        console: Console | None = None,
        *,
        announce_failures: bool = True,
        transient: bool = False,
        push: bool = False,
    ) -> None:
        self._items = list(items)
        self._console = console or Console(stderr=True)
        self._announce_failures = announce_failures
        self._push = push
        self._rows = [[_Row(i.name or i.subject, arch) for arch in i.arches] for i in items]
        self._lock = threading.Lock()
        self._live = Live(
            console=self._console,
            get_renderable=self._render,
            refresh_per_second=8,
            transient=transient,
            redirect_stdout=False,
        )

    def __enter__(self) -> RichProgress:
        self._live.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._live.stop()

    def _print(self, renderable: RenderableType) -> None:
        # Above the live table, kept in the terminal's scrollback.
        self._live.console.print(renderable)

    def reporter(self, item: int) -> Callable[[str], None]:
        subject = self._items[item].subject

        def report(message: str) -> None:
            where, _, text = message.partition(": ")
            with self._lock:
                for row in self._rows[item]:
                    if where == f"{subject}-{row.arch}":
                        row.set(_row_state(text, self._push), _short(text))
                        return
                if where == subject:
                    return  # the index and signatures: the summary reports them
            self._print(Text(PREFIX + _short(message), style="dim"))

        return report

    def started(self, item: int) -> None:
        with self._lock:
            for row in self._rows[item]:
                row.set(_RUNNING, "checking")

    def finished(self, item: int) -> None:
        with self._lock:
            for row in self._rows[item]:
                if row.state != _DONE:
                    row.set(_DONE, row.status)

    def failed(self, item: int, message: str, tail: Sequence[str]) -> None:
        with self._lock:
            for row in self._rows[item]:
                if row.state != _DONE:
                    row.set(_FAILED, "failed" if row.started is not None else "not attempted")
        if self._announce_failures:
            lines = Text(f"✗ {self._items[item].subject}: {message}", style="red")
            for line in tail:
                lines.append(f"\n  | {line}", style="dim")
            self._print(lines)

    def blocked(self, item: int, by: Sequence[int]) -> None:
        names = ", ".join(self._items[i].name or self._items[i].subject for i in by)
        with self._lock:
            for row in self._rows[item]:
                row.set(_BLOCKED, f"blocked: needs {names}")

    def blob(self, item: int, arch: str, size: int, total: tuple[int, int]) -> None:
        with self._lock:
            for row in self._rows[item]:
                if row.arch == arch:
                    row.blobs += 1
                    row.sent += size
                    row.set(
                        _RUNNING,
                        f"pushing {row.blobs}/{total[0]} blobs, "
                        f"{_mib(row.sent)}/{_mib(total[1])} MiB",
                    )

    def _render(self) -> RenderableType:
        now = time.monotonic()
        with self._lock:  # a snapshot: the rows change under other threads
            rows = [replace(row) for rows in self._rows for row in rows]
        # Busiest first, then the most recent news: with more rows than the terminal has
        # lines, what is cut off is what finished long ago.
        rows.sort(key=lambda row: (_ORDER[row.state], -row.changed))
        height = max(5, self._console.size.height - 4)
        shown, hidden = rows[:height], rows[height:]
        table = Table.grid(padding=(0, 1))
        table.add_column(no_wrap=True)
        table.add_column(no_wrap=True, overflow="ellipsis", max_width=40)
        table.add_column(no_wrap=True)
        table.add_column(justify="right", no_wrap=True)
        table.add_column(no_wrap=True, overflow="ellipsis")
        for row in shown:
            icon: RenderableType = (
                Spinner("dots", style="yellow")
                if row.state == _RUNNING
                else Text(_ICONS[row.state], style=_STYLES[row.state])
            )
            elapsed = ""
            if row.started is not None:
                elapsed = f"{(row.ended or now) - row.started:.1f}s"
            table.add_row(
                icon,
                Text(row.name, style="bold" if row.state == _RUNNING else ""),
                Text(row.arch),
                Text(elapsed, style="dim"),
                Text(row.status, style=_STYLES[row.state]),
            )
        counts = {state: sum(1 for r in rows if r.state == state) for state in _ORDER}
        footer = Text(
            f"{counts[_DONE]} done, {counts[_RUNNING]} running, {counts[_WAITING]} waiting"
            + (f", {counts[_FAILED]} failed" if counts[_FAILED] else "")
            + (f", {counts[_BLOCKED]} blocked" if counts[_BLOCKED] else "")
            + (f"  (+{len(hidden)} rows not shown)" if hidden else ""),
            style="dim",
        )
        return Group(table, footer)


def make_progress(
    mode: str, items: Sequence[Item], *, announce_failures: bool, transient: bool, push: bool
) -> Progress:
    """The display for `mode` (`rich` or `plain`, as `choose_mode` decided)."""
    if mode == "rich":
        return RichProgress(
            items, announce_failures=announce_failures, transient=transient, push=push
        )
    return PlainProgress(items, announce_failures=announce_failures)


# -- the summary --------------------------------------------------------------------------


@dataclass(frozen=True)
class PlatformSummary:
    platform: str
    reference: str
    digest: str | None
    built: bool
    # None for a build; for a push, whether this run uploaded the image (False: the registry
    # had it already).
    pushed: bool | None = None


@dataclass(frozen=True)
class PackageSummary:
    """One package's end state: `status` is built, skipped (nothing built), failed or
    blocked (not attempted, because something it needs failed)."""

    directory: str
    image: str
    reference: str
    tag: str
    status: str
    platforms: tuple[PlatformSummary, ...]
    index: str | None = None
    signed: tuple[str, ...] = ()
    error: str | None = None
    # Other packages by directory (unique, for machines) and, for blocked_by, by ORG/IMAGE
    # (for people, as the PACKAGE column names them).
    blocked_by: tuple[str, ...] = ()
    needs: tuple[str, ...] = ()
    blocked_by_images: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.status in ("built", "skipped")

    def pushed_text(self) -> str:
        pushed = [p.platform.split("/")[-1] for p in self.platforms if p.pushed]
        if pushed:
            return ",".join(pushed)
        return "unchanged" if self.ok else "-"

    def note(self) -> str:
        if self.status == "blocked":
            return f"needs {', '.join(self.blocked_by_images)}, which failed"
        return self.error or ""


def _columns(summaries: Sequence[PackageSummary], push: bool) -> list[tuple[str, list[str]]]:
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


def summary_text(summaries: Sequence[PackageSummary], *, push: bool) -> str:
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
    match = _TREE_TAG.fullmatch(tag)
    return match.group(1) + (match.group(2) or "") if match else tag


def summary_table(summaries: Sequence[PackageSummary], *, push: bool) -> Table:
    """The summary as a rich table (for a terminal; full tags are on stdout and in --json)."""
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


def summary_json(summaries: Sequence[PackageSummary], *, command: str) -> dict[str, Any]:
    """The summary for machines: everything the table says, with full references and digests."""
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
