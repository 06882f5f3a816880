"""What a run of many packages shows while it works: displays of the pipeline's typed events.

A display is the `on_event(position, event)` callback of `run_build`/`run_push`
(pipeline/run.py) and a context manager around the run. Two of them:
- `PlainProgress`: one stable line per event on stderr, prefixed `lkpkg: `, in the words of
  `events.describe` (`lkpkg: wombat/hello:TAG-amd64: building with buildah`, `...: built
  sha256:…`, `...: in cache, not rebuilt`, `...: pushed sha256:…`, `lkpkg: wombat/hello:TAG:
  index …`), plus `failed: …` and `blocked: …` lines. Made to be grepped and logged; the
  default when stderr is not a terminal.
- `RichProgress`: a live table with one row per package and platform (waiting, building,
  built, pushing N/M blobs, pushed, failed, blocked), for a terminal.

A row's state follows from the events' types alone; the words only fill the status column,
so rewording a message changes no state. Both displays are fed from many threads at once, so
every update takes the display's lock. The end-of-run summary is rendered by `summary.py`.
"""

from __future__ import annotations

import re
import sys
import threading
import time
import traceback
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import TYPE_CHECKING, Protocol, TextIO

from lkpkg.errors import LkpkgError
from lkpkg.pipeline import events
from lkpkg.settings import PROGRESS_CHOICES

if TYPE_CHECKING:
    # rich is imported where the live table is made: a plain run (logs, CI, pipes) never
    # loads it (about 15 ms of every start-up).
    from rich.console import Console, RenderableType

PROGRESS_MODES = PROGRESS_CHOICES
PREFIX = "lkpkg: "
_DIGEST = re.compile(r"sha256:([0-9a-f]{12})[0-9a-f]{52}")


def choose_mode(
    requested: str, stream: TextIO | None = None, env: Mapping[str, str] | None = None
) -> str:
    """`rich` or `plain`: `auto` is rich only when `stream` (stderr) is a terminal that can
    redraw (not TERM=dumb, as in an editor's shell). `env` is the environment rich judges
    by (TERM, FORCE_COLOR, TTY_COMPATIBLE...: the settings' `env`; None: rich reads it)."""
    if requested != "auto":
        return requested
    file = stream if stream is not None else sys.stderr
    if env is not None and not _may_be_terminal(file, env):
        return "plain"
    from rich.console import Console

    console = Console(file=file, _environ=env)
    return "rich" if console.is_terminal and not console.is_dumb_terminal else "plain"


def _may_be_terminal(file: TextIO, env: Mapping[str, str]) -> bool:
    """False where rich's `Console.is_terminal` is False for sure, decided without importing
    rich (about 15 ms of every start-up): `file` is no tty, and neither TTY_COMPATIBLE=1 nor
    FORCE_COLOR makes rich treat it as one."""
    if env.get("TTY_COMPATIBLE") == "1" or env.get("FORCE_COLOR"):
        return True
    try:
        return file.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed file
        return False


class Progress(Protocol):
    """A display: a context manager around the run, and its `on_event` callback."""

    def __enter__(self) -> Progress: ...

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None: ...

    def __call__(self, item: int, event: events.Event) -> None:
        """`event` of the package at position `item` of the run (-1 for `Planned`)."""
        ...


def _print_bug(event: events.Failed) -> None:
    # Not a user-facing failure but a bug: keep its traceback, as `main` does for one.
    if event.error is not None and not isinstance(event.error, LkpkgError):
        traceback.print_exception(event.error, file=sys.stderr)


