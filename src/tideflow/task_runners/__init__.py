"""Task runners: where a flow's submitted task runs execute. ``ThreadPoolTaskRunner`` (the default)
runs them in threads of the flow's process; ``ProcessPoolTaskRunner`` in worker processes.

A flow takes one as ``@flow(task_runner=...)``; each call of the flow gets a fresh copy
(``duplicate()``), started on the first ``.submit()``/``.map()`` and shut down — after every task
run it started has finished — before the flow run reaches its final state.
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import contextvars
import multiprocessing
import threading
from dataclasses import replace
from typing import Any

import cloudpickle

from tideflow.engine.context import FlowRunContext, current_run, run_context_var
from tideflow.engine.logging import configure_run_logging
from tideflow.engine.sync_runner import flush_run_logs
from tideflow.engine.task_runs import TaskRun, run_task_async, run_task_sync, wait_for_inputs
from tideflow.futures import TaskFuture

__all__ = ["ProcessPoolTaskRunner", "TaskRunner", "ThreadPoolTaskRunner"]


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


def _thread_entry(
    task: Any, run: TaskRun, args: tuple[Any, ...], kwargs: dict[str, Any], bound: Any,
    wait_for: Any,
) -> Any:  # fmt: skip
    if task.isasync:
        return asyncio.run(run_task_async(task, run, args, kwargs, bound, wait_for))
    return run_task_sync(task, run, args, kwargs, bound, wait_for)


class ThreadPoolTaskRunner(TaskRunner):
    """Run task runs in up to ``max_workers`` threads (default: the thread pool's, min(32, cpus+4)).

    Each task run sees the submitting code's context (its flow run, logger, runtime facts).
    """

    def __init__(self, max_workers: int | None = None) -> None:
        if max_workers is not None and (
            isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1
        ):
            raise ValueError(f"max_workers must be an integer ≥ 1, got {max_workers!r}")
        self.max_workers = max_workers
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
            ctx.run, _thread_entry, task, run, args, kwargs, bound, wait_for
        )
        return TaskFuture(run, inner)

    def shutdown(self, wait: bool = True) -> None:
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=wait, cancel_futures=not wait)

    def __repr__(self) -> str:
        return f"ThreadPoolTaskRunner(max_workers={self.max_workers})"


def _process_entry(payload: bytes) -> bytes:
    """In a worker process: run one task run with the flow run's context; answer (value|error, run)."""
    task, run, args, kwargs, flow_ctx = cloudpickle.loads(payload)
    if isinstance(flow_ctx, FlowRunContext):
        configure_run_logging(flow_ctx.settings.logging_level)
    token = run_context_var.set(flow_ctx)
    try:
        try:
            value = _thread_entry(task, run, args, kwargs, _Bound(args, kwargs), ())
            outcome: tuple[Any, ...] = (True, value, run)
        except Exception as exc:
            outcome = (False, exc, run)
        if isinstance(flow_ctx, FlowRunContext):
            flush_run_logs(flow_ctx)
        try:
            return bytes(cloudpickle.dumps(outcome))
        except Exception as exc:  # a value that cannot travel back is the task's failure
            message = f"the result of task run {run.name!r} cannot be pickled: {exc}"
            return bytes(cloudpickle.dumps((False, TypeError(message), run)))
    finally:
        run_context_var.reset(token)


class _Bound:
    """The little of ``inspect.BoundArguments`` the engine reads, for arguments already resolved."""

    __slots__ = ("args", "arguments", "kwargs")

    def __init__(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self.args = args
        self.kwargs = kwargs
        self.arguments: dict[str, Any] = {}


class ProcessPoolTaskRunner(TaskRunner):
    """Run task runs in up to ``max_workers`` worker processes (default: the number of CPUs).

    Tasks, arguments and results travel with cloudpickle; workers are started with ``spawn`` (never a
    fork of a process whose threads may hold locks). Upstream futures are resolved in the flow's
    process, so a worker receives plain values. Logs from a worker go to the flow run's logs.
    """

    def __init__(self, max_workers: int | None = None) -> None:
        if max_workers is not None and (
            isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1
        ):
            raise ValueError(f"max_workers must be an integer ≥ 1, got {max_workers!r}")
        self.max_workers = max_workers
        self._processes: cf.ProcessPoolExecutor | None = None
        self._dispatch: cf.ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def duplicate(self) -> ProcessPoolTaskRunner:
        return ProcessPoolTaskRunner(self.max_workers)

    def __reduce__(self) -> tuple[Any, ...]:  # options only: a flow (and its runner) may be pickled
        return (ProcessPoolTaskRunner, (self.max_workers,))

    def _pools(self) -> tuple[cf.ProcessPoolExecutor, cf.ThreadPoolExecutor]:
        with self._lock:
            if self._processes is None or self._dispatch is None:
                workers = self.max_workers or multiprocessing.cpu_count()
                self._processes = cf.ProcessPoolExecutor(
                    workers, mp_context=multiprocessing.get_context("spawn")
                )
                # One dispatcher thread per in-flight run: it waits for upstreams, then for the worker.
                self._dispatch = cf.ThreadPoolExecutor(
                    workers * 4, thread_name_prefix="tideflow-task-dispatch"
                )
            return self._processes, self._dispatch

    def submit(
        self, task: Any, run: TaskRun, args: tuple[Any, ...], kwargs: dict[str, Any], bound: Any,
        wait_for: Any = (),
    ) -> TaskFuture[Any]:  # fmt: skip
        processes, dispatch = self._pools()
        flow_ctx = current_run()
        portable_ctx = _portable(flow_ctx)

        def dispatch_one() -> Any:
            call_args, call_kwargs = wait_for_inputs(run, args, kwargs, bound, wait_for)
            payload = cloudpickle.dumps((task, run, call_args, call_kwargs, portable_ctx))
            ok, value, finished = cloudpickle.loads(
                processes.submit(_process_entry, payload).result()
            )
            run.adopt(finished)  # the worker's states become this run's (and are reported)
            if not ok:
                raise value
            return value

        return TaskFuture(run, dispatch.submit(dispatch_one))

    def shutdown(self, wait: bool = True) -> None:
        with self._lock:
            processes, self._processes = self._processes, None
            dispatch, self._dispatch = self._dispatch, None
        if dispatch is not None:
            dispatch.shutdown(wait=wait, cancel_futures=not wait)
        if processes is not None:
            processes.shutdown(wait=wait, cancel_futures=not wait)

    def __repr__(self) -> str:
        return f"ProcessPoolTaskRunner(max_workers={self.max_workers})"


def _portable(ctx: Any) -> Any:
    """The flow run's context without what cannot cross a process (client, loop, task runner)."""
    if ctx is None:
        return None
    return replace(ctx, client=None, client_loop=None, task_runner=None, task_counters={})
