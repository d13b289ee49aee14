"""Runner liveness: a runner silent for ``runner_heartbeat_timeout`` is forgotten and its claimed
runs end (Pending/Running → Crashed, Cancelling → Cancelled); deployments no runner polled within
that time become NOT_READY."""

from __future__ import annotations

import datetime as dt

from tideflow.schemas import StateProposal
from tideflow.schemas.states import Cancelled, Crashed, StateType
from tideflow.server.services.base import Clock, Service, utc_clock
from tideflow.server.storage import Database
from tideflow.server.storage import runners as runners_storage
from tideflow.server.storage.deployments import mark_deployments_not_ready
from tideflow.server.storage.flow_runs import set_flow_run_state
from tideflow.settings import Settings

__all__ = ["RunnerMonitorService"]


class RunnerMonitorService(Service):
    """Crashes the runs of silent runners and marks unserved deployments NOT_READY."""

    name = "runner-monitor"
    interval = 5.0

    def __init__(
        self,
        database: Database,
        settings: Settings,
        *,
        clock: Clock = utc_clock,
        interval: float | None = None,
    ) -> None:
        super().__init__(clock=clock, interval=interval)
        self.database = database
        self.settings = settings
        self.crashed = 0

    async def run_once(self) -> None:
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
                if not await runners_storage.delete_runner(session, runner.id, cutoff):
                    continue
                for run_id, state_type in await runners_storage.read_runner_runs(
                    session, runner.id
                ):
                    end = (
                        Cancelled(message)
                        if state_type is StateType.CANCELLING
                        else Crashed(message)
                    )
                    decision, _ = await set_flow_run_state(
                        session, run_id, StateProposal(state=end)
                    )
                    self.crashed += int(decision.store)
        async with self.database.write() as session:
            await mark_deployments_not_ready(session, cutoff)
