"""The retention service deletes events older than events_retention_days, in batches, by its clock."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator

import pytest

from tideflow.schemas.events import Event, EventFilter
from tideflow.server.services.event_retention import EventRetentionService
from tideflow.server.storage import Database
from tideflow.server.storage import events as storage
from tideflow.server.storage.migrate import upgrade_engine
from tideflow.settings import Settings

pytestmark = pytest.mark.anyio

T0 = dt.datetime(2030, 1, 10, tzinfo=dt.UTC)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    await upgrade_engine(database.engine)
    try:
        yield database
    finally:
        await database.dispose()


async def test_run_once_prunes_by_the_injected_clock(db: Database) -> None:
    related = [{"tideflow.resource.id": "x", "tideflow.resource.role": "r"}]
    batch = [
        Event(id=uuid.UUID(int=i + 1), occurred=T0 - dt.timedelta(hours=12 * i), event="a.b",
              resource={"tideflow.resource.id": "r"}, related=related)
        for i in range(10)
    ]  # fmt: skip
    async with db.write() as session:
        await storage.insert_events(session, batch)
    now = [T0]
    service = EventRetentionService(
        db, Settings(events_retention_days=2), clock=lambda: now[0], batch=3
    )
    await service.run_once()
    async with db.read() as session:
        left = await storage.read_events(session, EventFilter(order="oldest"))
    # Older than 2 days before T0: offsets 2.5, 3, ... 4.5 days (i = 5..9) -> deleted.
    assert service.deleted == 5
    assert sorted(e.id.int - 1 for e in left.events) == [0, 1, 2, 3, 4]
    await service.run_once()
    assert service.deleted == 5
    now[0] = T0 + dt.timedelta(days=1)
    await service.run_once()
    assert service.deleted == 7
