"""The scheduler: concurrency that really happens, dependents after, failures contained."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Sequence

import pytest

from lkpkg.pipeline.schedule import Blocked, Failed, Succeeded, priority_order, run_graph


class Recorder:
    """Work that records when each item ran and how many ran at once."""

    def __init__(self, seconds: float = 0.05, fail: Sequence[int] = ()) -> None:
        self.seconds = seconds
        self.fail = set(fail)
        self.spans: dict[int, tuple[float, float]] = {}
        self.started: list[int] = []
        self.active = 0
        self.most_active = 0
        self._lock = threading.Lock()

    def __call__(self, item: int) -> str:
        with self._lock:
            self.started.append(item)
            self.active += 1
            self.most_active = max(self.most_active, self.active)
        begin = time.monotonic()
        time.sleep(self.seconds)
        with self._lock:
            self.active -= 1
            self.spans[item] = (begin, time.monotonic())
        if item in self.fail:
            raise RuntimeError(f"item {item} broke")
        return f"done {item}"


def test_independent_items_run_at_the_same_time() -> None:
    # Each item waits for the other at a barrier: only concurrent runs get past it.
    barrier = threading.Barrier(2, timeout=5)

    def work(item: int) -> int:
        barrier.wait()
        return item

    outcomes = run_graph([set(), set()], work, jobs=2)
    assert outcomes == [Succeeded(0), Succeeded(1)]


def test_overlap_is_measurable_and_bounded_by_jobs() -> None:
    work = Recorder(seconds=0.2)
    run_graph([set()] * 6, work, jobs=3)
    assert work.most_active == 3
    (a0, a1), (b0, b1) = work.spans[0], work.spans[1]
    assert a0 < b1 and b0 < a1, "two independent items did not overlap"


def test_jobs_1_is_sequential_in_priority_order() -> None:
    needs: list[set[int]] = [set(), {2}, set(), set(), {1, 3}]
    work = Recorder(seconds=0.01)
    outcomes = run_graph(needs, work, jobs=1)
    assert all(isinstance(o, Succeeded) for o in outcomes)
    assert work.most_active == 1
    spans = sorted(work.spans.values())
    assert all(earlier[1] <= later[0] for earlier, later in itertools.pairwise(spans))
    assert work.started == priority_order(needs) == [2, 1, 3, 0, 4]


def test_an_item_starts_only_after_everything_it_needs_finished() -> None:
    needs: list[set[int]] = [set(), set(), {0, 1}, {2}]
    work = Recorder(seconds=0.05)
    run_graph(needs, work, jobs=4)
    for item, required in enumerate(needs):
        for other in required:
            assert work.spans[other][1] <= work.spans[item][0]


def test_a_failure_blocks_its_dependents_only() -> None:
    # 0 <- 1 <- 2 fails at 0; 3 is independent; 4 needs 3 and is fine.
    needs: list[set[int]] = [set(), {0}, {1}, set(), {3}]
    work = Recorder(seconds=0.01, fail=[0])
    blocked: list[tuple[int, tuple[int, ...]]] = []
    failed: list[int] = []
    outcomes = run_graph(
        needs,
        work,
        jobs=2,
        on_failed=lambda item, _: failed.append(item),
        on_blocked=lambda item, by: blocked.append((item, by)),
    )
    assert isinstance(outcomes[0], Failed)
    assert str(outcomes[0].error) == "item 0 broke"
    assert outcomes[1] == Blocked((0,)) and outcomes[2] == Blocked((0,))
    assert outcomes[3] == Succeeded("done 3") and outcomes[4] == Succeeded("done 4")
    assert sorted(work.started) == [0, 3, 4], "a blocked item was attempted"
    assert failed == [0]
    assert sorted(blocked) == [(1, (0,)), (2, (0,))]


def test_an_item_blocked_by_two_failures_names_both() -> None:
    needs: list[set[int]] = [set(), set(), {0, 1}]
    outcomes = run_graph(needs, Recorder(seconds=0.01, fail=[0, 1]), jobs=2)
    assert outcomes[2] == Blocked((0, 1))


def test_started_callbacks_and_results_come_back_in_index_order() -> None:
    started: list[int] = []
    outcomes = run_graph([set(), {0}, set()], lambda i: i * 10, jobs=2, on_start=started.append)
    assert outcomes == [Succeeded(0), Succeeded(10), Succeeded(20)]
    assert sorted(started) == [0, 1, 2] and started.index(0) < started.index(1)


def test_a_cycle_is_refused_before_anything_runs() -> None:
    work = Recorder()
    with pytest.raises(ValueError, match="cycle"):
        run_graph([{1}, {0}, set()], work, jobs=2)
    assert work.started == []


def test_jobs_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        run_graph([set()], lambda i: i, jobs=0)


class Stop(BaseException):
    """Stands for KeyboardInterrupt: not an Exception, so not one item's failure."""


def test_an_interrupt_stops_the_run_without_starting_more() -> None:
    started: list[int] = []

    def work(item: int) -> int:
        started.append(item)
        if item == 0:
            raise Stop
        return item

    needs: list[set[int]] = [set(), {0}, {1}]
    with pytest.raises(Stop):
        run_graph(needs, work, jobs=1)
    assert started == [0]


def test_an_interrupt_asks_the_running_work_to_end_before_waiting_for_it() -> None:
    # Item 0 runs until told to end (as a build runs until its process group is killed);
    # the interrupt arrives in the waiting thread (here: from on_start of item 1, which
    # run_graph calls there). on_interrupt must come before the wait for item 0, or the run
    # would hang until item 0 finished on its own.
    release = threading.Event()
    calls: list[str] = []

    def work(item: int) -> int:
        if item == 0:
            calls.append("waiting" if release.wait(timeout=30) else "timed out")
        return item

    def on_start(item: int) -> None:
        if item == 1:
            raise Stop

    def on_interrupt() -> None:
        calls.append("interrupt")
        release.set()

    with pytest.raises(Stop):
        run_graph([set(), set()], work, jobs=2, on_start=on_start, on_interrupt=on_interrupt)
    assert calls == ["interrupt", "waiting"]
