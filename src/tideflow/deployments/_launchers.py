"""Starting each flow run in its own process: forked from the serving process (POSIX) or a fresh
interpreter.

``ForkLauncher`` forks each run straight from the runner: the child already holds the imported user
module, its flows and the API client, so a run starts in a millisecond or two instead of the hundreds
a cold ``python`` with the user's imports costs. There is no pre-forked helper process: an idle
``serve()`` is one process, and a running one is the runner plus one process per run (a resident
zygote would add a third copy of the same heap to the tree's RSS). The child puts itself in its own
process group (so cancelling can signal the whole group and a terminal's Ctrl-C does not reach it),
drops the runner's signal handling, freezes the inherited objects out of the garbage collector (its
collections then do not write to, and so do not copy, the pages it shares with the runner), runs the
flow run through the engine and ``_exit``s with its status. Exits are reaped on SIGCHLD. A pipe
whose only write end the runner holds tells every child when the runner is gone (even SIGKILLed):
the child then SIGTERMs its group, so no run outlives its runner.

``SpawnLauncher`` is the fallback where ``os.fork`` does not exist: each run is a fresh
``python -m tideflow.deployments._child ENTRYPOINT RUN_ID`` in a new session.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import gc
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Sequence
from typing import Any, NoReturn
from uuid import UUID

from tideflow.client._events import spool_unsent_events
from tideflow.engine.cancellation import install_cancellation_hooks
from tideflow.engine.clients import sync_client
from tideflow.engine.existing import execute_flow_run
from tideflow.engine.log_worker import log_worker
from tideflow.schemas import FlowRun
from tideflow.settings import Settings

__all__ = ["EXIT_CHILD_ERROR", "ExitCallback", "ForkLauncher", "InlineExecutor", "SpawnLauncher"]

ExitCallback = Callable[[UUID, int], None]
"""Called with (flow run id, exit code) when a run's process ended; a negative code is a signal."""

EXIT_CHILD_ERROR = 70  # the child failed before or outside the engine (EX_SOFTWARE)

# Held blocked across fork(): until the child has reset its handlers, one of these would run the
# runner's handler in the child (or write to the runner's event-loop wakeup fd).
_FORK_BLOCKED = {signal.SIGINT, signal.SIGTERM, signal.SIGCHLD}


def _signal_groups(pids: Sequence[int], signum: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signum)


def _watch_runner(fd: int) -> None:
    """In the child: block until the runner's end of the lifeline closes, then end this run."""
    with contextlib.suppress(OSError):
        while os.read(fd, 1):
            pass
    _signal_groups([os.getpid()], signal.SIGTERM)


def _child_main(
    lifeline: tuple[int, int], flow: Any, run_id: UUID, run: FlowRun | None, settings: Settings
) -> NoReturn:
    """In the forked child: own process group, default signals, run the flow run, exit."""
    code = EXIT_CHILD_ERROR
    try:
        gc.freeze()  # inherited objects are never collected here: their pages stay shared
        with contextlib.suppress(OSError):
            os.setpgid(0, 0)
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        install_cancellation_hooks(flow, run_id, settings)  # SIGTERM: default, or hooks first
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _FORK_BLOCKED)
        os.close(lifeline[1])
        threading.Thread(target=_watch_runner, args=(lifeline[0],), daemon=True).start()
        code = execute_flow_run(flow, run_id, settings, run)
    except BaseException:
        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            spool_unsent_events()  # os._exit skips atexit: events the server never took are kept
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
    os._exit(code)


class InlineExecutor(concurrent.futures.ThreadPoolExecutor):
    """An event loop's default executor that runs each call at once, in the loop's thread (a
    ThreadPoolExecutor only because asyncio accepts nothing else; it never starts a thread).

    The runner forks run processes, and a fork must not happen while another thread may hold a
    lock the child needs (e.g. inside ``getaddrinfo``, which asyncio runs in its default executor's
    threads): with this executor the runner has no other thread. The cost: a DNS lookup (only when
    a new connection opens) blocks the loop for its duration.
    """

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> concurrent.futures.Future[Any]:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:
            future.set_exception(exc)
        return future


