"""Related-id pages, driven by ``event_resources`` (migration 0005), on SQLite and PostgreSQL:
paged through the cursor with a small limit they list exactly the events ``EventFilter.includes``
accepts, once each (an id twice in one event's related list, several ids, roles, other criteria),
with the right total; on SQLite the page is read in order from the index, never sorted."""

from __future__ import annotations

import datetime as dt
import random
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tideflow.schemas.events import Event, EventFilter
from tideflow.server.storage import Database
from tideflow.server.storage import events as storage
from tideflow.server.storage.migrate import upgrade_engine

pytestmark = pytest.mark.anyio

T0 = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
IDS = ["tideflow.flow.1", "tideflow.flow.2", "tideflow.deployment.3"]
ROLES = ["flow", "deployment", "tag"]


def _population(n: int = 120) -> list[Event]:
    rnd = random.Random(11)
    out = []
    for _ in range(n):
        related = [
            {"tideflow.resource.id": rnd.choice(IDS), "tideflow.resource.role": rnd.choice(ROLES)}
            for _ in range(rnd.randint(0, 4))
        ]
        out.append(
            Event(
                id=uuid.UUID(int=rnd.getrandbits(128)),
                occurred=T0 + dt.timedelta(seconds=rnd.randint(0, 20)),  # many equal times
                event=rnd.choice(["a.done", "b.done"]),
                # The primary resource may carry a related id too: it must not count as related.
                resource={"tideflow.resource.id": rnd.choice([*IDS, "res.x"])},
                related=related,
            )
        )
    return out


FILTERS = [
    EventFilter(related_ids=["tideflow.flow.1"]),
    EventFilter(related_ids=["tideflow.flow.1", "tideflow.deployment.3"]),
    EventFilter(related_ids=["tideflow.flow.2"], related_roles=["flow", "tag"]),
    EventFilter(related_ids=["tideflow.flow.1"], event_names=["b.done"]),
    EventFilter(related_ids=["tideflow.flow.2"], occurred_after=T0 + dt.timedelta(seconds=8)),
    EventFilter(related_ids=["nobody"]),
    EventFilter(related_ids=[]),
]


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    await upgrade_engine(database.engine)
    try:
        yield database
    finally:
        await database.dispose()


@pytest.mark.parametrize("order", ["newest", "oldest"])
async def test_related_pages_equal_the_reference_predicate(db: Database, order: str) -> None:
    population = _population()
    async with db.write() as session:
        await storage.insert_events(session, population)
    assert any(len([r for r in e.related if r.id == "tideflow.flow.1"]) > 1 for e in population), (
        "the population must hold an event relating one id twice"
    )
    for base in FILTERS:
        want = sorted(
            (e for e in population if base.includes(e)), key=lambda e: (e.occurred, e.id.int)
        )
        if order == "newest":
            want.reverse()
        flt = base.model_copy(update={"order": order, "limit": 4})
        seen: list[uuid.UUID] = []
        while True:
            async with db.read() as session:
                page = await storage.read_events(session, flt)
            assert page.total == len(want), base
            seen += [e.id for e in page.events]
            if page.next_cursor is None:
                break
            flt = flt.model_copy(update={"cursor": page.next_cursor})
        assert seen == [e.id for e in want], base


async def test_sqlite_reads_a_related_page_in_order_from_the_index(tmp_path: Path) -> None:
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'plan.db'}")
    seen: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        if "ORDER BY" in statement:
            seen.append((statement, params))

    try:
        await upgrade_engine(database.engine)
        async with database.write() as session:
            await storage.insert_events(session, _population())
        sa.event.listen(database.engine.sync_engine, "before_cursor_execute", capture)
        async with database.read() as session:
            await storage.read_events(session, EventFilter(related_ids=["tideflow.flow.1"]))
        sa.event.remove(database.engine.sync_engine, "before_cursor_execute", capture)
        assert len(seen) == 1, seen
        async with database.read() as session:
            result = await session.connection()
            rows = await result.exec_driver_sql(f"EXPLAIN QUERY PLAN {seen[0][0]}", seen[0][1])
            plan = " | ".join(str(r[-1]) for r in rows)
    finally:
        await database.dispose()
    assert "ix_event_resources_resource_id_occurred_event_id_position" in plan, plan
    assert "TEMP B-TREE" not in plan, plan
