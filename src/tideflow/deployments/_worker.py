"""The process worker (``tideflow worker start --pool NAME``): the runner of ``serve()`` pointed at a
work pool instead of a list of deployments.

It speaks the same websocket protocol (ADR 0001): its hello names the pool (and the worker type), the
server offers it the runs of the pool's queues with their queue's priority, and it claims them with
the same batched compare-and-set, which the server also checks against the queue's and the pool's
concurrency limits and pause. Claims go over the websocket only (they need those checks): an offer
that arrives while disconnected is dropped, and offered again on reconnect. The fallback poll asks
the server for the pool's due runs on the websocket (``poll`` frame).

Each claimed run starts in a fresh process: the deployment's pull steps give the code's folder, the
job variables (pool template defaults < deployment < run) fill the pool's job configuration, and
``python -m tideflow.deployments._child ENTRYPOINT RUN_ID`` (or the job's ``command`` followed by
those two arguments) runs with the job's ``env`` over the worker's environment, in its
``working_dir`` (default: the pulled folder), its output streamed to the worker's when
``stream_output``. By default the run is handed to a spare interpreter that already imported tideflow
(``_warm``; the job's env and directory applied as it takes the run), which saves the second or more
a cold start spends importing; ``--cold``, a job ``command`` or a ``PYTHON*`` env variable start a
fresh interpreter instead. A pipe ties each run's process (and the spare) to the worker: if the worker dies, its runs stop
(and the server marks them Crashed). Exits without a final state are reported as Crashed, as by
``serve()``, and cancellation is the same SIGTERM-then-SIGKILL of the run's process group.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any
from uuid import UUID

from tideflow.client import _work_pools as calls
from tideflow.deployments._launchers import ExitCallback
from tideflow.deployments._pull import run_pull_steps
from tideflow.deployments._runner import Runner
from tideflow.exceptions import ObjectNotFound
from tideflow.schemas import FlowRun
from tideflow.schemas.deployments import Deployment
from tideflow.schemas.work_pools import (
    WorkPool,
    WorkPoolCreate,
    WorkPoolType,
    merge_job_variables,
    render_job,
)
from tideflow.settings import Settings

__all__ = ["PoolWorker", "ProcessJobLauncher", "ProcessWorker", "build_command", "run_worker"]


def build_command(job: dict[str, Any], entrypoint: str, run_id: UUID, lifeline: int) -> list[str]:
    """The argv that runs one flow run: the job's ``command`` (default: this interpreter's
    ``-m tideflow.deployments._child``) followed by the lifeline, the entrypoint and the run id."""
    command = job.get("command")
    base = (
        shlex.split(command)
        if isinstance(command, str) and command.strip()
        else [sys.executable, "-m", "tideflow.deployments._child"]
    )
    return [*base, "--lifeline", str(lifeline), entrypoint, str(run_id)]


class ProcessJobLauncher:
    """Starts flow-run processes and reports their exits (``asyncio`` subprocesses).

    With ``warm`` (the default), one spare interpreter with tideflow imported waits for the next
    run (``_warm``): a run whose job uses the default command and sets no ``PYTHON*`` variable
    (those act at interpreter start) is handed to it, and a new spare starts at once; others, or a
    run arriving while the spare is not there, start cold.
    """

    def __init__(self, warm: bool = True) -> None:
        self._on_exit: ExitCallback | None = None
        self._waits: set[asyncio.Task[None]] = set()
        self._lifeline: tuple[int, int] | None = None
        self._pids: set[int] = set()
        self.warm = warm
        self._spare: asyncio.subprocess.Process | None = None
        self._spare_task: asyncio.Task[None] | None = None
        self.warm_starts = 0  # runs handed to a warm interpreter (for tests and the bench)

    async def open(
        self, on_exit: ExitCallback, on_lost: Callable[[str], None] | None = None
    ) -> None:
        self._on_exit = on_exit
        self._lifeline = os.pipe()
        os.set_inheritable(self._lifeline[0], True)
        self._prepare_spare()

    def _prepare_spare(self) -> None:
        if self.warm and self._lifeline is not None:
            self._spare_task = asyncio.create_task(self._start_spare())

    async def _start_spare(self) -> None:
        assert self._lifeline is not None
        env = {**os.environ}
        try:
            self._spare = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "tideflow.deployments._warm",
                "--lifeline", str(self._lifeline[0]),
                env=env, stdin=subprocess.PIPE, start_new_session=True,
                pass_fds=(self._lifeline[0],),
            )  # fmt: skip
        except OSError:
            self._spare = None

    def _take_spare(self, job: dict[str, Any]) -> asyncio.subprocess.Process | None:
        spare = self._spare
        if spare is None or spare.returncode is not None or spare.stdin is None:
            return None
        command = job.get("command")
        if isinstance(command, str) and command.strip():
            return None
        if any(str(k).startswith("PYTHON") for k in (job.get("env") or {})):
            return None
        self._spare = None
        return spare

    async def start(self, index: int, run_id: UUID, run: FlowRun | None = None) -> int:
        raise RuntimeError("a worker starts jobs with start_job()")

    async def start_job(
        self,
        run_id: UUID,
        job: dict[str, Any],
        entrypoint: str,
        cwd: Path | None,
        settings: Settings,
    ) -> int:
        """Start the run's process as described by the rendered ``job``; its pid."""
        assert self._lifeline is not None, "open() first"
        env = {**os.environ}
        job_env = job.get("env") or {}
        if not isinstance(job_env, dict):
            raise ValueError("job variable env must be an object of strings")
        env.update({str(k): str(v) for k, v in job_env.items() if v is not None})
        env["TIDEFLOW_API_URL"] = settings.resolved_api_url
        working_dir = job.get("working_dir")
        where = Path(str(working_dir)).expanduser() if working_dir else cwd
        if where is not None and not where.is_dir():
            raise ValueError(f"working directory {where} does not exist")
        stream = job.get("stream_output") is not False
        proc = await self._start_warm(job, env, where, stream, entrypoint, run_id)
        if proc is None:
            out = None if stream else subprocess.DEVNULL
            argv = build_command(job, entrypoint, run_id, self._lifeline[0])
            try:
                proc = await asyncio.create_subprocess_exec(
                    *argv, cwd=where, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                    start_new_session=True, pass_fds=(self._lifeline[0],),
                )  # fmt: skip
            except OSError as exc:
                raise ValueError(f"cannot start {argv[0]!r}: {exc.strerror or exc}") from None
        self._pids.add(proc.pid)
        task = asyncio.create_task(self._wait(proc, run_id))
        self._waits.add(task)
        task.add_done_callback(self._waits.discard)
        return proc.pid

    async def _start_warm(
        self, job: dict[str, Any], env: dict[str, str], where: Path | None, stream: bool,
        entrypoint: str, run_id: UUID,
    ) -> asyncio.subprocess.Process | None:  # fmt: skip
        """Hand the run to the spare interpreter (then start the next spare); None: start cold."""
        spare = self._take_spare(job)
        if spare is None:
            return None
        self._prepare_spare()
        line = json.dumps({"argv": [entrypoint, str(run_id)], "env": env,
                           "cwd": str(where) if where else None, "quiet": not stream})  # fmt: skip
        assert spare.stdin is not None
        try:
            spare.stdin.write(line.encode() + b"\n")
            await spare.stdin.drain()
            spare.stdin.close()
        except (OSError, ConnectionError):  # it died meanwhile: start this run cold
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(spare.pid, signal.SIGKILL)
            return None
        self.warm_starts += 1
        return spare

    async def _wait(self, proc: asyncio.subprocess.Process, run_id: UUID) -> None:
        code = await proc.wait()
        self._pids.discard(proc.pid)
        if self._on_exit is not None:
            self._on_exit(run_id, code)

    async def close(self) -> None:
        self.warm = False
        if self._spare_task is not None:
            with contextlib.suppress(Exception):
                await self._spare_task
        spare, self._spare = self._spare, None
        if spare is not None and spare.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(spare.pid, signal.SIGKILL)
            with contextlib.suppress(Exception):
                await spare.wait()
        for task in list(self._waits):
            task.cancel()
        await asyncio.gather(*self._waits, return_exceptions=True)
        self.close_sync()

    def close_sync(self) -> None:
        for pid in list(self._pids):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGTERM)
        if self._lifeline is not None:
            for fd in self._lifeline:
                with contextlib.suppress(OSError):
                    os.close(fd)
            self._lifeline = None


