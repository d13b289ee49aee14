"""Event storage: insert (deduplicated by id), read one, filter a page, count by bucket, prune.

``insert_events`` stamps ``received``, drops ids already stored (SQLite: looked up under the write
lock; PostgreSQL: ``ON CONFLICT DO NOTHING``; either way the transaction goes on), writes one
``event_resources`` row per related resource of each new event (the primary resource is found
through ``events.resource_id``, so it gets no row: one index row fewer per event) and queues the new events for the broker's
``"events"`` topic (published after commit). Both backends bypass SQLAlchemy's per-value bind
processing for these rows (see below): it cost more than the databases' own work.
The filter SQL is built in ``storage.event_filters``; it must return exactly what
``EventFilter.includes`` accepts.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, Literal
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from tideflow.schemas.assets import ASSET_EVENT_PREFIX
from tideflow.schemas.events import (
    Event,
    EventFilter,
    EventPage,
    ReceivedEvent,
    decode_cursor,
    encode_cursor,
)
from tideflow.server.events.hotpath import gc_paused, json_text
from tideflow.server.storage.assets import record_materializations
from tideflow.server.storage.dialect import dialect_name
from tideflow.server.storage.event_filters import filter_clauses, first_related_row, related_rows
from tideflow.server.storage.outbox import publish_after_commit
from tideflow.server.storage.tables import event_resources, events

__all__ = [
    "EVENTS_TOPIC",
    "CountBy",
    "count_events_by",
    "delete_events_before",
    "insert_events",
    "read_event",
    "read_events",
    "read_events_by_ids",
]

EVENTS_TOPIC = "events"
_RECEIVED_FIELDS = frozenset([*Event.model_fields, "received"])
CountBy = Literal["day", "hour", "event", "resource"]


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# --- SQLite: rows bound by hand ------------------------------------------------------------------
# SQLAlchemy's per-value bind processing (UUID, UTC datetime, JSON) cost more than SQLite's own
# insert work (~55 of ~80 us per event). On SQLite the rows are built here in exactly the form those
# processors store (hex UUIDs, naive-UTC "YYYY-MM-DD HH:MM:SS.ffffff", ``json.dumps`` text; a test
# holds them equal) and run with the driver's executemany in the session's transaction.

_SQLITE_EXISTING = "SELECT id FROM events WHERE id IN ({})"
_SQLITE_EVENTS = (
    "INSERT INTO events (id, occurred, event, resource_id, resource, related, payload, follows, "
    "received) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_SQLITE_RESOURCES = (
    "INSERT INTO event_resources (event_id, position, resource_id, role, occurred) "
    "VALUES (?, ?, ?, ?, ?)"
)


def _sqlite_time(value: dt.datetime) -> str:
    # UTCDateTime: naive means UTC; stored naive in UTC with microseconds always written. The
    # first 26 characters of isoformat are exactly that (the year is always 4 digits).
    if value.tzinfo is not dt.UTC and value.tzinfo is not None and value.utcoffset():
        value = value.astimezone(dt.UTC)
    return value.isoformat(" ", "microseconds")[:26]


async def _insert_sqlite(
    session: AsyncSession, pending: list[Event], received: dt.datetime, *, fresh: bool = False
) -> list[Event]:
    # The write transaction holds SQLite's lock (BEGIN IMMEDIATE): the ids found here stay the
    # only stored ones until the insert below, so no ON CONFLICT is needed.
    conn = await session.connection()
    hexes = [e.id.hex for e in pending]
    existing: set[str] = set()
    for start in range(0, 0 if fresh else len(hexes), 10_000):  # < SQLite's 32,766 variables
        chunk = hexes[start : start + 10_000]
        query = _SQLITE_EXISTING.format(",".join("?" * len(chunk)))
        existing.update(r[0] for r in await conn.exec_driver_sql(query, tuple(chunk)))
    rows: list[tuple[Any, ...]] = []
    resource_rows: list[tuple[Any, ...]] = []
    new: list[Event] = []
    with gc_paused():
        received_text = _sqlite_time(received)
        dumps = json_text
        for event, ident in zip(pending, hexes, strict=True):
            if ident in existing:
                continue
            existing.add(ident)
            new.append(event)
            occurred = _sqlite_time(event.occurred)
            resource, related = event.resource, event.related
            rows.append(
                (ident, occurred, event.event, resource.id, dumps(resource.root),
                 dumps([r.root for r in related]), dumps(event.payload),
                 event.follows.hex if event.follows is not None else None, received_text)
            )  # fmt: skip
            resource_rows += [
                (ident, i, r.id, r.role, occurred) for i, r in enumerate(related, start=1)
            ]
    if new:
        await conn.exec_driver_sql(_SQLITE_EVENTS, rows)
    if resource_rows:
        await conn.exec_driver_sql(_SQLITE_RESOURCES, resource_rows)
    return new


# --- PostgreSQL: one statement per table over arrays ----------------------------------------------
# unnest() of one array per column: a single prepared statement whatever the batch size, and the
# values go to asyncpg in its native types (UUID, aware datetime; JSON text for jsonb), not through
# SQLAlchemy's per-value processing. ON CONFLICT because PostgreSQL writers run concurrently.

_PG_EVENTS = (
    "INSERT INTO events (id, occurred, event, resource_id, resource, related, payload, follows, "
    "received) SELECT i, o, e, r, rs, rl, p, f, $9::timestamptz FROM unnest($1::uuid[], "
    "$2::timestamptz[], $3::varchar[], $4::varchar[], $5::jsonb[], $6::jsonb[], $7::jsonb[], "
    "$8::uuid[]) AS t(i, o, e, r, rs, rl, p, f) ON CONFLICT (id) DO NOTHING RETURNING id"
)
_PG_RESOURCES = (
    "INSERT INTO event_resources (event_id, position, resource_id, role, occurred) "
    "SELECT * FROM unnest($1::uuid[], $2::int[], $3::varchar[], $4::varchar[], $5::timestamptz[])"
)


async def _insert_postgres(
    session: AsyncSession, pending: list[Event], received: dt.datetime
) -> list[Event]:
    conn = await session.connection()
    dumps = json_text
    with gc_paused():
        columns: list[list[Any]] = [[] for _ in range(8)]
        ids, occurred, names, resource_ids, resources, related, payloads, follows = columns
        for e in pending:
            ids.append(e.id)
            occurred.append(e.occurred)
            names.append(e.event)
            resource_ids.append(e.resource.id)
            resources.append(dumps(e.resource.root))
            related.append(dumps([r.root for r in e.related]))
            payloads.append(dumps(e.payload))
            follows.append(e.follows)
    result = await conn.exec_driver_sql(_PG_EVENTS, (*columns, received))
    stored = {row[0] for row in result}
    new = [e for e in pending if e.id in stored]
    if new:
        with gc_paused():
            rows: list[list[Any]] = [[] for _ in range(5)]
            event_ids, positions, rids, roles, times = rows
            for e in new:
                for position, (rid, role) in enumerate(
                    [(r.id, r.role) for r in e.related], start=1
                ):
                    event_ids.append(e.id)
                    positions.append(position)
                    rids.append(rid)
                    roles.append(role)
                    times.append(e.occurred)
        if event_ids:
            await conn.exec_driver_sql(_PG_RESOURCES, tuple(rows))
    return new


async def insert_events(
    session: AsyncSession, batch: Sequence[Event], *, fresh: bool = False
) -> list[ReceivedEvent]:
    """Store the events whose ids are new; the stored ones, in batch order, as ReceivedEvents.

    ``fresh``: the caller built these events with ids nothing stored can have (the server's own
    state events, named after new state ids), so the duplicate lookup is skipped.
    """
    received = _utcnow()
    unique: dict[UUID, Event] = {}
    for event in batch:
        unique.setdefault(event.id, event)
    if not unique:
        return []
    pending = list(unique.values())
    if dialect_name(session) == "sqlite":
        new = await _insert_sqlite(session, pending, received, fresh=fresh)
    else:
        new = await _insert_postgres(session, pending, received)
    # Already validated: the stored event is built from its fields without validating again.
    with gc_paused():
        out = [
            ReceivedEvent.model_construct(set(_RECEIVED_FIELDS), **e.__dict__, received=received)
            for e in new
        ]
    for ev in out:
        publish_after_commit(session, EVENTS_TOPIC, ev)
    # The asset catalogue commits with the materialization events it is kept from (ADR 0021).
    materialized = [e for e in out if e.event.startswith(ASSET_EVENT_PREFIX)]
    if materialized:
        await record_materializations(session, materialized)
    return out


def _event(row: Any) -> ReceivedEvent:
    m = row._mapping
    return ReceivedEvent.model_validate(
        {
            "id": m["id"],
            "occurred": m["occurred"],
            "event": m["event"],
            "resource": m["resource"],
            "related": m["related"],
            "payload": m["payload"],
            "follows": m["follows"],
            "received": m["received"],
        }
    )


async def read_event(session: AsyncSession, event_id: UUID) -> ReceivedEvent | None:
    row = (await session.execute(sa.select(events).where(events.c.id == event_id))).first()
    return _event(row) if row is not None else None


async def read_events_by_ids(session: AsyncSession, event_ids: list[UUID]) -> list[ReceivedEvent]:
    """The stored events among ``event_ids`` (any order; missing ones are left out)."""
    if not event_ids:
        return []
    stmt = sa.select(events).where(events.c.id.in_(event_ids))
    return [_event(row) for row in await session.execute(stmt)]


def _cursor_clause(
    flt: EventFilter, occurred_col: sa.ColumnElement[Any], id_col: sa.ColumnElement[Any]
) -> sa.ColumnElement[bool] | None:
    if flt.cursor is None:
        return None
    occurred, ident = decode_cursor(flt.cursor)
    if flt.order == "newest":
        return sa.or_(occurred_col < occurred, sa.and_(occurred_col == occurred, id_col < ident))
    return sa.or_(occurred_col > occurred, sa.and_(occurred_col == occurred, id_col > ident))


async def read_events(session: AsyncSession, flt: EventFilter) -> EventPage:
    """One page of the events ``flt`` includes, in its order, with the total and the next cursor.

    With related ids the page is driven by ``event_resources`` (its (resource_id, occurred,
    event_id) index gives the page order; each row carries its event's occurred and id), the total
    counted from that index, instead of collecting and sorting every related event.
    """
    dialect = dialect_name(session)
    rows_where = related_rows(flt)
    driven = rows_where is not None
    where = filter_clauses(flt, dialect, related=not driven)
    page_where = filter_clauses(flt, dialect, for_page=True, related=not driven)
    source: sa.FromClause = events
    if rows_where is not None:
        er = event_resources.c
        occurred_col, id_col = er.occurred, er.event_id
        source = event_resources.join(events, events.c.id == er.event_id)
        page_where += [*rows_where, first_related_row(flt)]
        counted = sa.func.count(sa.distinct(er.event_id))
        total_stmt = sa.select(counted).select_from(source if where else event_resources)
        total_stmt = total_stmt.where(*rows_where, *where)
    else:
        occurred_col, id_col = events.c.occurred, events.c.id
        total_stmt = sa.select(sa.func.count()).select_from(events).where(*where)
    order = (
        [occurred_col.desc(), id_col.desc()]
        if flt.order == "newest"
        else [occurred_col.asc(), id_col.asc()]
    )
    stmt = (
        sa.select(events).select_from(source).where(*page_where).order_by(*order)
        .limit(flt.limit + 1)
    )  # fmt: skip
    cursor = _cursor_clause(flt, occurred_col, id_col)
    if cursor is not None:
        stmt = stmt.where(cursor)
    rows = list(await session.execute(stmt))
    page = [_event(r) for r in rows[: flt.limit]]
    total = int((await session.execute(total_stmt)).scalar_one())
    next_cursor = (
        encode_cursor(page[-1].occurred, page[-1].id) if len(rows) > flt.limit and page else None
    )
    return EventPage(events=page, next_cursor=next_cursor, total=total)


def _bucket(by: CountBy, dialect: str) -> sa.ColumnElement[Any]:
    c = events.c
    if by == "event":
        return c.event
    if by == "resource":
        return c.resource_id
    if dialect == "postgresql":
        fmt = "YYYY-MM-DD" if by == "day" else 'YYYY-MM-DD"T"HH24'
        return sa.func.to_char(sa.func.timezone("UTC", c.occurred), fmt)
    return sa.func.strftime("%Y-%m-%d" if by == "day" else "%Y-%m-%dT%H", c.occurred)


def _bucket_value(by: CountBy, raw: str) -> str:
    if by == "day":
        return f"{raw}T00:00:00+00:00"
    if by == "hour":
        return f"{raw}:00:00+00:00"
    return raw


async def count_events_by(
    session: AsyncSession, flt: EventFilter, by: CountBy
) -> list[dict[str, Any]]:
    """``[{"value", "count"}]`` of the events ``flt`` includes: time buckets (UTC start, ISO)
    oldest first, or event names / resource ids most frequent first (limit and cursor ignored)."""
    bucket = _bucket(by, dialect_name(session)).label("bucket")
    count = sa.func.count().label("n")
    stmt = (
        sa.select(bucket, count).where(*filter_clauses(flt, dialect_name(session))).group_by(bucket)
    )
    stmt = stmt.order_by(bucket) if by in ("day", "hour") else stmt.order_by(count.desc(), bucket)
    return [
        {"value": _bucket_value(by, row.bucket), "count": int(row.n)}
        for row in await session.execute(stmt)
    ]


async def delete_events_before(session: AsyncSession, cutoff: dt.datetime, limit: int) -> int:
    """Delete up to ``limit`` of the oldest events that occurred before ``cutoff`` (and their
    resource rows); how many were deleted."""
    ids = list(
        (
            await session.execute(
                sa.select(events.c.id)
                .where(events.c.occurred < cutoff)
                .order_by(events.c.occurred)
                .limit(limit)
            )
        ).scalars()
    )
    if not ids:
        return 0
    # Explicit rather than relying on ON DELETE CASCADE being enabled on the connection.
    await session.execute(sa.delete(event_resources).where(event_resources.c.event_id.in_(ids)))
    await session.execute(sa.delete(events).where(events.c.id.in_(ids)))
    return len(ids)
