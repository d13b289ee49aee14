"""The runner behind ``serve()``: registers deployments, takes the runs the server pushes, supervises
their processes.

Protocol (docs/adr/0001-push-dispatch-to-runners.md): one websocket to ``/api/runners/ws``; ``hello``
then ``heartbeat`` frames out; ``run`` offers and ``cancel`` commands in. An offer is claimed with a
compare-and-set Scheduled → Pending (``expected_state_id`` = the offered state): REJECT (409) means
another runner took it, WAIT means the deployment is at its concurrency limit (the server offers it
again). Offers that arrive together (a fan-out) are claimed together in one ``claim`` frame on the
websocket (one server transaction); without the websocket, each is claimed over HTTP.
A slow poll of ``get_scheduled_flow_runs`` covers missed pushes and runs that became CANCELLING.
A clean shutdown ends with a ``goodbye`` frame: a close without one tells the server this runner
died, and its runs are Crashed unless it reconnects (same ``runner_id``) within a short grace.
With ``limit`` set, offers beyond it wait here unclaimed (still Scheduled) until a slot frees.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import json
import os
import signal
import socket
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from uuid import UUID, uuid4

from tideflow.client import AsyncClient
from tideflow.client._auth import auth_headers
from tideflow.deployments._deployment import RunnerDeployment
from tideflow.deployments._launchers import ExitCallback
from tideflow.exceptions import ServerError, ServerUnreachable, TideflowError, TransitionRefused
from tideflow.schemas import FlowRun, FlowRunFilter, SetStateStatus, State, StateType
from tideflow.schemas import states as S
from tideflow.schemas.deployments import Deployment
from tideflow.schemas.schedules import DeploymentScheduleUpdate, schedule_summary
from tideflow.settings import Settings

__all__ = ["Launcher", "Runner", "exit_message"]

_BACKOFF_START = 0.1
_BACKOFF_MAX = 5.0
_POLL_LIMIT = 200


class Launcher(Protocol):
    async def open(
        self, on_exit: ExitCallback, on_lost: Callable[[str], None] | None = None
    ) -> None: ...
    async def start(self, index: int, run_id: UUID, run: FlowRun | None = None) -> int: ...
    async def close(self) -> None: ...


def exit_message(code: int) -> str:
    """The Crashed message for a run process that ended with ``code`` without a final state."""
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return (
            f"Flow run process was killed by {name} (signal {-code}) before reporting a final state"
        )
    return f"Flow run process exited with code {code} before reporting a final state"


@dataclass
class _Proc:
    """A run this runner claimed: its process once started, and whether it is being cancelled."""

    run_id: UUID
    pid: int | None = None
    cancel_reason: str | None = None
    kill_timer: asyncio.TimerHandle | None = None


def _say(message: str, *, err: bool = False) -> None:
    stream = sys.stderr if err else sys.stdout
    print(message, file=stream, flush=True)


class Runner:
    """Serves ``deployments``: one instance per ``serve()`` call, driven by ``run()``."""

    def __init__(
        self,
        deployments: Sequence[RunnerDeployment],
        launcher: Launcher,
        *,
        settings: Settings,
        limit: int | None = None,
        pause_on_shutdown: bool = False,
    ) -> None:
        self.deployments = list(deployments)
        self.pause_on_shutdown = pause_on_shutdown
        self.launcher = launcher
        self.settings = settings
        self.limit = limit
        self.runner_id = uuid4()
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self.registered: list[Deployment] = []
        self.index_of: dict[UUID, int] = {}
        self.procs: dict[UUID, _Proc] = {}
        self.waiting: dict[UUID, FlowRun] = {}
        self.priority: dict[UUID, int] = {}  # a worker's offers: their work queue's priority
        self.stopping = asyncio.Event()
        self.hurry = asyncio.Event()  # a second Ctrl-C: cancel running runs now
        self.drained = asyncio.Event()
        self.connected = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._client: AsyncClient | None = None
        self.error: str | None = None  # why serving stopped on its own
        self._ws: Any = None  # the websocket, while connected to a server that takes claims on it
        self._socket: Any = None  # the websocket, while connected (for the goodbye)
        self._to_claim: list[FlowRun] = []  # offers of this loop iteration, claimed in one frame
        self._claims: dict[int, asyncio.Future[list[dict[str, Any]]]] = {}
        self._claim_ids = itertools.count(1)

    # --- lifecycle -------------------------------------------------------------------------------
    @property
    def client(self) -> AsyncClient:
        assert self._client is not None
        return self._client

    async def run(self) -> None:
        """Register, serve until ``stop()``, then shut down gracefully."""
        self._client = AsyncClient(settings=self.settings)
        try:
            await self.register()
            await self.launcher.open(self._on_exit, self._launcher_lost)
            ws_task = asyncio.create_task(self._ws_loop())
            poll_task = asyncio.create_task(self._poll_loop())
            await self.stopping.wait()
            poll_task.cancel()
            if self.pause_on_shutdown:
                await self._pause_schedules()
            await self._drain()
            await self._say_goodbye()
            ws_task.cancel()
            await asyncio.gather(ws_task, poll_task, return_exceptions=True)
        finally:
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await self.launcher.close()
            await self._client.aclose()

    def stop(self) -> None:
        """First call: stop taking runs and let running ones finish. Second: cancel them now."""
        if self.stopping.is_set():
            self.hurry.set()
            return
        grace = self.settings.runner_cancel_grace
        running = len(self.procs)
        if running:
            _say(f"Stopping: waiting up to {grace:g} s for {running} running flow run(s) to finish")
        self.stopping.set()
        self.waiting.clear()

    def _launcher_lost(self, reason: str) -> None:
        self.error = reason
        _say(f"Error: {reason}; stopping", err=True)
        self.stop()

    async def register(self) -> None:
        """Upsert every deployment and print how to run each."""
        for index, deployment in enumerate(self.deployments):
            registered = await self.client.create_deployment(deployment.create)
            self.registered.append(registered)
            self.index_of[registered.id] = index
        for registered in self.registered:
            schedules = [schedule_summary(s.schedule) for s in registered.schedules if s.active]
            when = f" ({'; '.join(schedules)})" if schedules else ""
            paused = " [paused]" if registered.paused else ""
            _say(
                f"Serving deployment '{registered.full_name}'{when}{paused}. "
                f"Run it with: tideflow deployment run '{registered.full_name}'"
            )

    async def _pause_schedules(self) -> None:
        """Pause the active schedules of the served deployments: nothing serves their runs now
        (serving them again re-registers the deployments, schedules active as declared)."""
        for registered in self.registered:
            active = [s for s in registered.schedules if s.active]
            for schedule in active:
                try:
                    await self.client.update_deployment_schedule(
                        registered.id, schedule.id, DeploymentScheduleUpdate(active=False)
                    )
                except TideflowError as exc:
                    _say(f"Could not pause a schedule of {registered.full_name!r}: {exc}", err=True)
                    break
            else:
                if active:
                    _say(f"Paused the schedules of '{registered.full_name}' (pause_on_shutdown)")

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- offers and claims -----------------------------------------------------------------------
    def serves(self, run: FlowRun) -> bool:
        """Whether ``run`` is one this runner may start."""
        return run.deployment_id in self.index_of

    def offer(self, run: FlowRun, priority: int | None = None) -> None:
        """A run that may be due: claim it now, or keep it until a slot frees."""
        if self.stopping.is_set() or run.id in self.procs or not self.serves(run):
            return
        if run.state is None or run.state.type is not StateType.SCHEDULED:
            return
        if priority is not None:
            self.priority[run.id] = priority
        if self.limit is not None and len(self.procs) >= self.limit:
            self.waiting[run.id] = run
            return
        self.waiting.pop(run.id, None)
        self.procs[run.id] = _Proc(run.id)
        if self._ws is None:
            self._spawn(self._claim_and_start(run))
            return
        self._to_claim.append(run)
        if len(self._to_claim) == 1:  # the offers already received are handled first
            asyncio.get_running_loop().call_soon(self._claim_offers)

    def _claim_offers(self) -> None:
        runs, self._to_claim = self._to_claim, []
        if runs:
            self._spawn(self._claim_batch(runs))

    async def _claim_batch(self, runs: list[FlowRun]) -> None:
        """Claim ``runs`` in one websocket frame; start the accepted ones."""
        ws = self._ws
        claim_id = next(self._claim_ids)
        future: asyncio.Future[list[dict[str, Any]]] = asyncio.get_running_loop().create_future()
        self._claims[claim_id] = future
        claims = [
            {"flow_run_id": str(run.id), "expected_state_id": str(run.state.id)}
            for run in runs
            if run.state is not None
        ]
        try:
            if ws is None:
                raise ConnectionError("not connected")
            await ws.send(json.dumps({"type": "claim", "id": claim_id, "claims": claims}))
            results = await asyncio.wait_for(future, self.settings.client_timeout)
        except (
            Exception
        ):  # no answer (dropped, timed out): the claims may or may not have committed
            self._claims.pop(claim_id, None)
            for run in runs:
                self._spawn(self._recover_claim(run))
            return
        by_id = {run.id: run for run in runs}
        for result in results:
            run_id = UUID(str(result["flow_run_id"]))
            if run_id not in by_id:
                continue
            run = by_id.pop(run_id)
            if result.get("status") == SetStateStatus.ACCEPT and result.get("flow_run"):
                self._spawn(self._start(run, FlowRun.model_validate(result["flow_run"])))
            else:  # REJECT: another runner took it; WAIT: offered again when a slot frees
                self._release(run.id)
        for run_id in by_id:
            self._release(run_id)

    async def _recover_claim(self, run: FlowRun) -> None:
        """After a claim frame got no answer: start the run if the claim committed, else claim it
        again over HTTP if it is still Scheduled (otherwise someone else has it)."""
        try:
            current = await self.client.read_flow_run(run.id)
        except TideflowError:
            self._release(run.id)
            return
        state = current.state
        if state is not None and state.type is StateType.PENDING:
            extra = state.details.model_extra or {}
            if str(extra.get("runner_id")) == str(self.runner_id):
                await self._start(run, current)
                return
        if state is not None and state.type is StateType.SCHEDULED:
            await self._claim_and_start(current)
            return
        self._release(run.id)

    async def _claim_and_start(self, run: FlowRun) -> None:
        assert run.state is not None
        claim = S.Pending(runner_id=str(self.runner_id))
        try:
            result = await self.client.set_flow_run_state(
                run.id, claim, expected_state_id=run.state.id
            )
        except TideflowError:  # 409: another runner took it; else the poll finds it again
            self._release(run.id)
            return
        if result.status is not SetStateStatus.ACCEPT:  # WAIT: offered again when a slot frees
            self._release(run.id)
            return
        await self._start(run, result.run or run.model_copy(update={"state": result.state}))

    async def _start(self, run: FlowRun, claimed: FlowRun) -> None:
        """Start the process of ``run``, which this runner claimed (now ``claimed``)."""
        assert run.deployment_id is not None
        proc = self.procs.get(run.id)
        if proc is None:
            proc = self.procs[run.id] = _Proc(run.id)
        try:
            proc.pid = await self.launch(run, claimed)
        except Exception as exc:
            await self._propose_end(
                run.id, S.Crashed(f"Could not start the flow run process: {exc}")
            )
            self._release(run.id)
            return
        if proc.cancel_reason is not None:
            self._terminate(proc)

    async def launch(self, run: FlowRun, claimed: FlowRun) -> int:
        """Start the process of a claimed run; its pid (= its process group)."""
        assert run.deployment_id is not None
        return await self.launcher.start(self.index_of[run.deployment_id], run.id, claimed)

    def _next_waiting(self) -> FlowRun:
        """The waiting offer to take next: highest priority (lowest number), then oldest."""
        if not self.priority:
            return self.waiting.pop(next(iter(self.waiting)))
        order = {run_id: i for i, run_id in enumerate(self.waiting)}
        best = min(self.waiting, key=lambda r: (self.priority.get(r, 0), order[r]))
        return self.waiting.pop(best)

    def _release(self, run_id: UUID) -> None:
        self.priority.pop(run_id, None)
        proc = self.procs.pop(run_id, None)
        if proc is not None and proc.kill_timer is not None:
            proc.kill_timer.cancel()
        if not self.procs and self.stopping.is_set():
            self.drained.set()
        while self.waiting and not self.stopping.is_set():
            if self.limit is not None and len(self.procs) >= self.limit:
                return
            run = self._next_waiting()
            self.offer(run, self.priority.get(run.id))

    # --- process ends and cancellation -----------------------------------------------------------
    def _on_exit(self, run_id: UUID, code: int) -> None:
        self._spawn(self._finish(run_id, code))

    async def _finish(self, run_id: UUID, code: int) -> None:
        proc = self.procs.get(run_id)
        try:
            run = await self.client.read_flow_run(run_id)
            state = run.state
            if state is None or state.is_final or state.type is StateType.PAUSED:
                return  # ended, or suspended (a resume offers it again)
            reason = proc.cancel_reason if proc is not None else None
            if reason is not None or state.type is StateType.CANCELLING:
                await self._propose_end(run_id, S.Cancelled(reason or state.message or "cancelled"))
            else:
                message = self.describe_exit(run_id, code)
                await self._propose_end(run_id, S.Crashed(message, exit_code=code))
        except TideflowError as exc:
            _say(f"Could not report the end of flow run {run_id}: {exc}", err=True)
        finally:
            self._release(run_id)

    async def _propose_end(self, run_id: UUID, state: State) -> None:
        try:
            await self.client.set_flow_run_state(run_id, state)
        except TransitionRefused:
            pass  # it reached a final state meanwhile
        except TideflowError as exc:
            _say(f"Could not set flow run {run_id} to {state.name}: {exc}", err=True)

    def cancel(self, run_id: UUID, reason: str = "cancelled by user") -> None:
        """Stop run ``run_id``: terminate its process, then Cancelled (or cancel it unclaimed)."""
        proc = self.procs.get(run_id)
        if proc is None:
            self.waiting.pop(run_id, None)
            self._spawn(self._cancel_unclaimed(run_id))
            return
        if proc.cancel_reason is None:
            proc.cancel_reason = reason
            if proc.pid is not None:
                self._terminate(proc)

    def _terminate(self, proc: _Proc) -> None:
        assert proc.pid is not None
        self.signal_job(proc.pid, signal.SIGTERM)
        pid = proc.pid
        grace = self.settings.runner_cancel_grace
        loop = asyncio.get_running_loop()
        proc.kill_timer = loop.call_later(grace, self.signal_job, pid, signal.SIGKILL)

    def signal_job(self, pid: int, signum: int) -> None:
        """Stop a run's job: SIGTERM (ask), then SIGKILL after the grace (a worker whose jobs are
        not processes, e.g. containers, maps these onto its infrastructure)."""
        _signal_group(pid, signum)

    def describe_exit(self, run_id: UUID, code: int) -> str:
        """The Crashed message for a run whose job ended with ``code`` without a final state."""
        return exit_message(code)

    async def _cancel_unclaimed(self, run_id: UUID) -> None:
        """A CANCELLING run nobody claimed (it was Scheduled): any runner may finish the cancel."""
        try:
            run = await self.client.read_flow_run(run_id)
            if not self.serves(run) or run.state is None:
                return
            if run.state.type is not StateType.CANCELLING:
                return
            history = await self.client.read_flow_run_states(run_id)
            earlier = [s for s in history if s.type is not StateType.CANCELLING]
            if (
                not earlier
                or max(earlier, key=lambda s: s.timestamp).type is not StateType.SCHEDULED
            ):
                return  # claimed by some runner: that one stops it
            done = S.Cancelled(run.state.message or "cancelled before it started")
            await self.client.set_flow_run_state(run_id, done, expected_state_id=run.state.id)
        except TideflowError:
            return

    async def _drain(self) -> None:
        """Wait for running runs (bounded by the grace period), then cancel the rest."""
        if self.procs:
            grace = self.settings.runner_cancel_grace
            waiters = [asyncio.create_task(e.wait()) for e in (self.drained, self.hurry)]
            await asyncio.wait(waiters, timeout=grace, return_when=asyncio.FIRST_COMPLETED)
            for waiter in waiters:
                waiter.cancel()
        for proc in list(self.procs.values()):
            self.cancel(proc.run_id, "the runner serving it shut down")
        if self.procs:
            # SIGTERM went out; SIGKILL follows after the grace: wait for the exits to be reported
            bound = self.settings.runner_cancel_grace + 5.0
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.drained.wait(), bound)

    # --- the websocket ---------------------------------------------------------------------------
    async def _say_goodbye(self) -> None:
        """Tell the server this runner stops on purpose (not to crash its runs early)."""
        ws = self._socket
        if ws is None:
            return
        with contextlib.suppress(Exception):  # gone already: the heartbeat timeout decides
            await asyncio.wait_for(ws.send(json.dumps({"type": "goodbye"})), 2.0)

    def _ws_url(self) -> str:
        base = self.client.api_url
        scheme, rest = base.split("://", 1)
        return f"{'wss' if scheme == 'https' else 'ws'}://{rest}/runners/ws"

    async def _ws_loop(self) -> None:
        # websockets loads in ~30 ms; only a serving process needs it, so `import tideflow` skips it.
        from websockets.asyncio.client import connect
        from websockets.exceptions import WebSocketException

        backoff = _BACKOFF_START
        warned = False
        while True:
            try:
                async with connect(
                    self._ws_url(),
                    open_timeout=10,
                    max_size=None,
                    additional_headers=auth_headers(self.settings),
                ) as ws:
                    await self._session(ws)
                    backoff = _BACKOFF_START
                    warned = False
            except (OSError, WebSocketException, TimeoutError, ValueError) as exc:
                if self.connected.is_set() or not warned:
                    why = str(exc) if isinstance(exc, ValueError) else type(exc).__name__
                    _say(
                        f"Lost the connection to {self.client.api_url} ({why}); reconnecting",
                        err=True,
                    )
                    warned = True
            self.connected.clear()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, _BACKOFF_MAX)

    def hello(self) -> dict[str, Any]:
        """The first frame on the websocket."""
        return {
            "type": "hello",
            "runner_id": str(self.runner_id),
            "name": self.name,
            "deployment_ids": [str(d) for d in self.index_of],
            "limit": self.limit,
        }

    async def _session(self, ws: Any) -> None:
        await ws.send(json.dumps(self.hello()))
        welcome = json.loads(await ws.recv())
        if welcome.get("type") != "welcome":
            raise ValueError(f"the server refused the runner: {welcome.get('detail', welcome)}")
        interval = self.settings.runner_heartbeat_interval
        if isinstance(welcome.get("heartbeat_interval"), int | float):
            interval = min(interval, float(welcome["heartbeat_interval"]))
        self.connected.set()
        self._socket = ws
        if welcome.get("claims") is True:  # this server takes claims on the websocket
            self._ws = ws
        beat = asyncio.create_task(self._heartbeats(ws, interval))
        try:
            async for raw in ws:
                self._on_message(json.loads(raw))
        finally:
            self._ws = self._socket = None
            for future in self._claims.values():
                if not future.done():
                    future.set_exception(ConnectionError("the runner websocket closed"))
            self._claims.clear()
            beat.cancel()
            await asyncio.gather(beat, return_exceptions=True)

    async def _heartbeats(self, ws: Any, interval: float) -> None:
        while True:
            await ws.send(
                json.dumps({"type": "heartbeat", "running": [str(r) for r in self.procs]})
            )
            await asyncio.sleep(interval)

    def _on_message(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "run":
            priority = message.get("priority")
            self.offer(
                FlowRun.model_validate(message["flow_run"]),
                priority if isinstance(priority, int) else None,
            )
        elif kind == "claimed":
            future = self._claims.pop(int(message.get("id", 0)), None)
            if future is not None and not future.done():
                future.set_result(list(message.get("results") or []))
        elif kind == "cancel":
            self.cancel(UUID(str(message["flow_run_id"])))
        elif kind == "error":
            _say(f"The server reported: {message.get('detail')}", err=True)

    # --- the fallback poll -----------------------------------------------------------------------
    async def _poll_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.runner_poll_interval)
            with contextlib.suppress(ServerUnreachable, ServerError):
                await self.poll_once()

    async def poll_once(self) -> None:
        """Offer due runs the push may have missed; cancel owned runs that became CANCELLING."""
        await self.poll_due()
        owned = [run_id for run_id, proc in self.procs.items() if proc.cancel_reason is None]
        if owned:
            flt = FlowRunFilter(id=owned, state_type=[StateType.CANCELLING], limit=1000)
            for run in await self.client.read_flow_runs(flt):
                self.cancel(run.id, (run.state.message if run.state else None) or "cancelled")

    async def poll_due(self) -> None:
        """Offer the due runs a push may have missed."""
        now = dt.datetime.now(dt.UTC)
        due = await self.client.get_scheduled_flow_runs(list(self.index_of), now, _POLL_LIMIT)
        for run in due:
            self.offer(run)


def _signal_group(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signum)