class PoolWorker(Runner):
    """A worker of one work pool: what every worker type shares (the pool, its hello, claims over
    the websocket only). Subclasses set ``worker_type`` and start each run's job in ``launch``."""

    worker_type: WorkPoolType

    def __init__(
        self,
        pool_name: str,
        launcher: Any,
        *,
        settings: Settings,
        limit: int | None = None,
        name: str | None = None,
        create_pool: bool = False,
    ) -> None:
        super().__init__([], launcher, settings=settings, limit=limit)
        self.pool_name = pool_name
        self.create_pool = create_pool
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        self.pool: WorkPool | None = None

    # --- what differs from serve()'s runner --------------------------------------------------
    async def register(self) -> None:
        """Check (or with ``create_pool``, create) the pool, and say what this worker serves."""
        try:
            self.pool = await self.client.send(calls.read_work_pool(self.pool_name))
        except ObjectNotFound:
            if not self.create_pool:
                raise ObjectNotFound(
                    404,
                    f"work pool {self.pool_name!r} not found; create it with: tideflow work-pool "
                    f"create {self.pool_name} --type {self.worker_type.value} (or start with "
                    f"--type {self.worker_type.value})",
                ) from None
            body = WorkPoolCreate(name=self.pool_name, type=self.worker_type)
            self.pool = await self.client.send(calls.create_work_pool(body))
        if self.pool.type is not self.worker_type:
            raise ValueError(
                f"work pool {self.pool.name!r} is of type {self.pool.type.value!r}; this is a "
                f"{self.worker_type.value!r} worker (start one with --type {self.pool.type.value})"
            )
        limit = f" running at most {self.limit} flow runs at once" if self.limit else ""
        print(
            f"Worker {self.name!r} started for work pool {self.pool.name!r}{limit}.",
            flush=True,
        )

    def hello(self) -> dict[str, Any]:
        return {
            **super().hello(),
            "deployment_ids": [],
            "work_pool_name": self.pool_name,
            "worker_type": self.worker_type.value,
        }

    def serves(self, run: FlowRun) -> bool:
        # The server offers a worker only its pool's runs; a run without a queue is a serve() one.
        return run.work_queue_id is not None and run.deployment_id is not None

    def offer(self, run: FlowRun, priority: int | None = None) -> None:
        if self._ws is None:  # claims need the server's pool checks: only on the websocket
            return
        super().offer(run, priority)

    async def _claim_and_start(self, run: FlowRun) -> None:
        # An unanswered claim frame whose run is still Scheduled: offered again on reconnect.
        self._release(run.id)

    async def poll_due(self) -> None:
        ws = self._ws
        if ws is not None:
            with contextlib.suppress(Exception):
                await ws.send(json.dumps({"type": "poll"}))

    async def read_job(self, run: FlowRun, claimed: FlowRun) -> tuple[Deployment, dict[str, Any]]:
        """The run's deployment and its job: the pool's template filled with the merged job
        variables (pool defaults < deployment < run)."""
        assert run.deployment_id is not None
        deployment = await self.client.read_deployment(run.deployment_id)
        pool = await self.client.send(calls.read_work_pool(self.pool_name))
        variables = merge_job_variables(deployment.job_variables, claimed.job_variables)
        return deployment, render_job(pool.base_job_template, variables)


