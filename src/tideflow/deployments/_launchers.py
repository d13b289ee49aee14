"""Starting each flow run in its own process: a pre-forked zygote (POSIX) or a fresh interpreter.

``Zygote.fork(flows)`` runs BEFORE serve() starts any thread or event loop: it forks a small process
that already holds the imported user module and its flows. Over a socketpair the runner asks it to
start a run (``{"op": "start", "run_id", "index"}``); the zygote forks a child that puts itself in its
own process group (so cancelling can signal the whole group and a terminal's Ctrl-C does not reach
it), runs the flow run through the engine and ``_exit``s with its status. The zygote answers
``{"type": "started", "run_id", "pid"}`` and, when it reaps the child, ``{"type": "exited", "run_id",
"pid", "code"}`` (``code`` < 0: killed by that signal). Forking a warm process costs a millisecond or
two; a cold ``python`` start with the user's imports costs hundreds.

``SpawnLauncher`` is the fallback where ``os.fork`` does not exist: each run is a fresh
``python -m tideflow.deployments._child ENTRYPOINT RUN_ID`` in a new session.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import select
import signal
import socket
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import Any, NoReturn
from uuid import UUID

from tideflow.engine.clients import sync_client
from tideflow.engine.existing import execute_flow_run
from tideflow.schemas import FlowRun
from tideflow.settings import Settings

__all__ = ["EXIT_CHILD_ERROR", "ExitCallback", "SpawnLauncher", "Zygote"]

ExitCallback = Callable[[UUID, int], None]
"""Called with (flow run id, exit code) when a run's process ended; a negative code is a signal."""

EXIT_CHILD_ERROR = 70  # the child failed before or outside the engine (EX_SOFTWARE)


def _send(sock: socket.socket, message: dict[str, Any]) -> None:
    sock.sendall(json.dumps(message).encode() + b"\n")


def _signal_groups(pids: Sequence[int], signum: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signum)


def _child_main(
    sock: socket.socket,
    wakeup: tuple[int, int],
    flow: Any,
    request: dict[str, Any],
    settings: Settings,
) -> NoReturn:
    """In the forked child: own process group, default signals, run the flow run, exit."""
    code = EXIT_CHILD_ERROR
    try:
        with contextlib.suppress(OSError):
            os.setpgid(0, 0)
        sock.close()
        signal.set_wakeup_fd(-1)
        for fd in wakeup:
            os.close(fd)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        run = FlowRun.model_validate(request["flow_run"]) if request.get("flow_run") else None
        code = execute_flow_run(flow, UUID(request["run_id"]), settings, run)
    except BaseException:
        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
    os._exit(code)


def _zygote_main(sock: socket.socket, flows: Sequence[Any], settings: Settings) -> NoReturn:
    """The zygote's loop: start children on request, report their exits, end on EOF."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # serve() decides what Ctrl-C means
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    rfd, wfd = os.pipe()
    os.set_blocking(wfd, False)
    signal.set_wakeup_fd(wfd)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # the wakeup fd does the work
    children: dict[int, str] = {}
    buffer = b""
    while True:
        ready, _, _ = select.select([sock.fileno(), rfd], [], [])
        if rfd in ready:
            os.read(rfd, 4096)
        _reap(sock, children)
        if sock.fileno() not in ready:
            continue
        data = sock.recv(65536)
        if not data:  # the runner is gone: do not leave its runs behind
            _signal_groups(list(children), signal.SIGTERM)
            os._exit(0)
        buffer += data
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            request = json.loads(line)
            run_id = str(request["run_id"])
            pid = os.fork()
            if pid == 0:
                _child_main(sock, (rfd, wfd), flows[int(request["index"])], request, settings)
            with contextlib.suppress(OSError):  # also set here: the runner may signal at once
                os.setpgid(pid, pid)
            children[pid] = run_id
            _send(sock, {"type": "started", "run_id": run_id, "pid": pid})


def _reap(sock: socket.socket, children: dict[int, str]) -> None:
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        run_id = children.pop(pid, None)
        if run_id is not None:
            code = os.waitstatus_to_exitcode(status)
            _send(sock, {"type": "exited", "run_id": run_id, "pid": pid, "code": code})


class Zygote:
    """The runner's handle on its zygote process: start runs, hear about their exits."""

    def __init__(self, pid: int, sock: socket.socket) -> None:
        self.pid = pid
        self._sock = sock
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._started: dict[str, asyncio.Future[int]] = {}
        self._on_exit: ExitCallback | None = None
        self._on_lost: Callable[[str], None] | None = None
        self._closing = False

    @classmethod
    def fork(cls, flows: Sequence[Any], settings: Settings) -> Zygote:
        """Fork the zygote now (call before any thread or event loop exists).

        ``settings`` (with the API URL resolved) are what every run uses. The process's API client
        is built here, before forking, so each run inherits it instead of paying ~80 ms for its TLS
        context at start.
        """
        sync_client(settings)
        parent, child = socket.socketpair()
        pid = os.fork()
        if pid == 0:
            parent.close()
            try:
                _zygote_main(child, flows, settings)
            finally:
                os._exit(EXIT_CHILD_ERROR)
        child.close()
        return cls(pid, parent)

    async def open(
        self, on_exit: ExitCallback, on_lost: Callable[[str], None] | None = None
    ) -> None:
        """Attach to the running event loop; ``on_exit`` hears about every run's end, ``on_lost``
        about the zygote ending while it is still needed."""
        self._on_exit = on_exit
        self._on_lost = on_lost
        reader, self._writer = await asyncio.open_connection(sock=self._sock)
        self._reader_task = asyncio.create_task(self._read(reader))

    async def _read(self, reader: asyncio.StreamReader) -> None:
        while line := await reader.readline():
            message = json.loads(line)
            run_id = message["run_id"]
            if message["type"] == "started":
                future = self._started.pop(run_id, None)
                if future is not None and not future.done():
                    future.set_result(int(message["pid"]))
            elif message["type"] == "exited" and self._on_exit is not None:
                self._on_exit(UUID(run_id), int(message["code"]))
        for future in self._started.values():
            if not future.done():
                future.set_exception(RuntimeError("the zygote process ended"))
        if not self._closing and self._on_lost is not None:
            self._on_lost(
                f"the process that starts flow runs (zygote, pid {self.pid}) ended unexpectedly"
            )

    async def start(self, index: int, run_id: UUID, run: FlowRun | None = None) -> int:
        """Start flow ``index`` for run ``run_id`` in a new process; its pid (= process group)."""
        assert self._writer is not None, "open() first"
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._started[str(run_id)] = future
        request = {
            "run_id": str(run_id),
            "index": index,
            "flow_run": run.model_dump(mode="json") if run is not None else None,
        }
        self._writer.write(json.dumps(request).encode() + b"\n")
        await self._writer.drain()
        return await future

    async def close(self) -> None:
        """End the zygote (it signals any child still running) and reap it."""
        self._closing = True
        if self._writer is not None:
            self._writer.close()
            with contextlib.suppress(Exception):
                await self._writer.wait_closed()
        else:
            self._sock.close()
        if self._reader_task is not None:
            await asyncio.gather(self._reader_task, return_exceptions=True)
        await asyncio.to_thread(_wait_pid, self.pid)

    def close_sync(self) -> None:
        """Close without an event loop (serve() failed before or after running one)."""
        self._sock.close()
        _wait_pid(self.pid)


def _wait_pid(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


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