class ForkLauncher:
    """Starts each run as a fork of this (the runner's) process and reports its exit."""

    def __init__(self, flows: Sequence[Any], settings: Settings) -> None:
        """``settings`` (with the API URL resolved) are what every run uses.

        The process's API client and run-log sender's client are built here, before any run, so each
        run inherits them instead of paying tens of ms for each one's TLS context (the log sender's
        after the run's final state, which kept each run's process alive that much longer).
        """
        self.flows = list(flows)
        self.settings = settings
        api_url = sync_client(settings).api_url
        log_worker(
            api_url, interval=settings.logs_batch_interval, max_buffer=settings.logs_max_buffer
        ).prepare()
        self._children: dict[int, UUID] = {}
        self._on_exit: ExitCallback | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lifeline: tuple[int, int] | None = None

    async def open(
        self, on_exit: ExitCallback, on_lost: Callable[[str], None] | None = None
    ) -> None:
        """Attach to the running event loop; ``on_exit`` hears about every run's end."""
        self._on_exit = on_exit
        self._loop = asyncio.get_running_loop()
        self._lifeline = os.pipe()
        self._loop.add_signal_handler(signal.SIGCHLD, self._reap)

    async def start(self, index: int, run_id: UUID, run: FlowRun | None = None) -> int:
        """Start flow ``index`` for run ``run_id`` in a new process; its pid (= process group)."""
        assert self._lifeline is not None, "open() first"
        flow = self.flows[index]
        old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, _FORK_BLOCKED)
        try:
            pid = os.fork()
            if pid == 0:
                _child_main(self._lifeline, flow, run_id, run, self.settings)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
        with contextlib.suppress(OSError):  # also set here: the runner may signal at once
            os.setpgid(pid, pid)
        self._children[pid] = run_id
        return pid

    def _reap(self) -> None:
        for pid in list(self._children):
            try:
                done, status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:  # reaped elsewhere: its status is lost
                done, status = pid, 255 << 8
            if done == 0:
                continue
            run_id = self._children.pop(pid)
            if self._on_exit is not None:
                self._on_exit(run_id, os.waitstatus_to_exitcode(status))

    async def close(self) -> None:
        """Stop reaping; any run still running (the runner already tried to drain) is SIGTERMed."""
        if self._loop is not None:
            self._loop.remove_signal_handler(signal.SIGCHLD)
        self.close_sync()

    def close_sync(self) -> None:
        """Close without an event loop (serve() failed before or after running one)."""
        _signal_groups(list(self._children), signal.SIGTERM)
        for pid in list(self._children):
            with contextlib.suppress(ChildProcessError):
                if os.waitpid(pid, os.WNOHANG)[0]:
                    del self._children[pid]
        if self._lifeline is not None:
            for fd in self._lifeline:
                with contextlib.suppress(OSError):
                    os.close(fd)
            self._lifeline = None


class SpawnLauncher:
    """Each run in a fresh interpreter (``python -m tideflow.deployments._child``): no fork needed."""

    def __init__(self, entrypoints: Sequence[str | None], settings: Settings) -> None:
        self.entrypoints = list(entrypoints)
        self.env = {**os.environ, "TIDEFLOW_API_URL": settings.resolved_api_url}
        self._on_exit: ExitCallback | None = None
        self._waits: set[asyncio.Task[None]] = set()

    async def open(
        self, on_exit: ExitCallback, on_lost: Callable[[str], None] | None = None
    ) -> None:
        self._on_exit = on_exit

    async def start(self, index: int, run_id: UUID, run: FlowRun | None = None) -> int:
        entrypoint = self.entrypoints[index]
        if entrypoint is None:
            raise RuntimeError(
                "the flow has no importable entrypoint (it is not defined in a file)"
            )
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tideflow.deployments._child", entrypoint, str(run_id),
            start_new_session=True, env=self.env,
        )  # fmt: skip
        task = asyncio.create_task(self._wait(proc, run_id))
        self._waits.add(task)
        task.add_done_callback(self._waits.discard)
        return proc.pid

    async def _wait(self, proc: asyncio.subprocess.Process, run_id: UUID) -> None:
        code = await proc.wait()
        if self._on_exit is not None:
            self._on_exit(run_id, code)

    async def close(self) -> None:
        for task in list(self._waits):
            task.cancel()
        await asyncio.gather(*self._waits, return_exceptions=True)

    def close_sync(self) -> None:
        pass
