"""Schedules attached to deployments: read, replace the whole list, add, change, delete.

Changing a deployment's schedules removes its future auto-scheduled runs (the scheduler recreates
the right ones) and wakes the scheduler through the broker topic ``SCHEDULES_TOPIC`` after commit.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from uuid import UUID

import sqlalchemy as sa
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
    "SCHEDULES_TOPIC",
    "add_schedules",
    "delete_future_scheduled_runs",
    "delete_schedule",
    "read_active_schedules",
    "read_schedules",
    "replace_schedules",
    "schedules_differ",
    "update_schedule",
]

SCHEDULES_TOPIC = "deployment-schedules"


def _schedule(row: object) -> DeploymentSchedule:
    return DeploymentSchedule.model_validate(dict(row._mapping))  # type: ignore[attr-defined]


async def read_schedules(session: AsyncSession, deployment_id: UUID) -> list[DeploymentSchedule]:
    stmt = (
        sa.select(deployment_schedules)
        .where(deployment_schedules.c.deployment_id == deployment_id)
        .order_by(deployment_schedules.c.position, deployment_schedules.c.id)
    )
    return [_schedule(row) for row in await session.execute(stmt)]


async def read_active_schedules(
    session: AsyncSession,
) -> list[tuple[UUID, DeploymentSchedule]]:
    """(deployment id, schedule) for every active schedule of every deployment not paused."""
    stmt = (
        sa.select(deployment_schedules)
        .join(deployments, deployments.c.id == deployment_schedules.c.deployment_id)
        .where(deployment_schedules.c.active.is_(True), deployments.c.paused.is_(False))
        .order_by(deployment_schedules.c.deployment_id, deployment_schedules.c.position)
    )
    return [(row.deployment_id, _schedule(row)) for row in await session.execute(stmt)]


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
