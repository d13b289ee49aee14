"""Task workers: ``serve(*tasks)`` (or ``tideflow task serve module:task``) runs the background task
runs that ``Task.delay`` enqueued (ADR 0005).

A worker keeps one websocket to ``/api/task_workers/ws``: it says hello with the names of its tasks,
is offered their Scheduled runs (the backlog on connect, then each new or handed-back run as it
happens), claims one at a time while it has a free slot (``limit``, default 10, threads), and runs
each claimed run with the task engine (retries, timeout, hooks; its result persisted so the caller's
future can read it). Heartbeats name the runs in hand; a worker that dies has them handed back.
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import ctypes
import importlib
import inspect
import itertools
import json
import os
import signal
import socket
import sys
import threading
from typing import Any
from uuid import UUID, uuid4

from tideflow.cache_policies import RUN_ID
from tideflow.client import resolve_api_url
from tideflow.client._auth import auth_headers
from tideflow.deployments._child import load_entrypoint
from tideflow.engine.errors import TaskRunCancelled
from tideflow.engine.log_worker import flush_all
from tideflow.engine.logging import configure_run_logging, install_print_capture
from tideflow.engine.task_reporter import task_run_reporter
from tideflow.engine.task_runs import TaskRun as EngineTaskRun
from tideflow.engine.task_runs import run_task_async, run_task_sync
from tideflow.schemas import states as S
from tideflow.schemas.task_runs import TaskRun
from tideflow.schemas.task_workers import TaskRunClaimResult
from tideflow.settings import Settings, get_settings
from tideflow.tasks import Task

__all__ = ["TaskWorker", "load_task", "serve"]

_BACKOFF_START = 0.1
_BACKOFF_MAX = 5.0
_CLAIM_TIMEOUT = 30.0


def _say(message: str, *, err: bool = False) -> None:
    print(message, file=sys.stderr if err else sys.stdout, flush=True)


def load_task(entry: str) -> Task[Any, Any]:
    """The task named by ``path/to/file.py:name`` or ``package.module:name``; ValueError naming
    what is wrong."""
    module_name, sep, attr = entry.rpartition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"{entry!r} must be 'path/to/file.py:name' or 'module:name'")
    if module_name.endswith(".py") or "/" in module_name or os.sep in module_name:
        obj = load_entrypoint(entry)
    else:
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise ValueError(f"cannot import module {module_name!r}: {exc}") from None
        try:
            obj = getattr(module, attr)
        except AttributeError:
            raise ValueError(f"module {module_name!r} has no attribute {attr!r}") from None
    if not isinstance(obj, Task):
        raise ValueError(f"{entry} is not a task (decorate the function with @task)")
    return obj


def _background(task: Task[Any, Any]) -> Task[Any, Any]:
    """The task as a worker runs it: its result always persisted, for the caller's future."""
    if task.cache_policy is None:
        # RUN_ID outside a flow run keys on the task run's id: each run stores its result under its
        # own key and no other run reuses it (two delays with the same arguments both run).
        return task.with_options(persist_result=True, cache_policy=RUN_ID)
    return task.with_options(persist_result=True)