class ProcessWorker(PoolWorker):
    """A worker of one work pool of type ``process``."""

    worker_type = WorkPoolType.PROCESS

    def __init__(
        self,
        pool_name: str,
        *,
        settings: Settings,
        limit: int | None = None,
        name: str | None = None,
        create_pool: bool = False,
        warm: bool = True,
    ) -> None:
        self.job_launcher = ProcessJobLauncher(warm=warm)
        super().__init__(
            pool_name, self.job_launcher, settings=settings, limit=limit, name=name,
            create_pool=create_pool,
        )  # fmt: skip

    async def launch(self, run: FlowRun, claimed: FlowRun) -> int:
        """Pull the code, render the job from the pool's template and start the run's process."""
        deployment, job = await self.read_job(run, claimed)
        if not deployment.entrypoint:
            raise ValueError(f"deployment {deployment.full_name!r} has no entrypoint")
        steps = deployment.pull_steps
        home = self.settings.home
        directory = await asyncio.to_thread(run_pull_steps, steps, home) if steps else None
        entrypoint = _anchored(deployment.entrypoint, directory)
        return await self.job_launcher.start_job(run.id, job, entrypoint, directory, self.settings)


def _anchored(entrypoint: str, directory: Path | None) -> str:
    """The entrypoint with its file made absolute (relative to the code's folder, or to the
    worker's own directory), so a ``working_dir`` elsewhere still finds it."""
    path, sep, name = entrypoint.rpartition(":")
    if not sep:
        return entrypoint
    return f"{(directory or Path.cwd()) / path}:{name}"


async def run_worker(worker: PoolWorker) -> None:
    """Run ``worker`` until SIGINT/SIGTERM (a second one cancels running runs at once)."""
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, worker.stop)
    try:
        await worker.run()
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
