"""Work pool pages: the list (type, paused, concurrency limit, queues, workers online and offline,
runs waiting) with a form to create one, and a pool's page (its queues, its workers with their last
heartbeat, its recent runs; pause/resume, edit its limit and description, add a queue)."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

import sqlalchemy as sa
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.ext.asyncio import AsyncSession

from tideflow.schemas import FlowRunFilter, StateType
from tideflow.schemas.states import utcnow
from tideflow.schemas.work_pools import Worker, WorkerStatus, WorkPool, WorkPoolType, WorkQueue
from tideflow.server.context import ServerContext
from tideflow.server.storage import flow_runs as run_storage
from tideflow.server.storage import work_pools as storage
from tideflow.server.storage.tables import flow_runs, work_queues
from tideflow.server.ui.rendering import database, not_found, render

__all__ = ["PoolRow", "router"]

router = APIRouter(include_in_schema=False)

RECENT_RUNS = 25
_POOLS_SHOWN = 1000


@dataclass(frozen=True)
class PoolRow:
    """One line of the pools list."""

    pool: WorkPool
    queues: int
    online: int
    offline: int
    waiting: int


def _timeout(request: Request) -> float:
    context: ServerContext = request.app.state.context
    return float(context.settings.runner_heartbeat_timeout)


async def _waiting_by_queue(session: AsyncSession, queue_ids: list[UUID]) -> dict[UUID, int]:
    """Runs not yet claimed (Scheduled, Late included) in each of these queues."""
    if not queue_ids:
        return {}
    stmt = (
        sa.select(flow_runs.c.work_queue_id, sa.func.count())
        .where(flow_runs.c.work_queue_id.in_(queue_ids))
        .where(flow_runs.c.state_type == StateType.SCHEDULED.value)
        .group_by(flow_runs.c.work_queue_id)
    )
    return {row[0]: int(row[1]) for row in await session.execute(stmt)}


async def _queue_counts(session: AsyncSession) -> dict[UUID, int]:
    stmt = sa.select(work_queues.c.work_pool_id, sa.func.count()).group_by(
        work_queues.c.work_pool_id
    )
    return {row[0]: int(row[1]) for row in await session.execute(stmt)}


async def _pool_waiting(session: AsyncSession) -> dict[UUID, int]:
    stmt = (
        sa.select(work_queues.c.work_pool_id, sa.func.count())
        .select_from(flow_runs.join(work_queues, work_queues.c.id == flow_runs.c.work_queue_id))
        .where(flow_runs.c.state_type == StateType.SCHEDULED.value)
        .group_by(work_queues.c.work_pool_id)
    )
    return {row[0]: int(row[1]) for row in await session.execute(stmt)}


def _status_counts(workers: list[Worker]) -> tuple[int, int]:
    online = sum(1 for w in workers if w.status is WorkerStatus.ONLINE)
    return online, len(workers) - online


@router.get("/work-pools", response_class=HTMLResponse)
async def work_pools_page(request: Request) -> HTMLResponse:
    now = utcnow()
    timeout = _timeout(request)
    rows = []
    async with database(request).read() as session:
        pools = await storage.read_work_pools(session, _POOLS_SHOWN, 0)
        queues = await _queue_counts(session)
        waiting = await _pool_waiting(session)
        for pool in pools:
            online, offline = _status_counts(
                await storage.read_workers(session, pool.name, now, timeout)
            )
            rows.append(
                PoolRow(pool, queues.get(pool.id, 0), online, offline, waiting.get(pool.id, 0))
            )
    rows.sort(key=lambda r: r.pool.name)
    return render(
        request,
        "work_pools.html",
        title="Work pools",
        rows=rows,
        pool_types=[t.value for t in WorkPoolType],
    )


@router.get("/work-pools/{name}", response_class=HTMLResponse)
async def work_pool_page(request: Request, name: str) -> HTMLResponse:
    async with database(request).read() as session:
        pool = await storage.read_work_pool(session, name)
        if pool is None:
            return not_found(request, f"work pool {name!r}")
        queues: list[WorkQueue] = await storage.read_work_queues(session, name)
        workers = await storage.read_workers(session, name, utcnow(), _timeout(request))
        queue_ids = [q.id for q in queues]
        waiting = await _waiting_by_queue(session, queue_ids)
        runs = []
        if queue_ids:
            ids = list(
                (
                    await session.execute(
                        sa.select(flow_runs.c.id)
                        .where(flow_runs.c.work_queue_id.in_(queue_ids))
                        .order_by(flow_runs.c.created.desc())
                        .limit(RECENT_RUNS)
                    )
                ).scalars()
            )
            if ids:
                runs = await run_storage.read_flow_runs(
                    session, FlowRunFilter(id=ids, limit=RECENT_RUNS)
                )
    queue_names = {q.id: q.name for q in queues}
    online, offline = _status_counts(workers)
    return render(
        request,
        "work_pool.html",
        title=f"Work pool {pool.name}",
        pool=pool,
        queues=queues,
        workers=workers,
        waiting=waiting,
        total_waiting=sum(waiting.values()),
        online=online,
        offline=offline,
        runs=runs,
        queue_names=queue_names,
    )
