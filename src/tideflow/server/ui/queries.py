"""Reads that only the UI pages need (aggregates for the dashboard, the links of a run's chain);
everything else the pages show comes from the same storage functions as the API."""

from __future__ import annotations

import datetime as dt
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from tideflow.server.storage.tables import flow_runs, work_pools, work_queues, workers

__all__ = [
    "run_placement",
    "run_times_since",
    "runs_triggered_by",
    "state_counts_since",
    "triggering_event_id",
]

# The dashboard chart reads at most this many runs; past it the chart shows the newest ones.
_CHART_ROWS = 50_000


async def state_counts_since(session: AsyncSession, since: dt.datetime) -> dict[str, int]:
    """How many runs created since ``since`` are in each state type (``"LATE"`` counted apart)."""
    stmt = (
        sa.select(flow_runs.c.state_type, flow_runs.c.state_name, sa.func.count())
        .where(flow_runs.c.created >= since)
        .group_by(flow_runs.c.state_type, flow_runs.c.state_name)
    )
    counts: dict[str, int] = {}
    for state_type, state_name, count in await session.execute(stmt):
        key = "LATE" if state_name == "Late" else str(state_type)
        counts[key] = counts.get(key, 0) + int(count)
    return counts


async def run_times_since(
    session: AsyncSession, since: dt.datetime
) -> list[tuple[dt.datetime, str | None]]:
    """``(created, state_type)`` of the runs created since ``since``, newest first."""
    stmt = (
        sa.select(flow_runs.c.created, flow_runs.c.state_type)
        .where(flow_runs.c.created >= since)
        .order_by(flow_runs.c.created.desc())
        .limit(_CHART_ROWS)
    )
    return [(row.created, row.state_type) for row in await session.execute(stmt)]


async def triggering_event_id(session: AsyncSession, run_id: UUID) -> UUID | None:
    """The event that made an automation create this run, if any."""
    stmt = sa.select(flow_runs.c.triggering_event_id).where(flow_runs.c.id == run_id)
    value: UUID | None = (await session.execute(stmt)).scalar_one_or_none()
    return value


async def runs_triggered_by(session: AsyncSession, event_ids: list[UUID]) -> list[UUID]:
    """Ids of the runs that automations created in response to any of ``event_ids``, oldest first."""
    if not event_ids:
        return []
    stmt = (
        sa.select(flow_runs.c.id)
        .where(flow_runs.c.triggering_event_id.in_(event_ids))
        .order_by(flow_runs.c.created)
        .limit(100)
    )
    return list((await session.execute(stmt)).scalars())


async def run_placement(
    session: AsyncSession, queue_id: UUID | None, runner_ids: list[UUID]
) -> dict[str, str | None]:
    """The work pool and queue names of a run's queue, and the name of the worker (among the
    runners that claimed it, latest first) that is a worker of a pool; None where unknown."""
    out: dict[str, str | None] = {"pool": None, "queue": None, "worker": None}
    if queue_id is not None:
        stmt = (
            sa.select(work_pools.c.name, work_queues.c.name)
            .join(work_pools, work_pools.c.id == work_queues.c.work_pool_id)
            .where(work_queues.c.id == queue_id)
        )
        row = (await session.execute(stmt)).first()
        if row is not None:
            out["pool"], out["queue"] = row[0], row[1]
    if runner_ids:
        stmt2 = sa.select(workers.c.id, workers.c.name).where(workers.c.id.in_(runner_ids[:20]))
        names = {row[0]: row[1] for row in await session.execute(stmt2)}
        out["worker"] = next((names[r] for r in runner_ids if r in names), None)
    return out
