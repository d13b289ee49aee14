"""``ProcessPoolTaskRunner``: task runs in worker processes of the flow's machine."""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import threading
from typing import Any

from tideflow.engine.task_runs import TaskRun
from tideflow.futures import TaskFuture
from tideflow.task_runners._base import TaskRunner, check_workers
from tideflow.task_runners._remote import RemoteDispatch, run_payload

__all__ = ["ProcessPoolTaskRunner"]


class ProcessPoolTaskRunner(TaskRunner):
    """Run task runs in up to ``max_workers`` worker processes (default: the number of CPUs).

    Tasks, arguments and results travel with cloudpickle; workers are started with ``spawn`` (never a
    fork of a process whose threads may hold locks). Upstream futures are resolved in the flow's
    process, so a worker receives plain values. Logs from a worker go to the flow run's logs.
    """

    def __init__(self, max_workers: int | None = None) -> None:
        self.max_workers = check_workers(max_workers)
        self._processes: cf.ProcessPoolExecutor | None = None
        self._dispatch: RemoteDispatch | None = None
        self._lock = threading.Lock()

    def duplicate(self) -> ProcessPoolTaskRunner:
        return ProcessPoolTaskRunner(self.max_workers)

    def __reduce__(self) -> tuple[Any, ...]:  # options only: a flow (and its runner) may be pickled
        return (ProcessPoolTaskRunner, (self.max_workers,))

    def _started(self) -> RemoteDispatch:
        with self._lock:
            if self._dispatch is None:
                workers = self.max_workers or multiprocessing.cpu_count()
                processes = cf.ProcessPoolExecutor(
                    workers, mp_context=multiprocessing.get_context("spawn")
                )
                self._processes = processes
                self._dispatch = RemoteDispatch(
                    workers * 4, lambda payload: processes.submit(run_payload, payload).result()
                )
            return self._dispatch

    def submit(
        self, task: Any, run: TaskRun, args: tuple[Any, ...], kwargs: dict[str, Any], bound: Any,
        wait_for: Any = (),
    ) -> TaskFuture[Any]:  # fmt: skip
        return self._started().submit(task, run, args, kwargs, bound, wait_for)

    def shutdown(self, wait: bool = True) -> None:
        with self._lock:
            processes, self._processes = self._processes, None
            dispatch, self._dispatch = self._dispatch, None
        if dispatch is not None:
            dispatch.shutdown(wait)
        if processes is not None:
            processes.shutdown(wait=wait, cancel_futures=not wait)

    def __repr__(self) -> str:
        return f"ProcessPoolTaskRunner(max_workers={self.max_workers})"
