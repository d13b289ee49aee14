"""Late runs: a run still Scheduled ``late_runs_after`` seconds past its time is marked Late.

Late is a SCHEDULED state, so the run stays claimable (and the dispatcher offers it again). The
change is a compare-and-set on the state that was read, so it never overrides a claim in flight.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from tideflow.schemas import StateProposal
from tideflow.schemas.states import Late, StateType
from tideflow.server.services.base import Clock, Service, utc_clock
from tideflow.server.storage import Database
from tideflow.server.storage.flow_runs import set_flow_run_state
from tideflow.server.storage.tables import flow_runs
from tideflow.settings import Settings

__all__ = ["LateRunsService"]

BATCH = 200


class LateRunsService(Service):
    """Marks overdue Scheduled runs Late; ``marked`` counts them."""

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

    async def run_once(self) -> None:
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
