"""The task runner contract and ``ThreadPoolTaskRunner``, the default: task runs in threads of the
flow's process.

A flow takes one as ``@flow(task_runner=...)``; each call of the flow gets a fresh copy
(``duplicate()``), started on the first ``.submit()``/``.map()`` and shut down — after every task
run it started has finished — before the flow run reaches its final state.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextvars
import threading
from typing import Any

from tideflow.engine.task_runs import TaskRun
from tideflow.futures import TaskFuture
from tideflow.task_runners._remote import run_in_thread

__all__ = ["TaskRunner", "ThreadPoolTaskRunner", "check_workers"]


def check_workers(value: int | None) -> int | None:
    """``max_workers`` as given, or a ValueError naming it."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ValueError(f"max_workers must be an integer ≥ 1, got {value!r}")
    return value


class TaskRunner:
    """Base of the task runners: ``submit`` a task run, answer its future; ``shutdown`` at the end."""

    def duplicate(self) -> TaskRunner:
        """A fresh, unstarted runner with the same options (one per flow call)."""
        raise TypeError(f"{type(self).__name__} must implement duplicate()")

    def submit(
        self, task: Any, run: TaskRun, args: tuple[Any, ...], kwargs: dict[str, Any], bound: Any,
        wait_for: Any = (),
    ) -> TaskFuture[Any]:  # fmt: skip
        raise TypeError(f"{type(self).__name__} must implement submit()")

    def shutdown(self, wait: bool = True) -> None:
        """Stop taking work; with ``wait``, return once every submitted task run is final."""

    def __enter__(self) -> TaskRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown(wait=True)


class ThreadPoolTaskRunner(TaskRunner):
    """Run task runs in up to ``max_workers`` threads (default: the thread pool's, min(32, cpus+4)).

    Each task run sees the submitting code's context (its flow run, logger, runtime facts).
    """

    def __init__(self, max_workers: int | None = None) -> None:
        self.max_workers = check_workers(max_workers)
        self._executor: cf.ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def duplicate(self) -> ThreadPoolTaskRunner:
        return ThreadPoolTaskRunner(self.max_workers)

    def __reduce__(self) -> tuple[Any, ...]:  # options only: a flow (and its runner) may be pickled
        return (ThreadPoolTaskRunner, (self.max_workers,))

    def _pool(self) -> cf.ThreadPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = cf.ThreadPoolExecutor(
                    self.max_workers, thread_name_prefix="tideflow-task"
                )
            return self._executor

    def submit(
        self, task: Any, run: TaskRun, args: tuple[Any, ...], kwargs: dict[str, Any], bound: Any,
        wait_for: Any = (),
    ) -> TaskFuture[Any]:  # fmt: skip
        ctx = contextvars.copy_context()
        inner = self._pool().submit(
            ctx.run, run_in_thread, task, run, args, kwargs, bound, wait_for
        )
        return TaskFuture(run, inner)

    def shutdown(self, wait: bool = True) -> None:
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=wait, cancel_futures=not wait)

    def __repr__(self) -> str:
        return f"ThreadPoolTaskRunner(max_workers={self.max_workers})"