class PlainProgress:
    """Greppable lines on a stream; nothing is ever redrawn."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream
        self._packages: tuple[events.PlannedPackage, ...] = ()
        self._lock = threading.Lock()
        # A package's "platforms ... (why)" line waits for its first work: a package that
        # fails before any (a dirty push, bad credentials) ends on its one error line.
        self._chosen: dict[int, str] = {}

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

    def __call__(self, item: int, event: events.Event) -> None:
        if isinstance(event, events.Planned):
            self._packages = event.packages
        elif isinstance(event, events.Skipped):
            self._write([events.skipped_text(event)])
        elif isinstance(event, events.BlobProgress):
            return  # a line per blob would drown the lines that matter
        elif isinstance(event, events.PlatformsChosen):
            self._chosen[item] = PREFIX + events.describe(event)
        elif isinstance(event, events.WorkEvent):
            chosen = self._chosen.pop(item, None)
            self._write([*([chosen] if chosen else []), PREFIX + events.describe(event)])
        elif isinstance(event, events.Failed):
            _print_bug(event)
            # With a single package its error is the run's last line already; saying it
            # twice would only bury it.
            if len(self._packages) > 1:
                subject = self._packages[item].subject
                self._write(
                    [
                        f"{PREFIX}{subject}: failed: {event.message}",
                        *(f"  | {t}" for t in event.tail),
                        *([f"{PREFIX}{subject}: hint: {event.hint}"] if event.hint else []),
                    ]
                )
        elif isinstance(event, events.Blocked):
            subject = self._packages[item].subject
            needs = ", ".join(self._packages[i].subject for i in event.by)
            self._write([f"{PREFIX}{subject}: blocked: needs {needs}, which failed"])


# -- the live display ---------------------------------------------------------------------

WAITING, RUNNING, DONE, FAILED, BLOCKED = "waiting", "running", "done", "failed", "blocked"
_STYLES = {WAITING: "dim", RUNNING: "yellow", DONE: "green", FAILED: "red", BLOCKED: "red"}
_ICONS = {WAITING: "·", DONE: "✓", FAILED: "✗", BLOCKED: "⊘"}
_ORDER = {RUNNING: 0, FAILED: 1, BLOCKED: 2, WAITING: 3, DONE: 4}

# The last event about a platform, by kind of run; anything else means more is to come.
_FINAL_BUILD = (
    events.CacheHit,
    events.Built,
    events.Attested,
    events.FoundInRegistry,
    events.PulledFromRegistry,
)
_FINAL_PUSH = (events.ImagePushed, events.FoundInRegistry, events.RegistryKept)
# Events that mean the platform's own work began: its clock starts there, not at its
# package's start (a package's platforms are built one after the other).
_CLOCKED = (events.BuildStarted, events.BlobProgress)


@dataclass
class Row:
    name: str
    arch: str
    state: str = WAITING
    status: str = "waiting"
    started: float | None = None
    ended: float | None = None
    blobs: int = 0
    sent: int = 0
    changed: float = field(default_factory=time.monotonic)

    def set(self, state: str, status: str, *, clock: bool = False) -> None:
        now = time.monotonic()
        if state == RUNNING and self.started is None and clock:
            self.started = now
        if state in (DONE, FAILED, BLOCKED) and self.ended is None:
            self.ended = now
        if state != RUNNING or self.state != RUNNING:
            self.changed = now
        self.state, self.status = state, status


def _short(text: str) -> str:
    return _DIGEST.sub(r"sha256:\1", text)


def _mib(size: int) -> str:
    return f"{size / (1 << 20):.1f}"


class RichProgress:
    """A live table on a terminal: one row per package and platform, busiest first.

    With one package the table is its own summary and stays; with several, it is transient
    and failures are announced above it as they happen (the summary table replaces it).
    """

    def __init__(self, console: Console | None = None) -> None:
        from rich.console import Console
        from rich.live import Live

        self._console = console or Console(stderr=True)
        self._packages: tuple[events.PlannedPackage, ...] = ()
        self._push = False
        self._rows: list[list[Row]] = []
        self._lock = threading.Lock()
        self._live = Live(
            console=self._console,
            get_renderable=self._render,
            refresh_per_second=8,
            transient=False,
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

    def rows(self) -> list[Row]:
        """A snapshot of every row, in run order."""
        with self._lock:
            return [replace(row) for rows in self._rows for row in rows]

    def _print(self, renderable: RenderableType) -> None:
        # Above the live table, kept in the terminal's scrollback.
        self._live.console.print(renderable)

    def __call__(self, item: int, event: events.Event) -> None:
        if isinstance(event, events.Planned):
            with self._lock:
                self._packages = event.packages
                self._push = event.push
                self._rows = [[Row(p.name, arch) for arch in p.arches] for p in event.packages]
                self._live.transient = len(event.packages) > 1
        elif isinstance(event, events.Skipped):
            from rich.text import Text

            self._print(Text(events.skipped_text(event)))
        elif isinstance(event, events.WorkEvent):
            self._work(item, event)
        elif isinstance(event, events.Started):
            with self._lock:
                for row in self._rows[item]:
                    row.set(RUNNING, "checking")
        elif isinstance(event, events.Finished):
            with self._lock:
                for row in self._rows[item]:
                    if row.state != DONE:
                        row.set(DONE, row.status)
        elif isinstance(event, events.Failed):
            self._failed(item, event)
        elif isinstance(event, events.Blocked):
            names = ", ".join(self._packages[i].name for i in event.by)
            with self._lock:
                for row in self._rows[item]:
                    row.set(BLOCKED, f"blocked: needs {names}")

    def _work(self, item: int, event: events.WorkEvent) -> None:
        if not isinstance(event, events.ArchEvent):
            return  # the index, releases and signatures: the summary reports them
        final = _FINAL_PUSH if self._push else _FINAL_BUILD
        state = DONE if isinstance(event, final) else RUNNING
        clock = isinstance(event, _CLOCKED)
        with self._lock:
            for row in self._rows[item]:
                if row.arch != event.arch:
                    continue
                if isinstance(event, events.BlobProgress):
                    row.blobs += 1
                    row.sent += event.size
                    status = (
                        f"pushing {row.blobs}/{event.blobs} blobs, "
                        f"{_mib(row.sent)}/{_mib(event.total)} MiB"
                    )
                else:
                    status = _short(events.TEXT[type(event)](event))
                row.set(state, status, clock=clock)

    def _failed(self, item: int, event: events.Failed) -> None:
        _print_bug(event)
        with self._lock:
            for row in self._rows[item]:
                if row.state != DONE:
                    row.set(FAILED, "failed" if row.started is not None else "not attempted")
        if len(self._packages) > 1:
            from rich.text import Text

            lines = Text(f"✗ {self._packages[item].subject}: {event.message}", style="red")
            for line in event.tail:
                lines.append(f"\n  | {line}", style="dim")
            if event.hint:
                lines.append(f"\n  hint: {event.hint}", style="yellow")
            self._print(lines)

    def _render(self) -> RenderableType:
        from rich.console import Group
        from rich.spinner import Spinner
        from rich.table import Table
        from rich.text import Text

        now = time.monotonic()
        rows = self.rows()  # a snapshot: the rows change under other threads
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
                if row.state == RUNNING
                else Text(_ICONS[row.state], style=_STYLES[row.state])
            )
            elapsed = ""
            if row.started is not None:
                elapsed = f"{(row.ended or now) - row.started:.1f}s"
            table.add_row(
                icon,
                Text(row.name, style="bold" if row.state == RUNNING else ""),
                Text(row.arch),
                Text(elapsed, style="dim"),
                Text(row.status, style=_STYLES[row.state]),
            )
        counts = {state: sum(1 for r in rows if r.state == state) for state in _ORDER}
        footer = Text(
            f"{counts[DONE]} done, {counts[RUNNING]} running, {counts[WAITING]} waiting"
            + (f", {counts[FAILED]} failed" if counts[FAILED] else "")
            + (f", {counts[BLOCKED]} blocked" if counts[BLOCKED] else "")
            + (f"  (+{len(hidden)} rows not shown)" if hidden else ""),
            style="dim",
        )
        return Group(table, footer)


def make_progress(mode: str) -> Progress:
    """The display for `mode` (`rich` or `plain`, as `choose_mode` decided)."""
    if mode == "rich":
        return RichProgress()
    return PlainProgress()