class TaskWorker:
    """Runs the background task runs of ``tasks``; ``run()`` until ``stop()``."""

    def __init__(
        self, *tasks: Task[Any, Any], limit: int = 10, settings: Settings | None = None
    ) -> None:
        if not tasks:
            raise ValueError("a task worker needs at least one task")
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ValueError(f"limit must be a whole number ≥ 1, got {limit!r}")
        self.tasks: dict[str, Task[Any, Any]] = {}
        for task in tasks:
            if not isinstance(task, Task):
                raise TypeError(f"a task worker serves tasks made with @task, got {task!r}")
            if task.name in self.tasks:
                raise ValueError(f"two tasks are named {task.name!r}: a worker tells them by name")
            self.tasks[task.name] = _background(task)
        self.limit = limit
        self.settings = settings or get_settings()
        self.worker_id = uuid4()
        self.name = f"{socket.gethostname()}-{os.getpid()}"
        self.stopping = asyncio.Event()
        self._offers: dict[UUID, TaskRun] = {}  # oldest offer first; a newer offer of a run wins
        self._offered = asyncio.Event()
        self._running: set[UUID] = set()
        self._executions: set[asyncio.Task[None]] = set()
        self._claims: dict[int, asyncio.Future[TaskRunClaimResult]] = {}
        self._claim_ids = itertools.count(1)
        self._slots = asyncio.Semaphore(limit)
        self._pool = cf.ThreadPoolExecutor(limit, thread_name_prefix="tideflow-task-worker")
        self._api_url = ""
        # Cancelling (ADR 0005): runs asked to stop, and the thread running each run in hand.
        self._cancelled: set[UUID] = set()
        self._threads: dict[UUID, int] = {}
        self._threads_lock = threading.Lock()

    # ------------------------------------------------------------------ lifecycle

    async def run(self) -> None:
        """Serve until ``stop()``; then let the runs in hand finish and say goodbye."""
        self._api_url = resolve_api_url(self.settings)
        # Runs' logs (get_run_logger, log_prints) go to the console and to their task run's logs.
        configure_run_logging(self.settings.logging_level)
        if any(t.log_prints for t in self.tasks.values()):
            install_print_capture()
        names = ", ".join(sorted(self.tasks))
        _say(f"Task worker {self.name} serving {names} (limit {self.limit}); Ctrl-C stops it")
        connection = asyncio.create_task(self._ws_loop())
        try:
            await self.stopping.wait()
            if self._executions:
                _say(f"Stopping: waiting for {len(self._executions)} running task run(s)")
                await asyncio.gather(*self._executions, return_exceptions=True)
            await asyncio.to_thread(flush_all)
            await self._say_goodbye()
        finally:
            connection.cancel()
            await asyncio.gather(connection, return_exceptions=True)
            self._pool.shutdown(wait=False)

    def stop(self) -> None:
        """First call: claim nothing more and finish the runs in hand. Second: exit now (the
        server hands the unfinished runs back to other workers)."""
        if self.stopping.is_set():
            _say("Stopping now: the unfinished task runs go back to the server", err=True)
            os._exit(130)
        self.stopping.set()
        self._offered.set()

    # ------------------------------------------------------------------ the websocket

    def _ws_url(self) -> str:
        scheme, rest = self._api_url.split("://", 1)
        return f"{'wss' if scheme == 'https' else 'ws'}://{rest}/task_workers/ws"

    async def _ws_loop(self) -> None:
        # websockets loads in ~30 ms; only a serving process needs it, so `import tideflow` skips it.
        from websockets.asyncio.client import connect
        from websockets.exceptions import WebSocketException

        self._socket: Any = None
        backoff = _BACKOFF_START
        warned = False  # one line per outage, not one per attempt
        while True:
            try:
                async with connect(
                    self._ws_url(),
                    open_timeout=10,
                    max_size=None,
                    additional_headers=auth_headers(self.settings),
                ) as ws:
                    if warned:
                        _say(f"Connected again to {self._api_url}")
                    warned = False
                    await self._session(ws)
                    backoff = _BACKOFF_START
            except (OSError, WebSocketException, TimeoutError, ValueError) as exc:
                if not warned:
                    why = str(exc) if isinstance(exc, ValueError) else type(exc).__name__
                    _say(f"Lost the connection to {self._api_url} ({why}); reconnecting", err=True)
                    warned = True
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, _BACKOFF_MAX)

    async def _session(self, ws: Any) -> None:
        hello = {
            "type": "hello",
            "worker_id": str(self.worker_id),
            "name": self.name,
            "task_keys": sorted(self.tasks),
        }
        await ws.send(json.dumps(hello))
        welcome = json.loads(await ws.recv())
        if welcome.get("type") != "welcome":
            raise ValueError(f"the server refused the task worker: {welcome.get('detail')}")
        interval = float(welcome.get("heartbeat_interval") or 5.0)
        self._socket = ws
        helpers = [
            asyncio.create_task(self._heartbeats(ws, interval)),
            asyncio.create_task(self._claim_loop(ws)),
        ]
        try:
            async for raw in ws:
                self._on_message(json.loads(raw))
        finally:
            self._socket = None
            for future in self._claims.values():
                if not future.done():
                    future.set_exception(ConnectionError("the task worker websocket closed"))
            self._claims.clear()
            for helper in helpers:
                helper.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)

    def _on_message(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "task_run":
            run = TaskRun.model_validate(message["task_run"])
            if run.id not in self._running and run.task_name in self.tasks:
                self._offers[run.id] = run
                self._offered.set()
        elif kind == "claimed":
            future = self._claims.pop(int(message["id"]), None)
            if future is not None and not future.done():
                future.set_result(TaskRunClaimResult.model_validate(message["result"]))
        elif kind == "cancel":
            self._cancel(UUID(str(message["task_run_id"])))
        elif kind == "error":
            _say(f"The server says: {message.get('detail')}", err=True)

    def _cancel(self, run_id: UUID) -> None:
        """Stop a run: drop its offer, or raise TaskRunCancelled in the thread running it (at its
        next Python instruction: a blocking call in progress finishes first)."""
        self._offers.pop(run_id, None)
        with self._threads_lock:
            self._cancelled.add(run_id)
            ident = self._threads.get(run_id)
            if ident is not None:
                ctypes.pythonapi.PyThreadState_SetAsyncExc(
                    ctypes.c_ulong(ident), ctypes.py_object(TaskRunCancelled)
                )

    async def _heartbeats(self, ws: Any, interval: float) -> None:
        while True:
            running = [str(r) for r in self._running]
            await ws.send(json.dumps({"type": "heartbeat", "running": running}))
            await asyncio.sleep(interval)

    async def _say_goodbye(self) -> None:
        ws = self._socket
        if ws is not None:
            try:
                await asyncio.wait_for(ws.send(json.dumps({"type": "goodbye"})), 2.0)
            except Exception:  # gone already: the server hands back nothing, as nothing is held
                pass

    # ------------------------------------------------------------------ claims

    async def _next_offer(self) -> TaskRun | None:
        while not self._offers:
            if self.stopping.is_set():
                return None
            self._offered.clear()
            await self._offered.wait()
        if self.stopping.is_set():
            return None
        run_id = next(iter(self._offers))
        return self._offers.pop(run_id)

    async def _claim_loop(self, ws: Any) -> None:
        """One claim at a time, only with a free slot: a busy worker leaves runs to the others."""
        while True:
            await self._slots.acquire()
            started = False
            try:
                run = await self._next_offer()
                if run is None:
                    return
                assert run.state is not None
                claim_id = next(self._claim_ids)
                future: asyncio.Future[TaskRunClaimResult] = (
                    asyncio.get_running_loop().create_future()
                )
                self._claims[claim_id] = future
                frame = {
                    "type": "claim",
                    "id": claim_id,
                    "task_run_id": str(run.id),
                    "expected_state_id": str(run.state.id),
                }
                await ws.send(json.dumps(frame))
                result = await asyncio.wait_for(future, _CLAIM_TIMEOUT)
                if result.claimed and result.task_run is not None:
                    self._start(result.task_run)
                    started = True
            finally:
                if not started:
                    self._slots.release()

    def _start(self, run: TaskRun) -> None:
        self._running.add(run.id)
        execution = asyncio.create_task(self._execute(run))
        self._executions.add(execution)
        execution.add_done_callback(self._executions.discard)

    async def _execute(self, run: TaskRun) -> None:
        try:
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(self._pool, self._run_sync, run)
        finally:
            self._running.discard(run.id)
            self._slots.release()

    # ------------------------------------------------------------------ running one (a thread)

    def _run_sync(self, stored: TaskRun) -> None:
        task = self.tasks[stored.task_name]
        assert stored.state is not None
        run = EngineTaskRun(
            id=stored.id,
            name=stored.name,
            task_name=stored.task_name,
            flow_run_id=None,
            parameters=dict(stored.parameters),
            tags=list(stored.tags),
            state=stored.state,
            run_count=stored.run_count,
            history=list(stored.state_history),
        )
        s = self.settings
        run.reporter = task_run_reporter(
            self._api_url, interval=s.logs_batch_interval, max_buffer=s.logs_max_buffer
        )
        ident = threading.get_ident()
        try:
            with self._threads_lock:
                if run.id in self._cancelled:
                    raise TaskRunCancelled
                self._threads[run.id] = ident
            _say(f"Task run {run.name!r} ({run.id}) of {task.name!r}: started")
            bound = inspect.BoundArguments(task._signature, dict(stored.parameters))
            args, kwargs = tuple(bound.args), dict(bound.kwargs)
            bound = task._bind(args, kwargs)
            if task.isasync:
                asyncio.run(run_task_async(task, run, args, kwargs, bound))
            else:
                run_task_sync(task, run, args, kwargs, bound)
        except TaskRunCancelled:
            if not run.state.is_final:  # cancelled before the engine took it
                run.set_state(S.Cancelled(message="Cancelled before it started"))
        except Exception as exc:
            if not run.state.is_final:  # it never started (bad parameters): say so on the server
                run.set_state(S.Failed(message=f"{type(exc).__name__}: {exc}"))
        finally:
            with self._threads_lock:
                if self._threads.pop(run.id, None) is not None and run.id in self._cancelled:
                    # a cancel that arrived as the run ended must not hit this pool thread later
                    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), None)
                self._cancelled.discard(run.id)
            run.reporter.flush()
        state = run.state
        detail = f": {state.message}" if state.message and not state.is_completed() else ""
        _say(f"Task run {run.name!r} ({run.id}) of {task.name!r}: {state.name}{detail}")


async def _serve(worker: TaskWorker) -> None:
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, worker.stop)
    try:
        await worker.run()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


def serve(*tasks: Task[Any, Any], limit: int = 10, settings: Settings | None = None) -> None:
    """Run a task worker for ``tasks`` until Ctrl-C or SIGTERM (then the runs in hand finish; a
    second signal exits at once and the server hands them to other workers).

    ``limit`` caps how many task runs execute at once (threads). Their runs come from
    ``task.delay(...)`` in any process.
    """
    worker = TaskWorker(*tasks, limit=limit, settings=settings)
    asyncio.run(_serve(worker))
