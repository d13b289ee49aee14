"""Futures of submitted task runs: ``TaskFuture``, ``FutureList``, ``wait`` and ``as_completed``.

``task.submit()`` answers a TaskFuture and ``task.map()`` a FutureList. A future passed as an argument
to another task makes that task wait for it (and records the dependency); ``.result()`` blocks until
the task run is final and returns its value or raises its error.
"""

from __future__ import annotations

import concurrent.futures as cf
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, Generic, NamedTuple, TypeVar
from uuid import UUID

from tideflow.utilities.annotations import unmapped

if TYPE_CHECKING:
    from tideflow.engine.task_runs import TaskRun
    from tideflow.schemas import State

__all__ = [
    "DoneAndNotDoneFutures",
    "FutureList",
    "TaskFuture",
    "as_completed",
    "unmapped",
    "wait",
]

R = TypeVar("R")


class TaskFuture(Generic[R]):
    """The promise of one task run's result. ``.result()`` waits for it; ``.state`` reads it now."""

    __slots__ = ("_inner", "task_run")

    def __init__(self, task_run: TaskRun, inner: cf.Future[Any]) -> None:
        self.task_run = task_run
        self._inner = inner

    @property
    def task_run_id(self) -> UUID:
        return self.task_run.id

    @property
    def state(self) -> State:
        """The task run's state as this process knows it (Pending until a worker starts it)."""
        return self.task_run.state

    def done(self) -> bool:
        return self._inner.done()

    def wait(self, timeout: float | None = None) -> None:
        """Block until the task run is final, or ``timeout`` seconds passed (then return anyway)."""
        cf.wait([self._inner], timeout=timeout)

    def result(self, timeout: float | None = None, raise_on_failure: bool = True) -> R:
        """The task's value; its exception is raised (or returned with ``raise_on_failure=False``).

        Raises TimeoutError when the run is not final within ``timeout`` seconds.
        """
        try:
            value: R = self._inner.result(timeout=timeout)
            return value
        except BaseException as exc:
            # cf.TimeoutError is the builtin TimeoutError: tell the wait's end from a task's own
            if not self._inner.done():
                raise TimeoutError(
                    f"task run {self.task_run.name!r} did not finish within {timeout} s"
                ) from None
            if raise_on_failure:
                raise
            return exc  # type: ignore[return-value]

    def add_done_callback(self, fn: Callable[[TaskFuture[R]], Any]) -> None:
        """Call ``fn(future)`` once the task run is final (at once if it already is)."""
        self._inner.add_done_callback(lambda _: fn(self))

    def __repr__(self) -> str:
        return f"TaskFuture(task_run={self.task_run.name!r}, state={self.state.name})"


class FutureList(list[TaskFuture[R]]):
    """The futures of a ``.map()``, in argument order, with list-wide ``wait`` and ``result``."""

    def wait(self, timeout: float | None = None) -> None:
        """Block until every task run is final, or ``timeout`` seconds passed."""
        cf.wait([f._inner for f in self], timeout=timeout)

    def result(self, timeout: float | None = None, raise_on_failure: bool = True) -> list[R]:
        """Every value in order; the first failure (in order) is raised unless told otherwise."""
        self.wait(timeout)
        not_done = [f.task_run.name for f in self if not f.done()]
        if not_done:
            raise TimeoutError(
                f"{len(not_done)} of {len(self)} task runs did not finish within {timeout} s "
                f"(first: {not_done[0]!r})"
            )
        return [f.result(raise_on_failure=raise_on_failure) for f in self]


class DoneAndNotDoneFutures(NamedTuple):
    done: set[TaskFuture[Any]]
    not_done: set[TaskFuture[Any]]


def wait(futures: Iterable[TaskFuture[Any]], timeout: float | None = None) -> DoneAndNotDoneFutures:
    """Wait until all ``futures`` are final or ``timeout`` passed; answer which are done and not."""
    items = list(futures)
    by_inner = {f._inner: f for f in items}
    done, not_done = cf.wait(list(by_inner), timeout=timeout)
    return DoneAndNotDoneFutures({by_inner[f] for f in done}, {by_inner[f] for f in not_done})


def as_completed(
    futures: Iterable[TaskFuture[R]], timeout: float | None = None
) -> Iterator[TaskFuture[R]]:
    """Yield each future as its task run becomes final; TimeoutError when ``timeout`` passes first."""
    by_inner = {f._inner: f for f in futures}
    try:
        for inner in cf.as_completed(list(by_inner), timeout=timeout):
            yield by_inner[inner]
    except cf.TimeoutError:
        left = sum(1 for f in by_inner if not f.done())
        raise TimeoutError(f"{left} task runs did not finish within {timeout} s") from None
