"""Migration 0012: ``event_resources`` keeps related resources only. Upgrading deletes the rows of
primary resources (position 0) written before it, and filters still find events by any resource;
downgrading writes them back."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
import sqlalchemy as sa

from tideflow.schemas.events import EventFilter
from tideflow.server.storage import Database, migrate
from tideflow.server.storage import events as storage
from tideflow.server.storage.tables import event_resources, events

pytestmark = pytest.mark.anyio

T0 = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)


async def _rows(db: Database) -> list[tuple[int, str, str]]:
    async with db.read() as session:
        result = await session.execute(
            sa.text("SELECT position, resource_id, role FROM event_resources ORDER BY position")
        )
        return [(int(r[0]), str(r[1]), str(r[2])) for r in result]


async def test_upgrade_drops_primary_rows_and_downgrade_restores_them(database_url: str) -> None:
    await migrate.upgrade(database_url, "0009")
    event_id = uuid.uuid4()
    db = Database(database_url)
    try:
        async with db.write() as session:  # as the code before 0012 wrote an event
            await session.execute(
                sa.insert(events).values(
                    id=event_id, occurred=T0, event="m.e", resource_id="m.res",
                    resource={"tideflow.resource.id": "m.res"},
                    related=[{"tideflow.resource.id": "m.flow", "tideflow.resource.role": "flow"}],
                    payload={}, received=T0,
                )
            )  # fmt: skip
            await session.execute(
                sa.insert(event_resources),
                [
                    {"event_id": event_id, "position": position, "resource_id": rid,
                     "role": role, "occurred": T0}
                    for position, rid, role in ((0, "m.res", ""), (1, "m.flow", "flow"))
                ],
            )  # fmt: skip
    finally:
        await db.dispose()
    await migrate.upgrade(database_url)
    db = Database(database_url)
    try:
        assert await _rows(db) == [(1, "m.flow", "flow")]
        async with db.read() as session:
            for ids in (["m.res"], ["m.flow"]):
                page = await storage.read_events(session, EventFilter(any_resource_ids=ids))
                assert [e.id for e in page.events] == [event_id]
    finally:
        await db.dispose()
    await migrate.downgrade(database_url, "0009")
    db = Database(database_url)
    try:
        assert await _rows(db) == [(0, "m.res", ""), (1, "m.flow", "flow")]
    finally:
        await db.dispose()
