"""Schedules attached to deployments: read, replace the whole list, add, change, delete, quarantine.

Changing a deployment's schedules removes its future auto-scheduled runs (the scheduler recreates
the right ones) and wakes the scheduler through the broker topic ``SCHEDULES_TOPIC`` after commit.

A stored schedule is not trusted to parse (the database may hold rows no API would accept): readers
of models skip such rows with a log line, and the scheduler reads raw rows (``ScheduleRow``) and
quarantines the ones it cannot compute (``quarantine_schedule``: inactive, plus the event
``tideflow.deployment.schedule.quarantined`` saying why).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import uuid
from collections.abc import Sequence
from typing import Any, NamedTuple
from uuid import UUID

import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from tideflow.schemas.schedules import (
    DeploymentSchedule,
    DeploymentScheduleCreate,
    DeploymentScheduleUpdate,
)
from tideflow.schemas.states import StateType, utcnow
from tideflow.server.storage.deployment_events import emit_deployment_events_for
from tideflow.server.storage.dialect import dialect_name
from tideflow.server.storage.errors import NotFound
from tideflow.server.storage.outbox import publish_after_commit
from tideflow.server.storage.tables import deployment_schedules, deployments, flow_runs

__all__ = [
    "QUARANTINED",
    "SCHEDULES_TOPIC",
    "ScheduleRow",
    "add_schedules",
    "delete_future_scheduled_runs",
    "delete_schedule",
    "quarantine_schedule",
    "read_active_schedule_rows",
    "read_active_schedules",
    "read_schedule_row",
    "read_schedule_rows",
    "read_schedules",
    "replace_schedules",
    "schedules_differ",
    "update_schedule",
]

SCHEDULES_TOPIC = "deployment-schedules"
QUARANTINED = "schedule.quarantined"
"""Verb of the deployment event ``tideflow.deployment.schedule.quarantined``."""

_MAX_SHOWN_SCHEDULE = 2000  # characters of a quarantined schedule's JSON kept in its event

logger = logging.getLogger("tideflow.server.storage")


class ScheduleRow(NamedTuple):
    """A stored schedule as it is, not parsed: ``schedule`` is the JSON the row holds."""

    deployment_id: UUID
    id: UUID
    schedule: Any
    active: bool


def _schedule(row: object) -> DeploymentSchedule:
    return DeploymentSchedule.model_validate(dict(row._mapping))  # type: ignore[attr-defined]


def _parsed(rows: Any) -> list[Any]:
    """(row, model) for the rows that parse; the others are logged and left out."""
    out = []
    for row in rows:
        try:
            out.append((row, _schedule(row)))
        except ValidationError as exc:
            logger.warning(
                "schedule %s of deployment %s is left out: it does not parse (%d errors: %s)",
                row.id,
                row.deployment_id,
                exc.error_count(),
                str(exc.errors(include_url=False, include_input=False)[0]["msg"])[:200],
            )
    return out


def _rows(rows: Any) -> list[ScheduleRow]:
    return [ScheduleRow(r.deployment_id, r.id, r.schedule, r.active) for r in rows]


def _by_deployment(deployment_id: UUID) -> sa.Select[Any]:
    return (
        sa.select(deployment_schedules)
        .where(deployment_schedules.c.deployment_id == deployment_id)
        .order_by(deployment_schedules.c.position, deployment_schedules.c.id)
    )


def _active() -> sa.Select[Any]:
    return (
        sa.select(deployment_schedules)
        .join(deployments, deployments.c.id == deployment_schedules.c.deployment_id)
        .where(deployment_schedules.c.active.is_(True), deployments.c.paused.is_(False))
        .order_by(deployment_schedules.c.deployment_id, deployment_schedules.c.position)
    )


async def read_schedules(
    session: AsyncSession, deployment_id: UUID, *, limit: int | None = None, offset: int = 0
) -> list[DeploymentSchedule]:
    """The deployment's schedules that parse, in order; ``limit``/``offset`` page the stored rows."""
    stmt = _by_deployment(deployment_id).limit(limit).offset(offset)
    return [model for _, model in _parsed(await session.execute(stmt))]


