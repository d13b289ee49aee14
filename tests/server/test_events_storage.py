"""Event storage on SQLite and PostgreSQL: insert and dedupe, broker after commit, filter pages and
cursors, count-by buckets, pruning, and a property test of the SQL filter against
``EventFilter.includes``."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import uuid
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tideflow.schemas.events import Event, EventFilter
from tideflow.server.context import ServerContext
from tideflow.server.storage import Database
from tideflow.server.storage import events as storage
from tideflow.server.storage.migrate import upgrade_engine
from tideflow.server.storage.tables import event_resources
from tideflow.server.storage.tables import events as events_table
from tideflow.settings import get_settings

pytestmark = pytest.mark.anyio

T0 = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)


def ev(
    i: int,
    name: str = "tideflow.test.happened",
    resource: str = "res.a",
    related: list[dict[str, str]] | None = None,
    **labels: str,
) -> Event:
    return Event(
        id=uuid.UUID(int=i + 1),
        occurred=T0 + dt.timedelta(minutes=i),
        event=name,
        resource={"tideflow.resource.id": resource, **labels},
        related=related or [],
        payload={"i": i},
    )


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    await upgrade_engine(database.engine)
    try:
        yield database
    finally:
        await database.dispose()


async def test_insert_dedupes_by_id_and_publishes_after_commit(db: Database) -> None:
    context = ServerContext(settings=get_settings(), database=db)
    sub = context.broker.subscribe("events", lossless=True)
    related = [{"tideflow.resource.id": "flow.1", "tideflow.resource.role": "flow"}]
    async with db.write() as session:
        first = await storage.insert_events(session, [ev(0, related=related), ev(1), ev(0)])
        assert sub.qsize() == 0  # not before the commit
    assert [e.id for e in first] == [ev(0).id, ev(1).id]
    assert [(await sub.get()).id, (await sub.get()).id] == [ev(0).id, ev(1).id]
    # A batch mixing an already stored id with a new one: the old is dropped, the rest stored.
    async with db.write() as session:
        again = await storage.insert_events(session, [ev(1), ev(2)])
    assert [e.id for e in again] == [ev(2).id]
    assert sub.qsize() == 1
    async with db.read() as session:
        page = await storage.read_events(session, EventFilter())
        stored = await storage.read_event(session, ev(0).id)
        roles = (
            await session.execute(
                sa.select(event_resources.c.position, event_resources.c.resource_id,
                          event_resources.c.role)
                .where(event_resources.c.event_id == ev(0).id)
                .order_by(event_resources.c.position)
            )
        ).all()  # fmt: skip
    assert page.total == 3
    assert [e.id for e in page.events] == [ev(2).id, ev(1).id, ev(0).id]
    assert stored is not None and stored.related[0].role == "flow"
    assert stored.payload == {"i": 0} and stored.occurred == T0
    assert stored.received >= first[0].received - dt.timedelta(seconds=1)
    assert roles == [(1, "flow.1", "flow")]  # related only: the primary is events.resource_id
    # Rolled back: nothing stored, nothing published.
    with pytest.raises(RuntimeError):
        async with db.write() as session:
            await storage.insert_events(session, [ev(3)])
            raise RuntimeError("boom")
    async with db.read() as session:
        assert await storage.read_event(session, ev(3).id) is None
    assert sub.qsize() == 1


async def test_stored_columns_match_what_typed_binds_look_up(db: Database) -> None:
    # SQLite rows are bound by hand: every value must equal what SQLAlchemy's column types bind,
    # or lookups by id, time or follows would miss. Whole seconds and a non-UTC offset included.
    plus2 = dt.timezone(dt.timedelta(hours=2))
    batch = [
        Event(
            id=uuid.UUID(int=900 + i),
            occurred=occurred,
            event="bind.check",
            resource={"tideflow.resource.id": f"bind.r{i}", "x": "é"},
            related=[{"tideflow.resource.id": "bind.flow", "tideflow.resource.role": "flow"}],
            payload={"n": i, "text": "ü", "nested": [1, {"a": None}]},
            follows=uuid.UUID(int=899 + i) if i else None,
        )
        for i, occurred in enumerate(
            [T0, T0.replace(microsecond=123), dt.datetime(2030, 1, 1, 14, 0, 0, 7, tzinfo=plus2)]
        )
    ]
    # Validation converts to UTC; an unvalidated copy keeps its offset and must be stored the same.
    batch.append(batch[2].model_copy(update={"id": uuid.UUID(int=990), "occurred": batch[2]
                                             .occurred.astimezone(plus2)}))  # fmt: skip
    async with db.write() as session:
        stored = await storage.insert_events(session, batch)
    e, er = events_table.c, event_resources.c
    async with db.read() as session:
        for want, got in zip(batch, stored, strict=True):
            hits = await session.scalar(
                sa.select(sa.func.count()).select_from(events_table).where(
                    e.id == want.id, e.occurred == want.occurred, e.received == got.received,
                    e.follows == want.follows if want.follows else e.follows.is_(None),
                    e.resource_id == want.resource.id,
                )
            )  # fmt: skip
            assert hits == 1
            rows = await session.scalar(
                sa.select(sa.func.count()).select_from(event_resources).where(
                    er.event_id == want.id, er.occurred == want.occurred
                )
            )  # fmt: skip
            assert rows == 1  # the related resource; the primary is events.resource_id
            back = await storage.read_event(session, want.id)
            assert back is not None
            assert back.model_dump(exclude={"received"}) == want.model_dump()
            assert back.received == got.received


async def test_pages_follow_the_cursor_in_both_orders(db: Database) -> None:
    # Equal occurred times: the id breaks the tie.
    same = [
        Event(
            id=uuid.UUID(int=100 + i),
            occurred=T0,
            event="x.y",
            resource={"tideflow.resource.id": "r"},
        )
        for i in range(5)
    ]
    async with db.write() as session:
        await storage.insert_events(session, [ev(i) for i in range(7)] + same)
    expected = sorted([ev(i) for i in range(7)] + same, key=lambda e: (e.occurred, e.id.int))
    for order, want in (("newest", expected[::-1]), ("oldest", expected)):
        seen: list[uuid.UUID] = []
        flt = EventFilter(order=order, limit=3)
        while True:
            async with db.read() as session:
                page = await storage.read_events(session, flt)
            assert page.total == 12
            seen += [e.id for e in page.events]
            if page.next_cursor is None:
                break
            flt = flt.model_copy(update={"cursor": page.next_cursor})
        assert seen == [e.id for e in want]


async def test_count_by_buckets(db: Database) -> None:
    batch = [ev(i * 30, name="a.one" if i % 3 else "a.two", resource=f"r{i % 2}") for i in range(6)]
    batch.append(ev(60 * 25, name="b.other"))
    async with db.write() as session:
        await storage.insert_events(session, batch)
    async with db.read() as session:
        days = await storage.count_events_by(session, EventFilter(), "day")
        hours = await storage.count_events_by(session, EventFilter(event_prefixes=["a."]), "hour")
        names = await storage.count_events_by(session, EventFilter(), "event")
        resources = await storage.count_events_by(session, EventFilter(), "resource")
    assert days == [
        {"value": "2030-01-01T00:00:00+00:00", "count": 6},
        {"value": "2030-01-02T00:00:00+00:00", "count": 1},
    ]
    assert hours == [
        {"value": "2030-01-01T00:00:00+00:00", "count": 2},
        {"value": "2030-01-01T01:00:00+00:00", "count": 2},
        {"value": "2030-01-01T02:00:00+00:00", "count": 2},
    ]
    assert names == [
        {"value": "a.one", "count": 4},
        {"value": "a.two", "count": 2},
        {"value": "b.other", "count": 1},
    ]
    assert resources == [
        {"value": "r0", "count": 3},
        {"value": "r1", "count": 3},
        {"value": "res.a", "count": 1},
    ]


async def test_delete_events_before_in_batches(db: Database) -> None:
    related = [{"tideflow.resource.id": "x", "tideflow.resource.role": "r"}]
    async with db.write() as session:
        await storage.insert_events(session, [ev(i, related=related) for i in range(10)])
    cutoff = T0 + dt.timedelta(minutes=7)
    deleted = []
    while True:
        async with db.write() as session:
            n = await storage.delete_events_before(session, cutoff, 3)
        if not n:
            break
        deleted.append(n)
    assert deleted == [3, 3, 1]
    async with db.read() as session:
        page = await storage.read_events(session, EventFilter(order="oldest"))
        left = (
            await session.execute(sa.select(sa.func.count()).select_from(event_resources))
        ).scalar_one()
    assert [e.payload["i"] for e in page.events] == [7, 8, 9]
    assert left == 3  # one related row each (the primary resource has none)


# --- the SQL filter equals the reference predicate --------------------------------------------

NAMES = ["tideflow.flow-run.Completed", "tideflow.flow-run.Failed", "tideflow.deployment.created",
         "Custom.Event", "custom.event", "a_b%c", "star*name", "q?[x]"]  # fmt: skip
IDS = ["tideflow.flow-run.1", "tideflow.flow-run.2", "tideflow.flow.9", "res_%", "RES_%"]
ROLES = ["flow", "deployment", "tag", "creator"]
LABEL_VALUES = ["alpha", "Alpha", "beta", "al*", "a_%", "x[1]"]


def _population(n: int = 150) -> list[Event]:
    rnd = random.Random(7)
    out = []
    for _i in range(n):
        labels = {k: rnd.choice(LABEL_VALUES) for k in ("env", "team") if rnd.random() < 0.6}
        related = []
        for _ in range(rnd.randint(0, 3)):
            rel = {
                "tideflow.resource.id": rnd.choice(IDS),
                "tideflow.resource.role": rnd.choice(ROLES),
            }
            if rnd.random() < 0.5:
                rel["env"] = rnd.choice(LABEL_VALUES)
            related.append(rel)
        out.append(
            Event(
                id=uuid.UUID(int=rnd.getrandbits(128)),
                occurred=T0 + dt.timedelta(seconds=rnd.randint(0, 50)),
                event=rnd.choice(NAMES),
                resource={"tideflow.resource.id": rnd.choice(IDS), **labels},
                related=related,
            )
        )
    return out


_pattern = st.sampled_from(["*", "tideflow.*", "*.Completed", "*flow*", "a_b%c", "star*", "q?[x]",
                            "custom.*", "Custom.*", "*name", "tideflow.*.created"])  # fmt: skip
_prefix = st.sampled_from(
    ["tideflow.", "tideflow.flow-run.", "Custom", "a_", "star*", "q?[", "res_"]
)
_value = st.lists(
    st.sampled_from([*LABEL_VALUES, "!alpha", "!al*", "!a_%", "a*", "*"]), min_size=1, max_size=3
)
_spec = st.dictionaries(
    st.sampled_from(["env", "team", "tideflow.resource.id"]), _value, max_size=2
)


def _opt(strategy: st.SearchStrategy) -> st.SearchStrategy:  # type: ignore[type-arg]
    return st.none() | strategy


_filters = st.builds(
    EventFilter,
    occurred_after=_opt(st.integers(0, 50).map(lambda s: T0 + dt.timedelta(seconds=s))),
    occurred_before=_opt(st.integers(0, 50).map(lambda s: T0 + dt.timedelta(seconds=s))),
    event_names=_opt(st.lists(st.sampled_from(NAMES), max_size=2)),
    event_prefixes=_opt(st.lists(_prefix, max_size=2)),
    event_patterns=_opt(st.lists(_pattern, max_size=2)),
    exclude_event_prefixes=_opt(st.lists(_prefix, max_size=1)),
    resource_ids=_opt(st.lists(st.sampled_from(IDS), max_size=2)),
    resource_id_prefixes=_opt(st.lists(_prefix, max_size=1)),
    resource_labels=_opt(_spec),
    related_ids=_opt(st.lists(st.sampled_from(IDS), max_size=2)),
    related_roles=_opt(st.lists(st.sampled_from(ROLES), max_size=2)),
    related_labels=_opt(_spec),
    any_resource_ids=_opt(st.lists(st.sampled_from(IDS), max_size=2)),
    order=st.sampled_from(["newest", "oldest"]),
    limit=st.just(500),
)


@pytest.mark.timeout(300)
def test_sql_filter_equals_reference_predicate(database_url: str) -> None:
    population = _population()
    with asyncio.Runner() as runner:
        database = Database(database_url)

        async def setup() -> None:
            await upgrade_engine(database.engine)
            async with database.write() as session:
                await storage.insert_events(session, population)

        async def query(flt: EventFilter) -> list[uuid.UUID]:
            async with database.read() as session:
                page = await storage.read_events(session, flt)
                counts = await storage.count_events_by(session, flt, "event")
            assert page.total == len(page.events) == sum(c["count"] for c in counts)
            return [e.id for e in page.events]

        runner.run(setup())
        try:

            @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
            @given(flt=_filters)
            def check(flt: EventFilter) -> None:
                want = sorted(
                    (e for e in population if flt.includes(e)), key=lambda e: (e.occurred, e.id.int)
                )
                if flt.order == "newest":
                    want.reverse()
                assert runner.run(query(flt)) == [e.id for e in want]

            check()
        finally:
            runner.run(database.dispose())
