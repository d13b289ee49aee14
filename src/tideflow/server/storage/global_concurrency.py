"""Global concurrency and rate limits: named limits, the leases holding their slots, rate slots.

``acquire`` takes ``slots`` of every named active limit, all or none, in one write transaction (the
limits' rows locked in one order on PostgreSQL; SQLite's single writer serialises it). Expired
leases are dropped first, so a holder that died frees its slots when its lease runs out. In
``rate_limit`` mode nothing is held: the limit's rate slots grow by ``slots`` and drain at
``slot_decay_per_second``.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from tideflow.schemas.global_concurrency import (
    GlobalConcurrencyLimit,
    GlobalConcurrencyLimitCreate,
    GlobalConcurrencyLimitFilter,
    GlobalConcurrencyLimitUpdate,
    LeaseAnswer,
    SlotRequest,
)
from tideflow.server.storage.dialect import dialect_name
from tideflow.server.storage.errors import Conflict, is_unique_violation
from tideflow.server.storage.tables import global_concurrency_leases as leases
from tideflow.server.storage.tables import global_concurrency_limits as limits

__all__ = [
    "RETRY_AFTER",
    "acquire",
    "create_limit",
    "delete_limit",
    "read_limit",
    "read_limits",
    "release",
    "renew",
    "reset_limit",
    "update_limit",
]

RETRY_AFTER = 0.5  # seconds a refused concurrency taker waits before asking again
_L, _S = limits.c, leases.c


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _rate_slots(row: Any, now: dt.datetime) -> float:
    """The rate slots still occupied at ``now`` (drained since ``rate_updated``)."""
    if row.slot_decay_per_second <= 0 or row.rate_slots <= 0:
        return 0.0
    elapsed = max(0.0, (now - row.rate_updated).total_seconds())
    return float(max(0.0, row.rate_slots - row.slot_decay_per_second * elapsed))


async def _held(
    session: AsyncSession, ids: Sequence[UUID], now: dt.datetime
) -> dict[UUID, list[int]]:
    out: dict[UUID, list[int]] = {i: [] for i in ids}
    if ids:
        stmt = sa.select(_S.limit_id, _S.slots).where(_S.limit_id.in_(ids), _S.expires > now)
        for row in await session.execute(stmt):
            out[row.limit_id].append(row.slots)
    return out


def _limit(row: Any, held: list[int], now: dt.datetime) -> GlobalConcurrencyLimit:
    return GlobalConcurrencyLimit(
        id=row.id, name=row.name, limit=row.limit, active=row.active,
        slot_decay_per_second=row.slot_decay_per_second,
        active_slots=sum(held) + _rate_slots(row, now), leases=len(held),
        created=row.created, updated=row.updated,
    )  # fmt: skip


async def create_limit(
    session: AsyncSession, body: GlobalConcurrencyLimitCreate
) -> GlobalConcurrencyLimit:
    """Store a new limit; Conflict when the name is taken."""
    now = _now()
    try:
        await session.execute(
            sa.insert(limits).values(
                id=uuid.uuid4(), name=body.name, limit=body.limit, active=body.active,
                slot_decay_per_second=body.slot_decay_per_second, rate_slots=0.0,
                rate_updated=now, created=now, updated=now,
            )
        )  # fmt: skip
    except IntegrityError as exc:
        if is_unique_violation(exc):
            raise Conflict(
                f"a global concurrency limit named {body.name!r} exists already"
            ) from None
        raise
    found = await read_limit(session, body.name)
    assert found is not None
    return found


async def read_limit(session: AsyncSession, name: str) -> GlobalConcurrencyLimit | None:
    row = (await session.execute(sa.select(limits).where(_L.name == name))).first()
    if row is None:
        return None
    now = _now()
    return _limit(row, (await _held(session, [row.id], now))[row.id], now)


async def read_limits(
    session: AsyncSession, flt: GlobalConcurrencyLimitFilter
) -> list[GlobalConcurrencyLimit]:
    stmt = sa.select(limits).order_by(_L.name).limit(flt.limit).offset(flt.offset)
    rows = list(await session.execute(stmt))
    now = _now()
    held = await _held(session, [r.id for r in rows], now)
    return [_limit(r, held[r.id], now) for r in rows]


async def update_limit(
    session: AsyncSession, name: str, body: GlobalConcurrencyLimitUpdate
) -> GlobalConcurrencyLimit | None:
    changes: dict[str, Any] = {
        k: v for k, v in body.model_dump(exclude_unset=True).items() if v is not None
    }
    changes["updated"] = _now()
    result = await session.execute(sa.update(limits).where(_L.name == name).values(**changes))
    if not result.rowcount:  # type: ignore[attr-defined]
        return None
    return await read_limit(session, name)


async def delete_limit(session: AsyncSession, name: str) -> bool:
    row = (await session.execute(sa.select(_L.id).where(_L.name == name))).first()
    if row is None:
        return False
    await session.execute(sa.delete(leases).where(_S.limit_id == row.id))
    await session.execute(sa.delete(limits).where(_L.id == row.id))
    return True


async def reset_limit(session: AsyncSession, name: str) -> GlobalConcurrencyLimit | None:
    """Free every slot: drop the leases and the rate slots."""
    row = (await session.execute(sa.select(_L.id).where(_L.name == name))).first()
    if row is None:
        return None
    await session.execute(sa.delete(leases).where(_S.limit_id == row.id))
    await session.execute(
        sa.update(limits).where(_L.id == row.id).values(rate_slots=0.0, rate_updated=_now())
    )
    return await read_limit(session, name)


async def acquire(session: AsyncSession, request: SlotRequest) -> LeaseAnswer:
    """``request.slots`` of every named active limit for a new lease (or as rate slots)."""
    names = sorted(set(request.names))
    stmt = sa.select(limits).where(_L.name.in_(names))
    if dialect_name(session) == "postgresql":
        stmt = stmt.order_by(_L.id).with_for_update()  # one order: no deadlock between takers
    rows = list(await session.execute(stmt))
    missing = sorted(set(names) - {r.name for r in rows})
    active = sorted((r for r in rows if r.active), key=lambda r: r.name)
    now = _now()
    for row in active:
        if request.slots > row.limit:
            raise Conflict(
                f"{request.slots} slots asked of limit {row.name!r}, which has {row.limit}: "
                "this can never be granted"
            )
        if request.mode == "rate_limit" and row.slot_decay_per_second <= 0:
            raise Conflict(
                f"limit {row.name!r} has no slot_decay_per_second, so it is not a rate limit; "
                "use concurrency() or set --slot-decay-per-second"
            )
    ids = [r.id for r in active]
    if ids:
        await session.execute(sa.delete(leases).where(_S.limit_id.in_(ids), _S.expires <= now))
    held = await _held(session, ids, now)
    for row in active:
        occupied = sum(held[row.id]) + _rate_slots(row, now)
        if occupied + request.slots > row.limit:
            wait = RETRY_AFTER
            if row.slot_decay_per_second > 0 and not held[row.id]:
                wait = (occupied + request.slots - row.limit) / row.slot_decay_per_second
            return LeaseAnswer(
                acquired=False, full_name=row.name, retry_after=min(wait, 60.0), missing=missing
            )
    if request.mode == "rate_limit":
        for row in active:
            await session.execute(
                sa.update(limits)
                .where(_L.id == row.id)
                .values(rate_slots=_rate_slots(row, now) + request.slots, rate_updated=now)
            )
        return LeaseAnswer(acquired=True, missing=missing)
    if not ids:  # nothing to hold: every named limit is missing or inactive
        return LeaseAnswer(acquired=True, missing=missing)
    lease_id = uuid.uuid4()
    expires = now + dt.timedelta(seconds=request.lease_seconds)
    held_rows = [
        {"id": lease_id, "limit_id": i, "slots": request.slots, "expires": expires} for i in ids
    ]
    await session.execute(sa.insert(leases), held_rows)
    return LeaseAnswer(acquired=True, lease_id=lease_id, missing=missing)


async def renew(session: AsyncSession, lease_id: UUID, lease_seconds: float) -> int:
    """Extend an unexpired lease; how many limits it holds (0: it expired or was released)."""
    now = _now()
    result = await session.execute(
        sa.update(leases)
        .where(_S.id == lease_id, _S.expires > now)
        .values(expires=now + dt.timedelta(seconds=lease_seconds))
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def release(session: AsyncSession, lease_id: UUID) -> int:
    result = await session.execute(sa.delete(leases).where(_S.id == lease_id))
    return int(result.rowcount)  # type: ignore[attr-defined]
