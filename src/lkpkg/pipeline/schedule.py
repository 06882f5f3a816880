"""Running work over a dependency graph: independent items at once, dependents after.

At most `jobs` items run at a time, each on its own thread (the work is builders and
registries: processes and sockets, not Python). An item starts once everything it needs has
succeeded. Among items free to start, the one with the longest chain of items waiting on it
goes first (a base that three packages build FROM should not queue behind a leaf), then the
lowest index; so with `jobs=1` the run is sequential and in a fixed order. When an item
fails, every item that needs it, directly or not, is blocked at once: never started, and
reported with the failures that blocked it. Items that do not depend on a failure carry on.

The graph must be acyclic (`graph.package_graph` guarantees it for packages). The
topological bookkeeping is the standard library's `graphlib.TopologicalSorter`; this module
adds the threads, the priority among ready items and the failure policy.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from graphlib import CycleError, TopologicalSorter
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Succeeded(Generic[T]):
    value: T


@dataclass(frozen=True)
class Failed:
    error: Exception


@dataclass(frozen=True)
class Blocked:
    """Not attempted: `by` are the failed items upstream of this one (the causes, not the
    blocked items in between)."""

    by: tuple[int, ...]


Outcome = Succeeded[T] | Failed | Blocked


def run_graph(
    needs: Sequence[Collection[int]],
    work: Callable[[int], T],
    *,
    jobs: int,
    on_start: Callable[[int], None] | None = None,
    on_failed: Callable[[int, Exception], None] | None = None,
    on_blocked: Callable[[int, tuple[int, ...]], None] | None = None,
    on_interrupt: Callable[[], None] | None = None,
) -> list[Outcome[T]]:
    """Run `work(i)` for every item `i`, after every item in `needs[i]` succeeded.

    Returns each item's outcome, in index order. An `Exception` from `work` fails that item
    only; anything else (KeyboardInterrupt or SIGTERM's `Terminated` in the waiting thread)
    cancels what has not started, calls `on_interrupt` (which should make the running work
    end soon), waits for what is running, and propagates.
    """
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, got {jobs}")
    count = len(needs)
    dependents = _dependents(needs)
    height = _heights(needs)
    # graphlib hands out the items whose needs are all done; a failed item is never marked
    # done, so nothing downstream of it is ever handed out.
    sorter = _sorter(needs)
    sorter.prepare()
    outcomes: dict[int, Outcome[T]] = {}
    ready: set[int] = set()
    running: dict[Future[T], int] = {}

    def block_dependents(failed: int) -> None:
        # Nothing downstream of `failed` can have started: it needed `failed` to succeed.
        seen: set[int] = set()
        stack = list(dependents[failed])
        while stack:
            item = stack.pop()
            if item in seen:
                continue
            seen.add(item)
            earlier = outcomes.get(item)
            if isinstance(earlier, Blocked):
                outcomes[item] = Blocked(tuple(sorted({*earlier.by, failed})))
            else:
                ready.discard(item)
                outcomes[item] = Blocked((failed,))
                if on_blocked is not None:
                    on_blocked(item, (failed,))
            stack.extend(dependents[item])

    with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="lkpkg-job") as pool:
        try:
            while True:
                ready.update(i for i in sorter.get_ready() if i not in outcomes)
                chosen = sorted(ready, key=lambda i: (-height[i], i))[: jobs - len(running)]
                for item in chosen:
                    ready.discard(item)
                    if on_start is not None:
                        on_start(item)
                    running[pool.submit(work, item)] = item
                if not running:
                    break  # what is left is blocked by a failure
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in sorted(done, key=running.__getitem__):
                    item = running.pop(future)
                    error = future.exception()
                    if error is None:
                        outcomes[item] = Succeeded(future.result())
                        sorter.done(item)
                    elif isinstance(error, Exception):
                        outcomes[item] = Failed(error)
                        if on_failed is not None:
                            on_failed(item, error)
                        block_dependents(item)
                    else:
                        raise error
        except BaseException:
            if on_interrupt is not None:
                pool.shutdown(wait=False, cancel_futures=True)
                on_interrupt()
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    return [outcomes[i] for i in range(count)]


def priority_order(needs: Sequence[Collection[int]]) -> list[int]:
    """The order `run_graph` starts items in with `jobs=1` when nothing fails."""
    height = _heights(needs)
    sorter = _sorter(needs)
    sorter.prepare()
    ready: set[int] = set()
    order: list[int] = []
    while sorter.is_active():
        ready.update(sorter.get_ready())
        item = min(ready, key=lambda i: (-height[i], i))
        ready.discard(item)
        order.append(item)
        sorter.done(item)
    return order


def _sorter(needs: Sequence[Collection[int]]) -> TopologicalSorter[int]:
    sorter: TopologicalSorter[int] = TopologicalSorter()
    for item, required in enumerate(needs):
        sorter.add(item, *sorted(set(required)))
    return sorter


def _dependents(needs: Sequence[Collection[int]]) -> list[list[int]]:
    dependents: list[list[int]] = [[] for _ in needs]
    for item, required in enumerate(needs):
        for other in sorted(set(required)):
            dependents[other].append(item)
    return dependents


def _heights(needs: Sequence[Collection[int]]) -> list[int]:
    """For each item, the length of the longest chain of items that wait on it.

    `ValueError` (graphlib's `CycleError`) when the graph has a cycle.
    """
    dependents = _dependents(needs)
    try:
        order = list(_sorter(needs).static_order())
    except CycleError as error:
        raise ValueError(f"the dependency graph has a cycle: {error.args[1]}") from error
    height = [0] * len(needs)
    for item in reversed(order):
        height[item] = max((height[d] + 1 for d in dependents[item]), default=0)
    return height
