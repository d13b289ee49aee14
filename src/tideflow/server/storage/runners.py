"""Runners (``serve()`` processes) as the server knows them: registered on the websocket's hello,
kept alive by heartbeats (which also keep their deployments READY), found silent by the monitor.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from tideflow.schemas.states import StateType
from tideflow.server.storage.deployments import mark_deployments_polled
from tideflow.server.storage.dialect import dialect_insert
from tideflow.server.storage.tables import deployments, flow_runs, runners

__all__ = [
    "RunnerRow",
    "delete_runner",
    "heartbeat",
    "read_orphaned_runs",
    "read_runner_runs",
    "read_silent_runners",
    "register_runner",
]


_ACTIVE = [StateType.PENDING.value, StateType.RUNNING.value, StateType.CANCELLING.value]


@dataclass(frozen=True)
class RunnerRow:
    id: UUID
    name: str
    deployment_ids: list[UUID]
    last_heartbeat: dt.datetime


async def _known(session: AsyncSession, deployment_ids: Sequence[UUID]) -> list[UUID]:
    if not deployment_ids:
        return []
    stmt = sa.select(deployments.c.id).where(deployments.c.id.in_(deployment_ids))
    return [row.id for row in await session.execute(stmt)]


async def register_runner(
    session: AsyncSession,
    runner_id: UUID,
    name: str,
    deployment_ids: Sequence[UUID],
    limit: int | None,
    now: dt.datetime,
) -> list[UUID]:
    """Insert or refresh the runner; its known deployments become READY. The ids that became READY."""
    values = {
        "name": name,
        "deployment_ids": [str(d) for d in deployment_ids],
        "limit": limit,
        "last_heartbeat": now,
    }
    insert = dialect_insert(session)
    stmt = insert(runners).values(id=runner_id, created=now, **values)
    await session.execute(stmt.on_conflict_do_update(index_elements=["id"], set_=values))
    return await mark_deployments_polled(session, await _known(session, deployment_ids), now)


async def heartbeat(
    session: AsyncSession, runner_id: UUID, now: dt.datetime, running: Sequence[UUID] = ()
) -> list[UUID] | None:
    """Mark the runner alive and its deployments polled; the ids that became READY, or None when
    the runner is unknown (forgotten after a silence: it must register again)."""
    stmt = (
        sa.update(runners)
        .where(runners.c.id == runner_id)
        .values(last_heartbeat=now)
        .returning(runners.c.deployment_ids)
    )
    row = (await session.execute(stmt)).first()
    if row is None:
        return None
    if running:
        # the runs it reports as executing are its own (the monitor crashes them if it goes silent)
        await session.execute(
            sa.update(flow_runs)
            .where(flow_runs.c.id.in_(running), flow_runs.c.state_type.in_(_ACTIVE))
            .values(runner_id=runner_id)
        )
    ids = [UUID(d) for d in row.deployment_ids]
    return await mark_deployments_polled(session, await _known(session, ids), now)


async def read_orphaned_runs(
    session: AsyncSession, runner_id: UUID, running: Sequence[UUID], before: dt.datetime
) -> list[UUID]:
    """The runner's claimed Pending/Running runs that it no longer reports as executing, in that
    state since before ``before``: their process ended while the server could not be told (a
    server restart at that moment), so no one will ever finish them."""
    stmt = sa.select(flow_runs.c.id).where(
        flow_runs.c.runner_id == runner_id,
        flow_runs.c.state_type.in_([StateType.PENDING.value, StateType.RUNNING.value]),
        flow_runs.c.state_timestamp < before,
    )
    if running:
        stmt = stmt.where(flow_runs.c.id.not_in(running))
    return [row.id for row in await session.execute(stmt)]


def _row(row: sa.Row) -> RunnerRow:  # type: ignore[type-arg]
    return RunnerRow(
        id=row.id,
        name=row.name,
        deployment_ids=[UUID(d) for d in row.deployment_ids],
        last_heartbeat=row.last_heartbeat,
    )


async def read_silent_runners(session: AsyncSession, before: dt.datetime) -> list[RunnerRow]:
    """Runners whose last heartbeat is older than ``before``."""
    stmt = sa.select(runners).where(runners.c.last_heartbeat < before).order_by(runners.c.id)
    return [_row(row) for row in await session.execute(stmt)]


async def read_runner_runs(session: AsyncSession, runner_id: UUID) -> list[tuple[UUID, StateType]]:
    """(run id, state type) of the runner's claimed runs that are not finished."""
    stmt = sa.select(flow_runs.c.id, flow_runs.c.state_type).where(
        flow_runs.c.runner_id == runner_id, flow_runs.c.state_type.in_(_ACTIVE)
    )
    return [(row.id, StateType(row.state_type)) for row in await session.execute(stmt)]


async def delete_runner(session: AsyncSession, runner_id: UUID, silent_since: dt.datetime) -> bool:
    """Forget the runner if it is still silent since ``silent_since``; whether it was deleted."""
    stmt = (
        sa.delete(runners)
        .where(runners.c.id == runner_id, runners.c.last_heartbeat < silent_since)
        .returning(runners.c.id)
    )
    return (await session.execute(stmt)).first() is not None
