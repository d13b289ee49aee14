"""The asset catalogue: recorded from materialization events as they are stored; read, list,
lineage, delete.

``record_materializations`` runs inside ``insert_events``' transaction for the events it newly
stored (a duplicate event counts once): the catalogue commits with its events or not at all, so
a flow-run process that dies after its events were acknowledged loses nothing (docs/adr/0021).
``last_*`` follow the newest materialization by event time, whatever order events arrive in. On
PostgreSQL a transaction-scoped advisory lock per key serialises two writers of one asset.
"""

from __future__ import annotations

import datetime as dt
import zlib
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from tideflow.schemas.assets import (
    MAX_LINEAGE_DEPTH,
    AssetEdge,
    AssetFilter,
    AssetLineage,
    AssetRecord,
)
from tideflow.schemas.events import Event
from tideflow.server.events.asset_events import Materialization, materialization_facts
from tideflow.server.storage.dialect import dialect_insert, dialect_name
from tideflow.server.storage.tables import asset_dependencies, assets

__all__ = [
    "MAX_LINEAGE_NODES",
    "delete_asset",
    "read_asset",
    "read_assets",
    "read_lineage",
    "record_materializations",
]

MAX_LINEAGE_NODES = 500
_A = assets.c
_D = asset_dependencies.c
_LOCK_SPACE = 0x7446_4173  # advisory lock namespace ("tFAs")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


async def _lock_key(session: AsyncSession, key: str) -> None:
    if dialect_name(session) == "postgresql":
        digest = zlib.crc32(key.encode()) - 2**31
        await session.execute(
            sa.text("SELECT pg_advisory_xact_lock(:space, :key)"),
            {"space": _LOCK_SPACE, "key": digest},
        )


def _empty_row(key: str, now: dt.datetime) -> dict[str, Any]:
    return {"key": key, "properties": None, "last_metadata": None, "materializations": 0,
            "created": now, "updated": now}  # fmt: skip


async def _ensure(session: AsyncSession, keys: Sequence[str], now: dt.datetime) -> None:
    """Catalogue rows for ``keys`` (upstreams seen before they are materialized here)."""
    if not keys:
        return
    insert = dialect_insert(session)
    stmt = insert(assets).values([_empty_row(k, now) for k in keys])
    await session.execute(stmt.on_conflict_do_nothing(index_elements=["key"]))


async def _record(session: AsyncSession, m: Materialization, now: dt.datetime) -> None:
    row = (
        await session.execute(
            sa.select(_A.last_materialized, _A.materializations).where(_A.key == m.key)
        )
    ).first()
    changes: dict[str, Any] = {"updated": now}
    if m.properties is not None:
        changes["properties"] = m.properties
    newest = row is None or row.last_materialized is None or m.occurred >= row.last_materialized
    if newest:
        changes.update(
            last_materialized=m.occurred, last_status=m.status, last_event_id=m.event_id,
            last_flow_run_id=m.flow_run_id, last_task_run_id=m.task_run_id,
            last_metadata=m.metadata, last_error=m.error,
        )  # fmt: skip
    if row is None:
        values = {**_empty_row(m.key, now), **changes, "materializations": 1}
        await session.execute(sa.insert(assets).values(**values))
    else:
        changes["materializations"] = row.materializations + 1
        await session.execute(sa.update(assets).where(_A.key == m.key).values(**changes))
    if m.upstream:
        await _ensure(session, m.upstream, now)
        insert = dialect_insert(session)
        stmt = insert(asset_dependencies).values(
            [{"upstream": u, "downstream": m.key, "updated": now} for u in m.upstream]
        )
        await session.execute(
            stmt.on_conflict_do_update(
                index_elements=["upstream", "downstream"], set_={"updated": now}
            )
        )


async def record_materializations(session: AsyncSession, events: Sequence[Event]) -> int:
    """Catalogue the materializations among ``events`` (newly stored); how many were recorded."""
    facts = [f for f in map(materialization_facts, events) if f is not None]
    now = _now()
    # Every key this batch writes (rows and edges), locked up front in one order: two batches
    # locking them as they come could each wait for the other (a deadlock on PostgreSQL).
    for key in sorted({k for f in facts for k in (f.key, *f.upstream)}):
        await _lock_key(session, key)
    for m in sorted(facts, key=lambda f: f.occurred):
        await _record(session, m, now)
    return len(facts)


def _record_of(row: Any, upstream: list[str], downstream: list[str]) -> AssetRecord:
    m = dict(row._mapping)
    m["properties"] = m["properties"] or {}
    m["last_metadata"] = m["last_metadata"] or {}
    return AssetRecord.model_validate({**m, "upstream": upstream, "downstream": downstream})


