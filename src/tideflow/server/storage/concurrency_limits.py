"""Tag-based task concurrency: limits per tag and the slots task runs hold as leases.

``acquire`` takes one slot of every limited tag a task run carries, all or none, in one write
transaction (the limits' rows locked on PostgreSQL; SQLite's single writer serialises it). Expired
leases are dropped first, so a holder that died frees its slots when its lease runs out. A holder
asking again keeps its slots (the call is idempotent and renews them).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from tideflow.schemas.concurrency import ConcurrencyLimit, ConcurrencyLimitCreate, SlotAnswer
from tideflow.server.storage.dialect import dialect_name
from tideflow.server.storage.tables import concurrency_limits, concurrency_slots

__all__ = [
    "acquire_slots",
    "delete_limit",
    "read_limit",
    "read_limits",
    "release_slots",
    "renew_slots",
    "reset_limit",
    "upsert_limit",
]

RETRY_AFTER = 0.5  # seconds a refused holder waits before asking again (a release frees at once)

_L, _S = concurrency_limits.c, concurrency_slots.c


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


async def _holders(session: AsyncSession, limit_ids: Sequence[UUID]) -> dict[UUID, list[UUID]]:
    out: dict[UUID, list[UUID]] = {i: [] for i in limit_ids}
    if not limit_ids:
        return out
    stmt = (
        sa.select(_S.limit_id, _S.holder)
        .where(_S.limit_id.in_(limit_ids), _S.expires > _now())
        .order_by(_S.expires)
    )
    for row in await session.execute(stmt):
        out[row.limit_id].append(row.holder)
    return out


def _limit(row: Any, holders: list[UUID]) -> ConcurrencyLimit:
    return ConcurrencyLimit(**row._mapping, active_slots=holders)


async def upsert_limit(
    session: AsyncSession, body: ConcurrencyLimitCreate
) -> tuple[ConcurrencyLimit, bool]:
    """Create the tag's limit or change it; ``(limit, created)``."""
    now = _now()
    row = (await session.execute(sa.select(concurrency_limits).where(_L.tag == body.tag))).first()
    created = row is None
    if row is None:
        await session.execute(
            sa.insert(concurrency_limits).values(
                id=uuid.uuid4(), tag=body.tag, concurrency_limit=body.concurrency_limit,
                created=now, updated=now,
            )
        )  # fmt: skip
    else:
        await session.execute(
            sa.update(concurrency_limits)
            .where(_L.id == row.id)
            .values(concurrency_limit=body.concurrency_limit, updated=now)
        )
    limit = await read_limit(session, body.tag)
    assert limit is not None
    return limit, created


async def read_limit(session: AsyncSession, tag: str) -> ConcurrencyLimit | None:
    row = (await session.execute(sa.select(concurrency_limits).where(_L.tag == tag))).first()
    if row is None:
        return None
    return _limit(row, (await _holders(session, [row.id]))[row.id])


async def read_limits(
    session: AsyncSession, *, limit: int | None = None, offset: int = 0
) -> list[ConcurrencyLimit]:
    """Tag limits by tag, one page at a time, each with the runs holding its slots."""
    stmt = sa.select(concurrency_limits).order_by(_L.tag).limit(limit).offset(offset)
    rows = list(await session.execute(stmt))
    holders = await _holders(session, [r.id for r in rows])
    return [_limit(r, holders[r.id]) for r in rows]


async def delete_limit(session: AsyncSession, tag: str) -> bool:
    result = await session.execute(sa.delete(concurrency_limits).where(_L.tag == tag))
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def reset_limit(session: AsyncSession, tag: str) -> ConcurrencyLimit | None:
    """Free every slot of the tag's limit (e.g. held by a process that will not come back)."""
    row = (await session.execute(sa.select(_L.id).where(_L.tag == tag))).first()
    if row is None:
        return None
    await session.execute(sa.delete(concurrency_slots).where(_S.limit_id == row.id))
    return await read_limit(session, tag)


async def acquire_slots(
    session: AsyncSession, tags: Sequence[str], holder: UUID, lease_seconds: float
) -> SlotAnswer:
    """One slot of each limited tag in ``tags`` for ``holder``, all or none."""
    stmt = sa.select(_L.id, _L.tag, _L.concurrency_limit).where(_L.tag.in_(set(tags)))
    if dialect_name(session) == "postgresql":
        stmt = stmt.order_by(_L.id).with_for_update()  # one order: no deadlock between acquirers
    limits = list(await session.execute(stmt))
    if not limits:
        return SlotAnswer(acquired=True)
    now = _now()
    ids = [row.id for row in limits]
    await session.execute(
        sa.delete(concurrency_slots).where(_S.limit_id.in_(ids), _S.expires <= now)
    )
    holders = await _holders(session, ids)
    for row in sorted(limits, key=lambda r: r.tag):
        if holder not in holders[row.id] and len(holders[row.id]) >= row.concurrency_limit:
            return SlotAnswer(acquired=False, full_tag=row.tag, retry_after=RETRY_AFTER)
    expires = now + dt.timedelta(seconds=lease_seconds)
    fresh = [
        {"limit_id": row.id, "holder": holder, "expires": expires}
        for row in limits
        if holder not in holders[row.id]
    ]
    if fresh:
        await session.execute(sa.insert(concurrency_slots), fresh)
    await renew_slots(session, holder, lease_seconds)
    return SlotAnswer(acquired=True)


async def renew_slots(session: AsyncSession, holder: UUID, lease_seconds: float) -> int:
    """Extend the holder's leases; how many slots it holds."""
    expires = _now() + dt.timedelta(seconds=lease_seconds)
    result = await session.execute(
        sa.update(concurrency_slots).where(_S.holder == holder).values(expires=expires)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def release_slots(session: AsyncSession, holder: UUID) -> int:
    result = await session.execute(sa.delete(concurrency_slots).where(_S.holder == holder))
    return int(result.rowcount)  # type: ignore[attr-defined]
