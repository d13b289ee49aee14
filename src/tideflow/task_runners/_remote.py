"""Running a task run in another process (a process pool's worker, a Dask worker): the payload that
travels, what runs there, and the dispatch every remote runner shares.

The flow's process waits for the run's upstreams and resolves them (a worker receives plain values),
ships ``(task, run, args, kwargs, flow context)`` with cloudpickle, and adopts the states the worker
moved the run through, reporting them itself (docs/adr/0002).
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import threading
from collections.abc import Callable
from dataclasses import replace
from multiprocessing.util import Finalize
from typing import Any

import cloudpickle

from tideflow.engine.context import FlowRunContext, current_run, run_context_var
from tideflow.engine.log_worker import flush_all
from tideflow.engine.logging import configure_run_logging
from tideflow.engine.task_runs import TaskRun, run_task_async, run_task_sync, wait_for_inputs
from tideflow.futures import TaskFuture

__all__ = ["RemoteDispatch", "run_in_thread", "run_payload"]


def run_in_thread(
    task: Any, run: TaskRun, args: tuple[Any, ...], kwargs: dict[str, Any], bound: Any,
    wait_for: Any,
) -> Any:  # fmt: skip
    """Run one task run to its end in the calling thread (an event loop of its own for async)."""
    if task.isasync:
        return asyncio.run(run_task_async(task, run, args, kwargs, bound, wait_for))
    return run_task_sync(task, run, args, kwargs, bound, wait_for)


class _Resolved:
    """The little of ``inspect.BoundArguments`` the engine reads, for arguments already resolved."""

    __slots__ = ("args", "arguments", "kwargs")

    def __init__(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self.args = args
        self.kwargs = kwargs
        self.arguments: dict[str, Any] = {}


def run_payload(payload: bytes) -> bytes:
    """In a worker: run one task run with the flow run's context; answer (ok, value|error, run)."""
    task, run, args, kwargs, flow_ctx = cloudpickle.loads(payload)
    if isinstance(flow_ctx, FlowRunContext):
        configure_run_logging(flow_ctx.settings.logging_level)
    token = run_context_var.set(flow_ctx)
    try:
        try:
            value = run_in_thread(task, run, args, kwargs, _Resolved(args, kwargs), ())
            outcome: tuple[Any, ...] = (True, value, run)
        except Exception as exc:
            outcome = (False, exc, run)
        _flush_at_exit()
        try:
            return bytes(cloudpickle.dumps(outcome))
        except Exception as exc:  # a value that cannot travel back is the task's failure
            message = f"the result of task run {run.name!r} cannot be pickled: {exc}"
            return bytes(cloudpickle.dumps((False, TypeError(message), run)))
    finally:
        run_context_var.reset(token)


_finalizer: Finalize | None = None


def _flush_at_exit() -> None:
    """In a worker process: send what is buffered (logs, events) when the worker exits.

    Flushing after every task run would cost each one a round trip; the senders' threads send within
    a batch interval anyway. multiprocessing workers skip atexit when forked, so a Finalize it is.
    """
    global _finalizer
    if _finalizer is None:
        _finalizer = Finalize(None, flush_all, exitpriority=100)


def _portable(ctx: FlowRunContext | None) -> FlowRunContext | None:
    """The flow run's context without what cannot cross a process (client, loop, task runner)."""
    if ctx is None:
        return None
    return replace(
        ctx, client=None, client_loop=None, task_runner=None, task_counters={}, api_logs=0
    )


class RemoteDispatch:
    """Dispatcher threads in the flow's process, one per run in flight: each waits for its run's
    upstreams, sends the payload with ``remote(payload) -> result bytes`` (blocking) and adopts it."""

    def __init__(self, threads: int, remote: Callable[[bytes], bytes]) -> None:
        self._remote = remote
        self._pool = cf.ThreadPoolExecutor(threads, thread_name_prefix="tideflow-task-dispatch")
        self._lock = threading.Lock()

    def submit(
        self, task: Any, run: TaskRun, args: tuple[Any, ...], kwargs: dict[str, Any], bound: Any,
        wait_for: Any,
    ) -> TaskFuture[Any]:  # fmt: skip
        context = _portable(current_run())

        def dispatch_one() -> Any:
            call_args, call_kwargs = wait_for_inputs(run, args, kwargs, bound, wait_for)
            payload = cloudpickle.dumps((task, run, call_args, call_kwargs, context))
            ok, value, finished = cloudpickle.loads(self._remote(payload))
            run.adopt(finished)  # the worker's states become this run's (and are reported)
            if not ok:
                raise value
            return value

        return TaskFuture(run, self._pool.submit(dispatch_one))

    def shutdown(self, wait: bool) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=not wait)