async def read_schedule_rows(session: AsyncSession, deployment_id: UUID) -> list[ScheduleRow]:
    """The deployment's schedules as stored, parsing or not."""
    return _rows(await session.execute(_by_deployment(deployment_id)))


async def read_schedule_row(
    session: AsyncSession, deployment_id: UUID, schedule_id: UUID
) -> ScheduleRow | None:
    stmt = sa.select(deployment_schedules).where(
        deployment_schedules.c.id == schedule_id,
        deployment_schedules.c.deployment_id == deployment_id,
    )
    found = _rows(await session.execute(stmt))
    return found[0] if found else None


async def read_active_schedules(
    session: AsyncSession,
) -> list[tuple[UUID, DeploymentSchedule]]:
    """(deployment id, schedule) for every active schedule that parses of every deployment not
    paused."""
    return [(row.deployment_id, model) for row, model in _parsed(await session.execute(_active()))]


async def read_active_schedule_rows(session: AsyncSession) -> list[ScheduleRow]:
    """Every active schedule of every deployment not paused, as stored, parsing or not."""
    return _rows(await session.execute(_active()))


def _dump(item: DeploymentScheduleCreate | DeploymentSchedule) -> tuple[object, bool]:
    return item.schedule.model_dump(mode="json"), item.active


def schedules_differ(
    current: Sequence[DeploymentSchedule], wanted: Sequence[DeploymentScheduleCreate]
) -> bool:
    return [_dump(s) for s in current] != [_dump(s) for s in wanted]


async def _insert(
    session: AsyncSession,
    deployment_id: UUID,
    items: Sequence[DeploymentScheduleCreate],
    first_position: int,
    now: dt.datetime,
) -> list[UUID]:
    ids = []
    for offset, item in enumerate(items):
        schedule_id = uuid.uuid4()
        ids.append(schedule_id)
        await session.execute(
            sa.insert(deployment_schedules).values(
                id=schedule_id,
                deployment_id=deployment_id,
                position=first_position + offset,
                schedule=item.schedule.model_dump(mode="json"),
                active=item.active,
                created=now,
                updated=now,
            )
        )
    return ids


async def replace_schedules(
    session: AsyncSession,
    deployment_id: UUID,
    items: Sequence[DeploymentScheduleCreate],
    now: dt.datetime,
) -> None:
    """Make ``items`` the deployment's schedules (new ids)."""
    await session.execute(
        sa.delete(deployment_schedules).where(deployment_schedules.c.deployment_id == deployment_id)
    )
    await _insert(session, deployment_id, items, 0, now)


async def _changed(session: AsyncSession, deployment_id: UUID, now: dt.datetime) -> None:
    await delete_future_scheduled_runs(session, deployment_id, now)
    await session.execute(
        sa.update(deployments).where(deployments.c.id == deployment_id).values(updated=now)
    )
    publish_after_commit(session, SCHEDULES_TOPIC, deployment_id)
    await emit_deployment_events_for(
        session, [deployment_id], "updated", {"changed": ["schedules"]}
    )


async def _require_deployment(session: AsyncSession, deployment_id: UUID) -> None:
    # Locked like storage.deployments.lock_deployment: the scheduler's step must not interleave.
    stmt = sa.select(deployments.c.id).where(deployments.c.id == deployment_id)
    if dialect_name(session) == "postgresql":
        stmt = stmt.with_for_update()
    if (await session.execute(stmt)).first() is None:
        raise NotFound(f"deployment {deployment_id} not found")


async def add_schedules(
    session: AsyncSession, deployment_id: UUID, items: Sequence[DeploymentScheduleCreate]
) -> list[DeploymentSchedule]:
    """Attach ``items`` after the existing schedules; the new ones."""
    await _require_deployment(session, deployment_id)
    now = utcnow()
    last = await session.execute(
        sa.select(sa.func.max(deployment_schedules.c.position)).where(
            deployment_schedules.c.deployment_id == deployment_id
        )
    )
    top = last.scalar_one_or_none()
    ids = await _insert(session, deployment_id, items, 0 if top is None else top + 1, now)
    await _changed(session, deployment_id, now)
    return [s for s in await read_schedules(session, deployment_id) if s.id in ids]


