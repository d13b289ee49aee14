"""Event retention: events that occurred more than ``events_retention_days`` ago are deleted (with
their ``event_resources`` rows) in batches, one short write transaction each, so a large backlog
never holds the database's write lock for long."""

from __future__ import annotations

import datetime as dt

from tideflow.server.services.base import Clock, Service, utc_clock
from tideflow.server.storage import Database
from tideflow.server.storage.events import delete_events_before
from tideflow.settings import Settings

__all__ = ["EventRetentionService"]

BATCH = 1000
MAX_BATCHES_PER_STEP = 50


class EventRetentionService(Service):
    """Prunes old events; ``deleted`` counts them over the service's life."""

    name = "event-retention"
    interval = 600.0

    def __init__(
        self,
        database: Database,
        settings: Settings,
        *,
        clock: Clock = utc_clock,
        interval: float | None = None,
        batch: int = BATCH,
    ) -> None:
        super().__init__(clock=clock, interval=interval)
        self.database = database
        self.settings = settings
        self.batch = batch
        self.deleted = 0

    async def run_once(self) -> None:
        cutoff = self.clock() - dt.timedelta(days=self.settings.events_retention_days)
        for _ in range(MAX_BATCHES_PER_STEP):
            async with self.database.write() as session:
                n = await delete_events_before(session, cutoff, self.batch)
            self.deleted += n
            if n < self.batch or self.stopping:
                return
        # More is left: step again soon rather than after the full interval.
        self.wake()
