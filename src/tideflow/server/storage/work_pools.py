"""Work pools, work queues and workers: create/read/update/delete, resolving a deployment's queue,
the workers' liveness, and the questions the dispatcher and a worker's claims ask (which due runs a
pool's workers may take, in queue-priority order; whether a queue and its pool have a free slot).

A pool is created with a queue named ``default`` (its ``default_queue_id``), which cannot be
deleted. Deleting a pool deletes its queues and workers (foreign keys) and detaches its deployments.
Concurrency: a run counts against its queue and pool while its state is active (Pending, Running,
Cancelling); a claim checks both under row locks on PostgreSQL (SQLite's single writer serialises it).
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from tideflow.schemas.states import StateType, utcnow
from tideflow.schemas.work_pools import (
    DEFAULT_QUEUE_NAME,
    Worker,
    WorkerStatus,
    WorkPool,
    WorkPoolCreate,
    WorkPoolUpdate,
    WorkQueue,
    WorkQueueCreate,
    WorkQueueUpdate,
    default_base_job_template,
)
from tideflow.server.orchestration import ACTIVE_TYPES
from tideflow.server.storage.dialect import dialect_name
from tideflow.server.storage.errors import Conflict, NotFound, StorageError
from tideflow.server.storage.tables import deployments, flow_runs, work_pools, work_queues, workers

__all__ = [
    "InvalidWorkPoolInput",
    "QueueRoute",
    "create_work_pool",
    "create_work_queue",
    "delete_work_pool",
    "delete_work_queue",
    "missing_slot",
    "read_pool_deployment_ids",
    "read_queue_route",
    "read_run_route",
    "read_work_pool",
    "read_work_pools",
    "read_work_queue",
    "read_work_queue_by_id",
    "read_work_queues",
    "read_workers",
    "register_worker",
    "require_work_pool",
    "require_work_queue",
    "resolve_work_queue",
    "set_worker_offline",
    "touch_worker",
    "update_work_pool",
    "update_work_queue",
]

_ACTIVE = [t.value for t in ACTIVE_TYPES]
_Q = work_queues.c
_P = work_pools.c

_QUEUE_SELECT = sa.select(work_queues, _P.name.label("work_pool_name")).join(
    work_pools, _P.id == _Q.work_pool_id
)


class InvalidWorkPoolInput(StorageError):
    """A request that names something unusable (e.g. changing a pool's type); a 422."""


@dataclass(frozen=True)
class QueueRoute:
    """What the dispatcher needs to know about a work queue."""

    queue_id: UUID
    pool_id: UUID
    priority: int
    paused: bool  # the queue or its pool


def _pool(row: Any) -> WorkPool:
    return WorkPool.model_validate(dict(row._mapping))


def _queue(row: Any) -> WorkQueue:
    return WorkQueue.model_validate(dict(row._mapping))


# --- pools ----------------------------------------------------------------------------------------
async def create_work_pool(session: AsyncSession, body: WorkPoolCreate) -> WorkPool:
    """Create the pool with its ``default`` queue; Conflict when the name is taken."""
    exists = await session.execute(sa.select(_P.id).where(_P.name == body.name))
    if exists.first() is not None:
        raise Conflict(f"work pool {body.name!r} already exists")
    now = utcnow()
    pool_id, queue_id = uuid.uuid4(), uuid.uuid4()
    template = body.base_job_template
    await session.execute(
        sa.insert(work_pools).values(
            id=pool_id,
            name=body.name,
            type=body.type.value,
            description=body.description,
            base_job_template=template
            if template is not None
            else default_base_job_template(body.type),
            concurrency_limit=body.concurrency_limit,
            is_paused=body.is_paused,
            default_queue_id=queue_id,
            created=now,
            updated=now,
        )
    )
    await _insert_queue(
        session, queue_id, pool_id, WorkQueueCreate(name=DEFAULT_QUEUE_NAME), 1, now
    )
    return await require_work_pool(session, body.name)


async def read_work_pool(session: AsyncSession, name: str) -> WorkPool | None:
    row = (await session.execute(sa.select(work_pools).where(_P.name == name))).first()
    return _pool(row) if row is not None else None


async def require_work_pool(session: AsyncSession, name: str) -> WorkPool:
    pool = await read_work_pool(session, name)
    if pool is None:
        raise NotFound(f"work pool {name!r} not found")
    return pool


async def read_work_pools(
    session: AsyncSession, limit: int = 200, offset: int = 0
) -> list[WorkPool]:
    stmt = sa.select(work_pools).order_by(_P.name).limit(limit).offset(offset)
    return [_pool(row) for row in await session.execute(stmt)]


async def update_work_pool(session: AsyncSession, name: str, body: WorkPoolUpdate) -> WorkPool:
    """Change the fields sent; ``is_paused: false`` on a paused pool resumes it."""
    pool = await require_work_pool(session, name)
    sent = body.model_dump(exclude_unset=True)
    if "is_paused" in sent and sent["is_paused"] is None:
        raise InvalidWorkPoolInput("is_paused must not be null")
    if "base_job_template" in sent and sent["base_job_template"] is None:
        sent["base_job_template"] = default_base_job_template(pool.type)
    if sent:
        await session.execute(
            sa.update(work_pools).where(_P.id == pool.id).values(**sent, updated=utcnow())
        )
    return await require_work_pool(session, name)


async def delete_work_pool(session: AsyncSession, name: str) -> WorkPool:
    """Delete the pool, its queues and workers; its deployments keep running nowhere (detached)."""
    pool = await require_work_pool(session, name)
    queue_ids = sa.select(_Q.id).where(_Q.work_pool_id == pool.id)
    await session.execute(
        sa.update(deployments)
        .where(deployments.c.work_queue_id.in_(queue_ids))
        .values(work_queue_id=None)
    )
    await session.execute(sa.delete(work_queues).where(_Q.work_pool_id == pool.id))
    await session.execute(sa.delete(workers).where(workers.c.work_pool_id == pool.id))
    await session.execute(sa.delete(work_pools).where(_P.id == pool.id))
    return pool


# --- queues ---------------------------------------------------------------------------------------
async def _insert_queue(
    session: AsyncSession,
    queue_id: UUID,
    pool_id: UUID,
    body: WorkQueueCreate,
    priority: int,
    now: dt.datetime,
) -> None:
    await session.execute(
        sa.insert(work_queues).values(
            id=queue_id,
            work_pool_id=pool_id,
            name=body.name,
            description=body.description,
            priority=priority,
            concurrency_limit=body.concurrency_limit,
            is_paused=body.is_paused,
            created=now,
            updated=now,
        )
    )


async def create_work_queue(
    session: AsyncSession, pool_name: str, body: WorkQueueCreate
) -> WorkQueue:
    """Add a queue to the pool (priority default: after the others); Conflict on a taken name."""
    pool = await require_work_pool(session, pool_name)
    if await read_work_queue(session, pool_name, body.name) is not None:
        raise Conflict(f"work pool {pool_name!r} already has a queue named {body.name!r}")
    priority = body.priority
    if priority is None:
        last = await session.execute(
            sa.select(sa.func.max(_Q.priority)).where(_Q.work_pool_id == pool.id)
        )
        priority = int(last.scalar_one() or 0) + 1
    queue_id = uuid.uuid4()
    await _insert_queue(session, queue_id, pool.id, body, priority, utcnow())
    return await require_work_queue(session, pool_name, body.name)


async def read_work_queue(session: AsyncSession, pool_name: str, name: str) -> WorkQueue | None:
    stmt = _QUEUE_SELECT.where(_P.name == pool_name, _Q.name == name)
    row = (await session.execute(stmt)).first()
    return _queue(row) if row is not None else None


async def require_work_queue(session: AsyncSession, pool_name: str, name: str) -> WorkQueue:
    queue = await read_work_queue(session, pool_name, name)
    if queue is None:
        await require_work_pool(session, pool_name)
        raise NotFound(f"work pool {pool_name!r} has no queue named {name!r}")
    return queue


async def read_work_queue_by_id(session: AsyncSession, queue_id: UUID) -> WorkQueue | None:
    row = (await session.execute(_QUEUE_SELECT.where(_Q.id == queue_id))).first()
    return _queue(row) if row is not None else None


async def read_work_queues(session: AsyncSession, pool_name: str) -> list[WorkQueue]:
    """The pool's queues, highest priority (lowest number) first."""
    await require_work_pool(session, pool_name)
    stmt = _QUEUE_SELECT.where(_P.name == pool_name).order_by(_Q.priority, _Q.name)
    return [_queue(row) for row in await session.execute(stmt)]


async def update_work_queue(
    session: AsyncSession, pool_name: str, name: str, body: WorkQueueUpdate
) -> WorkQueue:
    queue = await require_work_queue(session, pool_name, name)
    sent = body.model_dump(exclude_unset=True)
    for key in ("name", "priority", "is_paused"):
        if key in sent and sent[key] is None:
            raise InvalidWorkPoolInput(f"{key} must not be null")
    new_name = sent.get("name", name)
    if new_name != name and await read_work_queue(session, pool_name, new_name) is not None:
        raise Conflict(f"work pool {pool_name!r} already has a queue named {new_name!r}")
    if sent:
        await session.execute(
            sa.update(work_queues).where(_Q.id == queue.id).values(**sent, updated=utcnow())
        )
    return await require_work_queue(session, pool_name, new_name)


async def delete_work_queue(session: AsyncSession, pool_name: str, name: str) -> WorkQueue:
    """Delete a queue (not the pool's default); its deployments move to the default queue."""
    pool = await require_work_pool(session, pool_name)
    queue = await require_work_queue(session, pool_name, name)
    if queue.id == pool.default_queue_id:
        raise InvalidWorkPoolInput(
            f"queue {name!r} is the default queue of work pool {pool_name!r} and cannot be deleted"
        )
    await session.execute(
        sa.update(deployments)
        .where(deployments.c.work_queue_id == queue.id)
        .values(work_queue_id=pool.default_queue_id)
    )
    await session.execute(
        sa.update(flow_runs)
        .where(
            flow_runs.c.work_queue_id == queue.id,
            flow_runs.c.state_type == StateType.SCHEDULED.value,
        )
        .values(work_queue_id=pool.default_queue_id)
    )
    await session.execute(sa.delete(work_queues).where(_Q.id == queue.id))
    return queue


async def resolve_work_queue(
    session: AsyncSession, pool_name: str, queue_name: str | None
) -> tuple[WorkPool, WorkQueue]:
    """The pool and queue a deployment names: the pool's default queue when none is named, and a
    named queue the pool lacks is created (as a Prefect user expects). NotFound for the pool."""
    pool = await require_work_pool(session, pool_name)
    if queue_name is None:
        queue = (
            await read_work_queue_by_id(session, pool.default_queue_id)
            if pool.default_queue_id
            else None
        )
        if queue is None:
            raise NotFound(f"work pool {pool_name!r} has no default queue")
        return pool, queue
    queue = await read_work_queue(session, pool_name, queue_name)
    if queue is None:
        queue = await create_work_queue(session, pool_name, WorkQueueCreate(name=queue_name))
    return pool, queue


# --- workers --------------------------------------------------------------------------------------
async def register_worker(
    session: AsyncSession, worker_id: UUID, pool_id: UUID, name: str, now: dt.datetime
) -> None:
    """Insert or refresh the worker as online."""
    values = {"work_pool_id": pool_id, "name": name, "last_heartbeat": now, "online": True}
    updated = await session.execute(
        sa.update(workers).where(workers.c.id == worker_id).values(**values).returning(workers.c.id)
    )
    if updated.first() is None:
        await session.execute(sa.insert(workers).values(id=worker_id, created=now, **values))


async def touch_worker(session: AsyncSession, worker_id: UUID, now: dt.datetime) -> None:
    await session.execute(
        sa.update(workers).where(workers.c.id == worker_id).values(last_heartbeat=now, online=True)
    )


async def set_worker_offline(session: AsyncSession, worker_id: UUID) -> None:
    """The worker said goodbye or was found gone."""
    await session.execute(sa.update(workers).where(workers.c.id == worker_id).values(online=False))


async def read_workers(
    session: AsyncSession, pool_name: str, now: dt.datetime, timeout: float
) -> list[Worker]:
    """The pool's workers, last heard from first; ONLINE when heard within ``timeout`` seconds."""
    pool = await require_work_pool(session, pool_name)
    cutoff = now - dt.timedelta(seconds=timeout)
    stmt = (
        sa.select(workers)
        .where(workers.c.work_pool_id == pool.id)
        .order_by(workers.c.last_heartbeat.desc())
        .limit(500)
    )
    out = []
    for row in await session.execute(stmt):
        alive = row.online and row.last_heartbeat >= cutoff
        status = WorkerStatus.ONLINE if alive else WorkerStatus.OFFLINE
        out.append(Worker.model_validate({**row._mapping, "status": status}))
    return out


# --- dispatch -------------------------------------------------------------------------------------
async def read_queue_route(session: AsyncSession, queue_id: UUID) -> QueueRoute | None:
    stmt = (
        sa.select(_Q.work_pool_id, _Q.priority, _Q.is_paused, _P.is_paused.label("pool_paused"))
        .join(work_pools, _P.id == _Q.work_pool_id)
        .where(_Q.id == queue_id)
    )
    row = (await session.execute(stmt)).first()
    if row is None:
        return None
    return QueueRoute(queue_id, row.work_pool_id, row.priority, row.is_paused or row.pool_paused)


async def read_pool_deployment_ids(session: AsyncSession, pool_id: UUID) -> list[UUID]:
    """The deployments whose runs go to one of the pool's queues."""
    stmt = (
        sa.select(deployments.c.id)
        .join(work_queues, _Q.id == deployments.c.work_queue_id)
        .where(_Q.work_pool_id == pool_id)
    )
    return [row.id for row in await session.execute(stmt)]


async def read_run_route(session: AsyncSession, run_id: UUID) -> QueueRoute | None:
    """The route of the work queue the run waits in; None for a run outside any work pool."""
    stmt = sa.select(flow_runs.c.work_queue_id).where(flow_runs.c.id == run_id)
    queue_id = (await session.execute(stmt)).scalar_one_or_none()
    return await read_queue_route(session, queue_id) if queue_id is not None else None


async def missing_slot(session: AsyncSession, queue_id: UUID, run_id: UUID) -> str | None:
    """Why a run of the queue may not start now (paused, or its queue or pool full), else None.

    On PostgreSQL the queue's and the pool's rows are locked for the transaction, so concurrent
    claims in the pool count each other's committed claims.
    """
    stmt = (
        sa.select(
            _Q.name, _Q.is_paused, _Q.concurrency_limit, _P.id.label("pool_id"), _P.name.label("pool"),
            _P.is_paused.label("pool_paused"), _P.concurrency_limit.label("pool_limit"),
        )
        .join(work_pools, _P.id == _Q.work_pool_id)
        .where(_Q.id == queue_id)
    )  # fmt: skip
    if dialect_name(session) == "postgresql":
        stmt = stmt.with_for_update()
    row = (await session.execute(stmt)).first()
    if row is None:
        return "its work queue no longer exists"
    if row.pool_paused:
        return f"work pool {row.pool!r} is paused"
    if row.is_paused:
        return f"work queue {row.name!r} is paused"
    c = flow_runs.c
    others = [c.state_type.in_(_ACTIVE), c.id != run_id]
    if row.concurrency_limit is not None:
        active = sa.select(sa.func.count()).where(c.work_queue_id == queue_id, *others)
        if int((await session.execute(active)).scalar_one()) >= row.concurrency_limit:
            return f"work queue {row.name!r} is at its concurrency limit ({row.concurrency_limit})"
    if row.pool_limit is not None:
        queues = sa.select(_Q.id).where(_Q.work_pool_id == row.pool_id)
        active = sa.select(sa.func.count()).where(c.work_queue_id.in_(queues), *others)
        if int((await session.execute(active)).scalar_one()) >= row.pool_limit:
            return f"work pool {row.pool!r} is at its concurrency limit ({row.pool_limit})"
    return None
