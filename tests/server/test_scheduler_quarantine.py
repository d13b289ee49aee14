"""A stored schedule the scheduler cannot parse or compute is quarantined, on both databases: made
inactive with a ``tideflow.deployment.schedule.quarantined`` event, while the deployment's other
schedules keep their runs; a row changed since it was read is left alone."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import sqlalchemy as sa
from services_helpers import make_deployment, migrated

from tideflow.schemas import FlowRunFilter
from tideflow.server.services.scheduler import SchedulerService
from tideflow.server.storage import Database
from tideflow.server.storage import deployment_schedules as schedules
from tideflow.server.storage.flow_runs import read_flow_runs
from tideflow.server.storage.tables import deployment_schedules, events
from tideflow.settings import get_settings

pytestmark = pytest.mark.anyio

NOW = dt.datetime(2030, 1, 1, 0, 30, tzinfo=dt.UTC)
EXPENSIVE = {
    "type": "rrule",
    "rrule": "FREQ=SECONDLY;COUNT=1000000000;BYMINUTE=0",
    "timezone": "UTC",
}
UNPARSABLE = {"type": "cron", "cron": "0 9 * * *", "timezone": "x" * 5000}


async def store_directly(db: Database, schedule_id: Any, schedule: dict[str, Any]) -> None:
    async with db.write() as session:
        await session.execute(
            sa.update(deployment_schedules)
            .where(deployment_schedules.c.id == schedule_id)
            .values(schedule=schedule)
        )


async def quarantine_events(db: Database) -> list[Any]:
    async with db.read() as session:
        rows = await session.execute(
            sa.select(events.c.resource_id, events.c.payload).where(
                events.c.event == "tideflow.deployment.schedule.quarantined"
            )
        )
        return list(rows)


@pytest.mark.parametrize("hostile", [EXPENSIVE, UNPARSABLE], ids=["expensive", "unparsable"])
async def test_a_schedule_that_cannot_be_computed_is_quarantined(
    database_url: str, hostile: dict[str, Any]
) -> None:
    async with migrated(database_url) as db:
        d = await make_deployment(
            db, schedules=[{"schedule": {"interval": 3600}}, {"schedule": {"interval": 60}}]
        )
        bad = d.schedules[1].id
        await store_directly(db, bad, hostile)
        service = SchedulerService(db, get_settings(), clock=lambda: NOW)

        await service.run_once()

        assert service.quarantined == 1
        async with db.read() as session:
            rows = await schedules.read_schedule_rows(session, d.id)
            runs = await read_flow_runs(session, FlowRunFilter(limit=100))
        assert [(r.id, r.active) for r in rows] == [(d.schedules[0].id, True), (bad, False)]
        assert len(runs) == 3  # the hourly schedule's next runs
        [(resource_id, payload)] = await quarantine_events(db)
        assert resource_id == f"tideflow.deployment.{d.id}"
        assert payload["schedule_id"] == str(bad) and payload["active"] is False
        assert "too expensive" in payload["reason"] or "timezone is too long" in payload["reason"]

        await service.run_once()  # inactive now: not computed again, no second event
        assert service.quarantined == 1 and len(await quarantine_events(db)) == 1


async def test_a_row_changed_since_it_was_read_is_not_quarantined(database_url: str) -> None:
    async with migrated(database_url) as db:
        d = await make_deployment(db, schedules=[{"schedule": {"interval": 60}}])
        async with db.read() as session:
            [row] = await schedules.read_active_schedule_rows(session)
        await store_directly(db, row.id, {"type": "interval", "interval": 120, "timezone": "UTC"})
        async with db.write() as session:
            done = await schedules.quarantine_schedule(session, row, "stale", NOW)
        assert done is False
        async with db.read() as session:
            assert [r.active for r in await schedules.read_schedule_rows(session, d.id)] == [True]
        assert await quarantine_events(db) == []
