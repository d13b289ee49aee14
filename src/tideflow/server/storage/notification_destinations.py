"""Notification destinations: create (or replace with overwrite), read by name, list, delete."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from tideflow.schemas.notifications import (
    NotificationDestination,
    NotificationDestinationCreate,
    NotificationDestinationFilter,
)
from tideflow.server.storage.errors import Conflict, is_unique_violation
from tideflow.server.storage.tables import notification_destinations as table

__all__ = ["delete_destination", "put_destination", "read_destination", "read_destinations"]

_D = table.c


def _row(row: Any) -> NotificationDestination:
    return NotificationDestination(
        id=row.id, name=row.name, description=row.description, type=row.type,
        config=row.config, created=row.created, updated=row.updated,
    )  # fmt: skip


async def put_destination(
    session: AsyncSession, body: NotificationDestinationCreate
) -> tuple[NotificationDestination, bool]:
    """Store ``body``; ``(destination, created)``. Conflict when the name exists without overwrite."""
    now = dt.datetime.now(dt.UTC)
    values = {
        "description": body.description,
        "type": body.config.type,
        "config": body.config.model_dump(mode="json"),
        "updated": now,
    }
    existing = (await session.execute(sa.select(_D.id).where(_D.name == body.name))).first()
    if existing is not None:
        if not body.overwrite:
            raise Conflict(
                f"a notification destination named {body.name!r} exists already; "
                "set overwrite to replace it"
            )
        await session.execute(sa.update(table).where(_D.name == body.name).values(**values))
    else:
        try:
            await session.execute(
                sa.insert(table).values(id=uuid.uuid4(), name=body.name, created=now, **values)
            )
        except IntegrityError as exc:
            if is_unique_violation(exc):
                raise Conflict(
                    f"a notification destination named {body.name!r} was created at the same "
                    "time; try again"
                ) from None
            raise
    found = await read_destination(session, body.name)
    assert found is not None
    return found, existing is None


async def read_destination(session: AsyncSession, name: str) -> NotificationDestination | None:
    row = (await session.execute(sa.select(table).where(_D.name == name))).first()
    return _row(row) if row is not None else None


async def read_destinations(
    session: AsyncSession, flt: NotificationDestinationFilter
) -> list[NotificationDestination]:
    stmt = sa.select(table).order_by(_D.name).limit(flt.limit).offset(flt.offset)
    if flt.name_like:
        stmt = stmt.where(_D.name.icontains(flt.name_like, autoescape=True))
    if flt.type:
        stmt = stmt.where(_D.type == flt.type)
    return [_row(row) for row in await session.execute(stmt)]


async def delete_destination(session: AsyncSession, name: str) -> bool:
    result = await session.execute(sa.delete(table).where(_D.name == name))
    return bool(result.rowcount)  # type: ignore[attr-defined]
