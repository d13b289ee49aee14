"""Runner liveness: a runner is gone when its websocket closed without a ``goodbye`` and it did not
reconnect within ``runner_disconnect_grace`` (a SIGKILLed ``serve()``: found in seconds), or when it
stayed silent for ``runner_heartbeat_timeout`` (the fallback: a hung runner, a network that drops
packets without closing anything, a server restarted meanwhile). A gone runner is forgotten and its
claimed runs end (Pending/Running → Crashed, Cancelling → Cancelled); deployments no runner polled
within the heartbeat timeout become NOT_READY.

The runners' websocket records each goodbye-less close in ``RunnerDisconnects`` (one per server,
held by its context); the monitor wakes once the grace has passed. Whether the runner came back is
read from the database (a reconnect, to this server or another one, registers it again, which moves
its ``last_heartbeat`` past the close), so the record itself needs no cleanup to be correct.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from tideflow.schemas import StateProposal
from tideflow.schemas.states import Cancelled, Crashed, StateType
from tideflow.server.services.base import Clock, Service, utc_clock
from tideflow.server.storage import Database
from tideflow.server.storage import runners as runners_storage
from tideflow.server.storage.deployments import mark_deployments_not_ready
from tideflow.server.storage.flow_runs import set_flow_run_state
from tideflow.server.storage.work_pools import set_worker_offline
from tideflow.settings import Settings

__all__ = ["Disconnect", "RunnerDisconnects", "RunnerMonitorService"]

_WAKE_MARGIN = 0.05  # seconds after the grace: the loop's clock and the wall clock differ slightly


@dataclass(frozen=True)
class Disconnect:
    """A runner's websocket that closed without a goodbye, at ``at``."""

    runner_id: UUID
    name: str
    at: dt.datetime


class RunnerDisconnects:
    """This server's runner connections per runner id, and the goodbye-less closes not yet looked
    at by the monitor (the latest per runner)."""

    def __init__(self) -> None:
        self._live: dict[UUID, int] = {}
        self._pending: dict[UUID, Disconnect] = {}
        self.listener: Callable[[], None] | None = None  # the monitor: wake after the grace

    def opened(self, runner_id: UUID) -> None:
        """The runner said hello (again): any close recorded before is moot."""
        self._live[runner_id] = self._live.get(runner_id, 0) + 1
        self._pending.pop(runner_id, None)

    def closed(self, runner_id: UUID, name: str, at: dt.datetime, *, goodbye: bool) -> None:
        """One of the runner's connections ended at ``at``; recorded unless it said goodbye or
        another of its connections is still open (the old one of a reconnect, noticed late)."""
        left = self._live.get(runner_id, 1) - 1
        if left > 0:
            self._live[runner_id] = left
            return
        self._live.pop(runner_id, None)
        if goodbye:
            return
        self._pending[runner_id] = Disconnect(runner_id, name, at)
        if self.listener is not None:
            self.listener()

    def due(self, now: dt.datetime, grace: float) -> list[Disconnect]:
        """Removes and returns the closes whose grace has passed by ``now``."""
        cutoff = now - dt.timedelta(seconds=grace)
        done = [d for d in self._pending.values() if d.at <= cutoff]
        for gone in done:
            del self._pending[gone.runner_id]
        return done

    def __len__(self) -> int:
        return len(self._pending)


class RunnerMonitorService(Service):
    """Crashes the runs of gone runners and marks unserved deployments NOT_READY."""

    name = "runner-monitor"
    interval = 5.0

    def __init__(
        self,
        database: Database,
        settings: Settings,
        *,
        disconnects: RunnerDisconnects | None = None,
        clock: Clock = utc_clock,
        interval: float | None = None,
    ) -> None:
        super().__init__(clock=clock, interval=interval)
        self.database = database
        self.settings = settings
        self.disconnects = disconnects if disconnects is not None else RunnerDisconnects()
        self.disconnects.listener = self._wake_after_grace
        self._timers: set[asyncio.TimerHandle] = set()
        self.crashed = 0

    def _wake_after_grace(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # recorded outside the server's loop: the next interval finds it
            return
        delay = self.settings.runner_disconnect_grace + _WAKE_MARGIN

        def fire() -> None:
            self._timers.discard(handle)
            self.wake()

        handle = loop.call_later(delay, fire)
        self._timers.add(handle)

    def stop(self) -> None:
        for handle in self._timers:
            handle.cancel()
        self._timers.clear()
        super().stop()

    async def run_once(self) -> None:
        await self._end_disconnected()
        timeout = self.settings.runner_heartbeat_timeout
        cutoff = self.clock() - dt.timedelta(seconds=timeout)
        async with self.database.read() as session:
            silent = await runners_storage.read_silent_runners(session, cutoff)
        for runner in silent:
            message = (
                f"runner {runner.name!r} ({runner.id}) stopped heartbeating: silent for more "
                f"than {timeout:g} s"
            )
            async with self.database.write() as session:
                # forgotten only if it stayed silent; a heartbeat since then keeps its runs alive
                if await runners_storage.delete_runner(session, runner.id, cutoff):
                    await self._end_runs(session, runner.id, message)
        async with self.database.write() as session:
            await mark_deployments_not_ready(session, cutoff)

    async def _end_disconnected(self) -> None:
        grace = self.settings.runner_disconnect_grace
        for gone in self.disconnects.due(self.clock(), grace):
            message = (
                f"runner {gone.name!r} ({gone.runner_id}) disconnected without saying goodbye "
                f"and did not reconnect within {grace:g} s"
            )
            async with self.database.write() as session:
                # Not heard from since the close: a reconnect (here or to another server) or a
                # heartbeat moved its last_heartbeat past it, and then its runs stay.
                if await runners_storage.delete_runner(session, gone.runner_id, gone.at):
                    await self._end_runs(session, gone.runner_id, message)

    async def _end_runs(self, session: AsyncSession, runner_id: UUID, message: str) -> None:
        await set_worker_offline(session, runner_id)  # a no-op for a serve() runner
        for run_id, state_type in await runners_storage.read_runner_runs(session, runner_id):
            end = Cancelled(message) if state_type is StateType.CANCELLING else Crashed(message)
            decision, _ = await set_flow_run_state(session, run_id, StateProposal(state=end))
            self.crashed += int(decision.store)
