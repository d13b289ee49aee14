"""Flow queries: create-or-get by name, read by id or name, filter."""

from __future__ import annotations

import uuid
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from tideflow.schemas import Flow, FlowFilter
from tideflow.schemas.states import utcnow
from tideflow.server.storage.dialect import insert_ignoring_conflict
from tideflow.server.storage.tables import flows

__all__ = ["create_or_get_flow", "read_flow", "read_flow_by_name", "read_flows"]


def _flow(row: Any) -> Flow:
    return Flow.model_validate(row._mapping)


async def create_or_get_flow(
    session: AsyncSession, name: str, tags: list[str] | None = None
) -> tuple[Flow, bool]:
    """The flow called ``name``, created when new; the flag says whether it was created."""
    existing = await read_flow_by_name(session, name)
    if existing is not None:  # the common case (every call of a known flow): one statement
        return existing, False
    now = utcnow()
    values = {
        "id": uuid.uuid4(),
        "name": name,
        "tags": list(tags or []),
        "created": now,
        "updated": now,
    }
    created = await insert_ignoring_conflict(session, flows, values, ["name"])
    flow = await read_flow_by_name(session, name)
    assert flow is not None  # inserted now or by the concurrent writer that won the conflict
    return flow, created


async def read_flow(session: AsyncSession, flow_id: UUID) -> Flow | None:
    row = (await session.execute(sa.select(flows).where(flows.c.id == flow_id))).first()
    return _flow(row) if row is not None else None


async def read_flow_by_name(session: AsyncSession, name: str) -> Flow | None:
    row = (await session.execute(sa.select(flows).where(flows.c.name == name))).first()
    return _flow(row) if row is not None else None


async def read_flows(session: AsyncSession, flt: FlowFilter) -> list[Flow]:
    """Flows matching ``flt``, sorted by name."""
    stmt = sa.select(flows)
    if flt.name is not None:
        stmt = stmt.where(flows.c.name.in_(flt.name))
    if flt.name_like is not None:
        stmt = stmt.where(flows.c.name.icontains(flt.name_like, autoescape=True))
    stmt = stmt.order_by(flows.c.name).limit(flt.limit).offset(flt.offset)
    return [_flow(row) for row in (await session.execute(stmt))]
