"""The displays render typed events: states come from event types, never from the words."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from lkpkg.errors import BuildError
from lkpkg.pipeline import events
from lkpkg.progress import BLOCKED, DONE, FAILED, RUNNING, WAITING, PlainProgress, RichProgress
from lkpkg.reference import Reference

D1 = "sha256:" + "1" * 64
D2 = "sha256:" + "2" * 64


def ref(name: str, tag: str) -> Reference:
    return Reference.parse(f"wombat/{name}:{tag}")


def planned(push: bool) -> events.Planned:
    return events.Planned(
        (
            events.PlannedPackage("wombat/base:t", "wombat/base", ("amd64", "arm64")),
            events.PlannedPackage("wombat/app:t", "wombat/app", ("amd64",)),
            events.PlannedPackage("wombat/leaf:t", "wombat/leaf", ("amd64",)),
        ),
        push,
    )


def states(display: RichProgress) -> dict[tuple[str, str], tuple[str, str]]:
    return {(row.name, row.arch): (row.state, row.status) for row in display.rows()}


def quiet_console() -> Console:
    return Console(file=io.StringIO(), width=120, force_terminal=False)


def drive_build(display: RichProgress) -> list[dict[tuple[str, str], tuple[str, str]]]:
    """A build of three packages: base builds amd64 and finds arm64 in the cache, app fails,
    leaf (which needs app) is blocked. A snapshot of the rows after each step."""
    seen = []
    display(-1, planned(push=False))
    seen.append(states(display))
    display(0, events.Started())
    display(0, events.BuildStarted(ref("base", "t-amd64"), "amd64", "buildah"))
    seen.append(states(display))
    display(0, events.Built(ref("base", "t-amd64"), "amd64", D1))
    display(0, events.CacheHit(ref("base", "t-arm64"), "arm64", D2))
    display(0, events.IndexWritten(ref("base", "t"), D2))
    seen.append(states(display))
    display(0, events.Finished())
    display(1, events.Started())
    display(1, events.BuildStarted(ref("app", "t-amd64"), "amd64", "buildah"))
    error = BuildError("buildah build failed", ["boom"])
    display(1, events.Failed(error.message, ("boom",), None, error))
    display(2, events.Blocked((1,)))
    seen.append(states(display))
    return seen


def test_the_live_display_tracks_states_whatever_the_words(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    plain_words = drive_build(RichProgress(quiet_console()))
    # Every message renamed: the states must not change, only the status words.
    renamed = {kind: (lambda e, kind=kind: f"zz-{kind.__name__}") for kind in events.TEXT}
    monkeypatch.setattr(events, "TEXT", renamed)
    other_words = drive_build(RichProgress(quiet_console()))

    def only_states(
        snapshots: list[dict[tuple[str, str], tuple[str, str]]],
    ) -> list[dict[tuple[str, str], str]]:
        return [{key: state for key, (state, _) in snap.items()} for snap in snapshots]

    assert only_states(plain_words) == only_states(other_words)
    waiting, building, built, end = only_states(other_words)
    assert set(waiting.values()) == {WAITING}
    assert building[("wombat/base", "amd64")] == RUNNING
    assert building[("wombat/app", "amd64")] == WAITING
    assert built[("wombat/base", "amd64")] == DONE and built[("wombat/base", "arm64")] == DONE
    assert end[("wombat/app", "amd64")] == FAILED
    assert end[("wombat/leaf", "amd64")] == BLOCKED
    # The renamed words are what the rows show.
    assert other_words[2][("wombat/base", "arm64")][1] == "zz-CacheHit"


def test_in_a_push_a_built_image_is_still_running_until_it_is_pushed() -> None:
    display = RichProgress(quiet_console())
    display(-1, planned(push=True))
    display(0, events.Started())
    display(0, events.Built(ref("base", "t-amd64"), "amd64", D1))
    assert states(display)[("wombat/base", "amd64")][0] == RUNNING
    for number in range(2):
        display(0, events.BlobProgress(ref("base", "t-amd64"), "amd64", D2, 1 << 20, 2, 3 << 20))
        state, status = states(display)[("wombat/base", "amd64")]
        assert state == RUNNING and status.startswith(f"pushing {number + 1}/2 blobs")
    display(0, events.ImagePushed(ref("base", "t-amd64"), "amd64", D1, True))
    display(0, events.FoundInRegistry(ref("base", "t-arm64"), "arm64"))
    assert states(display)[("wombat/base", "amd64")] == (DONE, "pushed sha256:111111111111")
    assert states(display)[("wombat/base", "arm64")][0] == DONE


def test_plain_lines_are_the_described_events_and_the_run_outcomes() -> None:
    out = io.StringIO()
    display = PlainProgress(out)
    display(-1, planned(push=False))
    display(0, events.BuildStarted(ref("base", "t-amd64"), "amd64", "buildah"))
    display(0, events.BlobProgress(ref("base", "t-amd64"), "amd64", D2, 1, 1, 1))
    display(0, events.IndexWritten(ref("base", "t"), D2))
    display(1, events.Failed("it broke", ("last line",), "try this"))
    display(2, events.Blocked((1,)))
    assert out.getvalue().splitlines() == [
        "lkpkg: wombat/base:t-amd64: building with buildah",
        f"lkpkg: wombat/base:t: index {D2}",
        "lkpkg: wombat/app:t: failed: it broke",
        "  | last line",
        "lkpkg: wombat/app:t: hint: try this",
        "lkpkg: wombat/leaf:t: blocked: needs wombat/app:t, which failed",
    ]


def test_every_kind_of_work_event_has_words() -> None:
    kinds = {
        value
        for value in vars(events).values()
        if isinstance(value, type)
        and issubclass(value, events.WorkEvent)
        and value not in (events.WorkEvent, events.ArchEvent)
    }
    assert kinds == set(events.TEXT)
