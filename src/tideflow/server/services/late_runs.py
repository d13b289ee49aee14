"""Late runs: a run still Scheduled ``late_runs_after`` seconds past its time is marked Late; a run
Paused or Suspended past its pause's timeout is Failed (its process may be gone: a suspended run's
always is).

Late is a SCHEDULED state, so the run stays claimable (and the dispatcher offers it again). Each
change is a compare-and-set on the state that was read, so it never overrides a claim or a resume in
flight.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from tideflow.schemas import StateProposal
from tideflow.schemas.states import Failed, Late, StateType
from tideflow.server.services.base import Clock, Service, utc_clock
from tideflow.server.storage import Database
from tideflow.server.storage.flow_run_inputs import expired_message
from tideflow.server.storage.flow_runs import read_flow_run, set_flow_run_state
from tideflow.server.storage.tables import flow_runs
from tideflow.settings import Settings

__all__ = ["LateRunsService"]

BATCH = 200


class LateRunsService(Service):
    """Marks overdue Scheduled runs Late (``marked`` counts them) and fails expired pauses
    (``expired``)."""

    name = "late-runs"
    interval = 2.0

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
        self.marked = 0
        self.expired = 0

    async def run_once(self) -> None:
        await self._fail_expired_pauses()
        await self._mark_late()

    async def _fail_expired_pauses(self) -> None:
        c = flow_runs.c
        stmt = (
            sa.select(c.id)
            .where(
                c.state_type == StateType.PAUSED.value,
                c.next_scheduled_start_time < self.clock(),  # the pause's timeout
            )
            .order_by(c.next_scheduled_start_time)
            .limit(BATCH)
        )
        async with self.database.read() as session:
            expired = [row.id for row in await session.execute(stmt)]
        if not expired:
            return
        async with self.database.write() as session:
            for run_id in expired:
                run = await read_flow_run(session, run_id)
                if run is None or run.state is None or run.state.type is not StateType.PAUSED:
                    continue
                proposal = StateProposal(
                    state=Failed(message=expired_message(run.state)),
                    expected_state_id=run.state.id,
                )
                decision, _ = await set_flow_run_state(session, run_id, proposal)
                self.expired += int(decision.store)

    async def _mark_late(self) -> None:
        cutoff = self.clock() - dt.timedelta(seconds=self.settings.late_runs_after)
        c = flow_runs.c
        stmt = (
            sa.select(c.id, c.state_id, c.next_scheduled_start_time)
            .where(
                c.state_type == StateType.SCHEDULED.value,
                c.state_name == "Scheduled",
                c.next_scheduled_start_time < cutoff,
            )
            .order_by(c.next_scheduled_start_time)
            .limit(BATCH)
        )
        async with self.database.read() as session:
            overdue = list(await session.execute(stmt))
        if not overdue:
            return
        async with self.database.write() as session:
            for row in overdue:
                proposal = StateProposal(
                    state=Late(scheduled_time=row.next_scheduled_start_time),
                    expected_state_id=row.state_id,
                )
                decision, _ = await set_flow_run_state(session, row.id, proposal)
                self.marked += int(decision.store)