async def _edges_of(
    session: AsyncSession, keys: Sequence[str]
) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """Upstreams and downstreams of each of ``keys``."""
    ups: dict[str, list[str]] = {k: [] for k in keys}
    downs: dict[str, list[str]] = {k: [] for k in keys}
    for start in range(0, len(keys), 500):
        chunk = list(keys[start : start + 500])
        stmt = (
            sa.select(_D.upstream, _D.downstream)
            .where(sa.or_(_D.downstream.in_(chunk), _D.upstream.in_(chunk)))
            .order_by(_D.upstream, _D.downstream)
        )
        for up, down in await session.execute(stmt):
            if down in ups and up not in ups[down]:
                ups[down].append(up)
            if up in downs and down not in downs[up]:
                downs[up].append(down)
    return ups, downs


async def _records(session: AsyncSession, rows: Sequence[Any]) -> list[AssetRecord]:
    keys = [r.key for r in rows]
    ups, downs = await _edges_of(session, keys)
    return [_record_of(r, ups[r.key], downs[r.key]) for r in rows]


async def read_asset(session: AsyncSession, key: str) -> AssetRecord | None:
    row = (await session.execute(sa.select(assets).where(_A.key == key))).first()
    if row is None:
        return None
    return (await _records(session, [row]))[0]


async def read_assets(session: AsyncSession, flt: AssetFilter) -> list[AssetRecord]:
    """Assets by key, narrowed by the filter."""
    stmt = sa.select(assets).order_by(_A.key)
    if flt.keys:
        stmt = stmt.where(_A.key.in_(flt.keys))
    if flt.key_prefix:
        escaped = flt.key_prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        stmt = stmt.where(_A.key.like(f"{escaped}%", escape="\\"))
    if flt.status:
        stmt = stmt.where(_A.last_status == flt.status)
    if flt.flow_run_id:
        stmt = stmt.where(_A.last_flow_run_id == flt.flow_run_id)
    rows = list(await session.execute(stmt.limit(flt.limit).offset(flt.offset)))
    return await _records(session, rows)


async def delete_asset(session: AsyncSession, key: str) -> bool:
    """Forget ``key`` and its edges (its events stay); False when it is not catalogued."""
    await _lock_key(session, key)
    result = await session.execute(sa.delete(assets).where(_A.key == key).returning(_A.key))
    found = result.first() is not None
    await session.execute(
        sa.delete(asset_dependencies).where(sa.or_(_D.upstream == key, _D.downstream == key))
    )
    return found


async def _neighbours(session: AsyncSession, frontier: set[str], upward: bool) -> set[str]:
    """The assets one edge upstream (``upward``) or downstream of ``frontier``."""
    near, far = (_D.downstream, _D.upstream) if upward else (_D.upstream, _D.downstream)
    stmt = sa.select(far).where(near.in_(sorted(frontier))).limit(MAX_LINEAGE_NODES + 1)
    return {row[0] for row in await session.execute(stmt)}


async def read_lineage(session: AsyncSession, key: str | None, depth: int) -> AssetLineage:
    """The assets up to ``depth`` edges upstream and downstream of ``key`` and the edges among
    them; without ``key``, the whole catalogue. At most ``MAX_LINEAGE_NODES`` assets."""
    depth = max(1, min(depth, MAX_LINEAGE_DEPTH))
    truncated = False
    if key is None:
        rows = list(
            await session.execute(sa.select(assets).order_by(_A.key).limit(MAX_LINEAGE_NODES + 1))
        )
        truncated = len(rows) > MAX_LINEAGE_NODES
        rows = rows[:MAX_LINEAGE_NODES]
    else:
        seen = {key}
        for upward in (True, False):
            frontier = {key}
            for _ in range(depth):
                if not frontier:
                    break
                step = await _neighbours(session, frontier, upward) - seen
                if len(seen) + len(step) > MAX_LINEAGE_NODES:
                    step = set(sorted(step)[: MAX_LINEAGE_NODES - len(seen)])
                    truncated = True
                seen |= step
                frontier = step
        rows = list(
            await session.execute(
                sa.select(assets).where(_A.key.in_(sorted(seen))).order_by(_A.key)
            )
        )
    nodes = await _records(session, rows)
    present = {n.key for n in nodes}
    edges = sorted(
        {(u, n.key) for n in nodes for u in n.upstream if u in present},
    )
    return AssetLineage(
        root=key,
        nodes=nodes,
        edges=[AssetEdge(upstream=u, downstream=d) for u, d in edges],
        truncated=truncated,
    )
