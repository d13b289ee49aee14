"""Background task runs from the caller's side: ``Task.delay`` enqueues a run on the server (state
Scheduled, for a task worker to pick up, ADR 0005) from any process, with or without a flow run, and
answers a ``BackgroundTaskFuture`` that reads the run's state and, once Completed, its stored result.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import threading
import time
from collections.abc import Callable
from typing import Any, Generic, TypeVar
from uuid import UUID, uuid4

from tideflow.client import SyncClient
from tideflow.engine.task_runs import run_name
from tideflow.exceptions import TaskRunFailed
from tideflow.results import ResultStore
from tideflow.schemas import State, StateType
from tideflow.schemas.task_runs import TaskRun
from tideflow.schemas.task_workers import TaskRunCreate
from tideflow.settings import get_settings

__all__ = ["BackgroundTaskFuture", "delay"]

R = TypeVar("R")

_POLL_START = 0.05  # seconds between reads of a waited-for run, doubling up to _POLL_MAX
_POLL_MAX = 1.0

_clients: dict[str | None, SyncClient] = {}
_lock = threading.Lock()


def _client() -> SyncClient:
    # One client per configured API for the process: a web app delays on every request, and a
    # fresh client each time would pay a connection (and a local-server probe) every time.
    key = get_settings().api_url
    client = _clients.get(key)
    if client is None:
        with _lock:
            client = _clients.get(key)
            if client is None:
                client = _clients[key] = SyncClient()
    return client


@atexit.register
def _close_clients() -> None:
    for client in _clients.values():
        client.close()
    _clients.clear()


def _checked_parameters(task_name: str, parameters: dict[str, Any]) -> dict[str, Any]:
    """The parameters as they will reach the worker; TypeError naming the first that JSON cannot hold."""
    out: dict[str, Any] = {}
    for name, value in parameters.items():
        try:
            out[name] = json.loads(json.dumps(value, allow_nan=False))
        except (TypeError, ValueError, RecursionError) as exc:
            raise TypeError(
                f"task {task_name!r}: parameter {name!r} ({type(value).__name__}) cannot be sent "
                f"to a task worker: delayed task parameters must be JSON values ({exc})"
            ) from None
    return out


def delay(task: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> BackgroundTaskFuture[Any]:
    """Create a Scheduled background run of ``task`` with these arguments; its future."""
    bound = task._bind(args, kwargs)
    parameters = _checked_parameters(task.name, dict(bound.arguments))
    run_id = uuid4()
    body = TaskRunCreate(
        id=run_id,
        name=run_name(task, parameters) or f"{task.name}-{run_id.hex[:8]}",
        task_name=task.name,
        tags=list(task.tags),
        parameters=parameters,
    )
    client = _client()
    client.create_task_run(body)  # idempotent by id: the client's retry of a lost answer is safe
    return BackgroundTaskFuture(run_id, task.name, client)


class BackgroundTaskFuture(Generic[R]):
    """The promise of a background task run's result, read from the server.

    ``.state`` reads the run's state now; ``.wait(timeout)`` blocks until it is final (or the timeout
    passes); ``.result(timeout)`` waits, then returns the value the worker stored, or raises
    ``TaskRunFailed`` when the run did not complete and ``TimeoutError`` when it is not final in time.
    Async code awaits ``.wait_async()`` and ``.result_async()``; ``.cancel()`` cancels the run.
    """

    def __init__(self, task_run_id: UUID, task_name: str, client: SyncClient) -> None:
        self.task_run_id = task_run_id
        self.task_name = task_name
        self._client = client
        self._final: TaskRun | None = None

    def _read(self) -> TaskRun:
        if self._final is not None:
            return self._final
        run = self._client.read_task_run(self.task_run_id)
        if run.state is not None and run.state.is_final:
            self._final = run
        return run

    @property
    def task_run(self) -> TaskRun:
        """The task run as the server has it now."""
        return self._read()

    @property
    def state(self) -> State:
        state = self._read().state
        assert state is not None  # a background run is created Scheduled
        return state

    def done(self) -> bool:
        return self.state.is_final

    def cancel(self) -> State:
        """Cancel the run (it never starts, or its worker stops it); answers its state after."""
        run = self._client.cancel_task_run(self.task_run_id)
        assert run.state is not None
        return run.state

    def wait(self, timeout: float | None = None) -> None:
        """Block until the run is final, or ``timeout`` seconds passed (then return anyway)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        pause = _POLL_START
        while not self.done():
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return
            time.sleep(pause if left is None else min(pause, left))
            pause = min(pause * 2, _POLL_MAX)

    async def wait_async(self, timeout: float | None = None) -> None:
        """``wait`` for async code: the event loop keeps running while the run is read."""
        deadline = None if timeout is None else time.monotonic() + timeout
        pause = _POLL_START
        while not await asyncio.to_thread(self.done):
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return
            await asyncio.sleep(pause if left is None else min(pause, left))
            pause = min(pause * 2, _POLL_MAX)

    def result(self, timeout: float | None = None, raise_on_failure: bool = True) -> R:
        """The run's value once Completed (read from its result storage).

        Raises ``TaskRunFailed`` when the run did not complete (returned instead with
        ``raise_on_failure=False``) and ``TimeoutError`` when it is not final within ``timeout``.
        """
        self.wait(timeout)
        return self._value(timeout, raise_on_failure)

    async def result_async(self, timeout: float | None = None, raise_on_failure: bool = True) -> R:
        """``result`` for async code: ``await future.result_async()``."""
        await self.wait_async(timeout)
        return await asyncio.to_thread(self._value, timeout, raise_on_failure)

    def add_done_callback(self, fn: Callable[[BackgroundTaskFuture[R]], Any]) -> None:
        """Call ``fn(future)`` from a helper thread once the run is final."""

        def watch() -> None:
            self.wait()
            fn(self)

        threading.Thread(target=watch, name="tideflow-delay-callback", daemon=True).start()

    def _value(self, timeout: float | None, raise_on_failure: bool) -> R:
        run = self._read()
        state = run.state
        assert state is not None
        if not state.is_final:
            raise TimeoutError(
                f"task run {run.name!r} ({run.id}) is still {state.name} after {timeout:g} s"
            )
        error: TaskRunFailed | None = None
        if state.type is not StateType.COMPLETED:
            detail = f": {state.message}" if state.message else ""
            error = TaskRunFailed(f"task run {run.name!r} ({run.id}) ended {state.name}{detail}")
        elif run.result_location is None:
            error = TaskRunFailed(
                f"task run {run.name!r} ({run.id}) completed without a stored result"
            )
        record = None
        if error is None:
            assert run.result_location is not None
            folder, _, key = run.result_location.rpartition("/")
            record = ResultStore(folder).read(key)
            if record is None:
                error = TaskRunFailed(
                    f"the result of task run {run.name!r} is not readable at "
                    f"{run.result_location} (the worker's result storage must be reachable from "
                    "here: TIDEFLOW_RESULTS_STORAGE)"
                )
        if error is not None:
            if raise_on_failure:
                raise error
            return error  # type: ignore[return-value]
        assert record is not None
        value: R = record.value
        return value

    def __repr__(self) -> str:
        return f"BackgroundTaskFuture(task={self.task_name!r}, task_run_id={self.task_run_id})"