async def update_schedule(
    session: AsyncSession, deployment_id: UUID, schedule_id: UUID, body: DeploymentScheduleUpdate
) -> DeploymentSchedule:
    await _require_deployment(session, deployment_id)
    values: dict[str, object] = {}
    if body.schedule is not None:
        values["schedule"] = body.schedule.model_dump(mode="json")
    if body.active is not None:
        values["active"] = body.active
    now = utcnow()
    stmt = (
        sa.update(deployment_schedules)
        .where(
            deployment_schedules.c.id == schedule_id,
            deployment_schedules.c.deployment_id == deployment_id,
        )
        .values(**values, updated=now)
        .returning(deployment_schedules)
    )
    row = (await session.execute(stmt)).first()
    if row is None:
        raise NotFound(f"schedule {schedule_id} of deployment {deployment_id} not found")
    await _changed(session, deployment_id, now)
    return _schedule(row)


async def delete_schedule(session: AsyncSession, deployment_id: UUID, schedule_id: UUID) -> None:
    await _require_deployment(session, deployment_id)
    stmt = (
        sa.delete(deployment_schedules)
        .where(
            deployment_schedules.c.id == schedule_id,
            deployment_schedules.c.deployment_id == deployment_id,
        )
        .returning(deployment_schedules.c.id)
    )
    if (await session.execute(stmt)).first() is None:
        raise NotFound(f"schedule {schedule_id} of deployment {deployment_id} not found")
    await _changed(session, deployment_id, utcnow())


async def quarantine_schedule(
    session: AsyncSession, row: ScheduleRow, reason: str, now: dt.datetime
) -> bool:
    """Deactivate ``row``'s schedule, if it is still stored active as it was, and say why.

    Writes the event ``tideflow.deployment.schedule.quarantined`` (payload: schedule id, reason,
    the schedule's JSON when short) and removes the deployment's future auto-scheduled runs (the
    scheduler recreates those of its other schedules). False when the row changed meanwhile.
    """
    await _require_deployment(session, row.deployment_id)
    current = await read_schedule_row(session, row.deployment_id, row.id)
    if current is None or not current.active or current.schedule != row.schedule:
        return False
    await session.execute(
        sa.update(deployment_schedules)
        .where(deployment_schedules.c.id == row.id)
        .values(active=False, updated=now)
    )
    await delete_future_scheduled_runs(session, row.deployment_id, now)
    await session.execute(
        sa.update(deployments).where(deployments.c.id == row.deployment_id).values(updated=now)
    )
    publish_after_commit(session, SCHEDULES_TOPIC, row.deployment_id)
    # as text: escaped, so nothing a row holds (say a lone surrogate) can make the event unreadable
    reason = reason.encode("utf-8", "backslashreplace").decode("utf-8")
    payload: dict[str, Any] = {"schedule_id": str(row.id), "reason": reason, "active": False}
    shown = json.dumps(row.schedule, default=str, ensure_ascii=True)
    if len(shown) <= _MAX_SHOWN_SCHEDULE:
        payload["schedule"] = shown
    await emit_deployment_events_for(session, [row.deployment_id], QUARANTINED, payload, now)
    return True


async def delete_future_scheduled_runs(
    session: AsyncSession, deployment_id: UUID, now: dt.datetime
) -> int:
    """Delete the deployment's auto-scheduled runs due after ``now`` that have not started."""
    stmt = sa.delete(flow_runs).where(
        flow_runs.c.deployment_id == deployment_id,
        flow_runs.c.state_type == StateType.SCHEDULED.value,
        flow_runs.c.state_name == "Scheduled",
        flow_runs.c.next_scheduled_start_time > now,
        flow_runs.c.idempotency_key.startswith(f"scheduled {deployment_id} ", autoescape=True),
    )
    result = await session.execute(stmt)
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
