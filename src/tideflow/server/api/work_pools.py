"""Work pool routes: pools (create, list, read, update, pause/resume, delete), their queues and their
workers, addressed by name (``/work_pools/{name}/queues/{queue}``).

Pausing or resuming a pool or a queue, or raising a limit, tells the dispatcher, which offers the
pool's due runs again to its connected workers.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response, status
from pydantic import BaseModel, ConfigDict, Field

from tideflow.schemas.states import utcnow
from tideflow.schemas.work_pools import (
    Worker,
    WorkPool,
    WorkPoolCreate,
    WorkPoolType,
    WorkPoolUpdate,
    WorkQueue,
    WorkQueueCreate,
    WorkQueueUpdate,
    default_base_job_template,
)
from tideflow.server.api.deps import DB, Actor, get_context
from tideflow.server.api.validation import InvalidInput
from tideflow.server.context import ServerContext
from tideflow.server.storage import work_pools as storage
from tideflow.server.storage.change_events import emit_change_event
from tideflow.server.storage.work_pools import InvalidWorkPoolInput

__all__ = ["WorkPoolFilter", "router"]

router = APIRouter(prefix="/work_pools", tags=["work pools"])

Context = Annotated[ServerContext, Depends(get_context)]


class WorkPoolFilter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limit: int = Field(200, ge=1, le=1000)
    offset: int = Field(0, ge=0, le=1_000_000)


def _invalid(exc: InvalidWorkPoolInput) -> InvalidInput:
    return InvalidInput([(("body",), str(exc))])


@router.post(
    "/",
    status_code=status.HTTP_201_CREATED,
    responses={409: {"description": "A work pool with this name exists."}},
)
async def create_work_pool(body: WorkPoolCreate, db: DB) -> WorkPool:
    """Create a pool with its ``default`` queue (409 when the name is taken)."""
    async with db.write() as session:
        return await storage.create_work_pool(session, body)


@router.post("/filter")
async def read_work_pools(db: DB, body: WorkPoolFilter | None = None) -> list[WorkPool]:
    flt = body or WorkPoolFilter()
    async with db.read() as session:
        return await storage.read_work_pools(session, flt.limit, flt.offset)


@router.get("/default_base_job_template/{pool_type}")
async def read_default_base_job_template(pool_type: WorkPoolType) -> dict[str, object]:
    """The template a new pool of this type gets when none is given."""
    return default_base_job_template(pool_type)


@router.get("/{name}")
async def read_work_pool(name: str, db: DB) -> WorkPool:
    async with db.read() as session:
        return await storage.require_work_pool(session, name)


@router.patch("/{name}")
async def update_work_pool(name: str, body: WorkPoolUpdate, db: DB, context: Context) -> WorkPool:
    """Change the fields sent (``is_paused`` pauses or resumes)."""
    try:
        async with db.write() as session:
            pool = await storage.update_work_pool(session, name, body)
    except InvalidWorkPoolInput as exc:
        raise _invalid(exc) from None
    context.dispatcher.pool_changed(pool.id)
    return pool


async def _pause_pool(
    name: str, paused: bool, db: DB, context: Context, by: str | None
) -> WorkPool:
    async with db.read() as session:
        before = await storage.read_work_pool(session, name)
    pool = await update_work_pool(name, WorkPoolUpdate(is_paused=paused), db, context)
    if before is not None and before.is_paused != paused:
        async with db.write() as session:
            await emit_change_event(session, kind="work-pool", object_id=pool.id, name=pool.name,
                                    verb="paused" if paused else "resumed", by=by)  # fmt: skip
    return pool


@router.post("/{name}/pause")
async def pause_work_pool(name: str, db: DB, context: Context, by: Actor) -> WorkPool:
    """No run of the pool is offered or claimed until it is resumed (running ones go on)."""
    return await _pause_pool(name, True, db, context, by)


@router.post("/{name}/resume")
async def resume_work_pool(name: str, db: DB, context: Context, by: Actor) -> WorkPool:
    return await _pause_pool(name, False, db, context, by)


@router.delete("/{name}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_work_pool(name: str, db: DB) -> Response:
    """Delete the pool, its queues and workers; its deployments are detached from it."""
    async with db.write() as session:
        await storage.delete_work_pool(session, name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{name}/workers")
async def read_workers(name: str, db: DB, context: Context) -> list[Worker]:
    """The pool's workers, ONLINE when heard from within the runners' heartbeat timeout."""
    timeout = context.settings.runner_heartbeat_timeout
    async with db.read() as session:
        return await storage.read_workers(session, name, utcnow(), timeout)


# --- queues ---------------------------------------------------------------------------------------
@router.post(
    "/{name}/queues/",
    status_code=status.HTTP_201_CREATED,
    responses={409: {"description": "The pool has a queue with this name."}},
)
async def create_work_queue(name: str, body: WorkQueueCreate, db: DB) -> WorkQueue:
    async with db.write() as session:
        return await storage.create_work_queue(session, name, body)


@router.get("/{name}/queues/")
async def read_work_queues(name: str, db: DB) -> list[WorkQueue]:
    """The pool's queues, highest priority (lowest number) first."""
    async with db.read() as session:
        return await storage.read_work_queues(session, name)


@router.get("/{name}/queues/{queue_name}")
async def read_work_queue(name: str, queue_name: str, db: DB) -> WorkQueue:
    async with db.read() as session:
        return await storage.require_work_queue(session, name, queue_name)


@router.patch(
    "/{name}/queues/{queue_name}",
    responses={409: {"description": "The new name is another queue's of the pool."}},
)
async def update_work_queue(
    name: str, queue_name: str, body: WorkQueueUpdate, db: DB, context: Context
) -> WorkQueue:
    try:
        async with db.write() as session:
            queue = await storage.update_work_queue(session, name, queue_name, body)
    except InvalidWorkPoolInput as exc:
        raise _invalid(exc) from None
    context.dispatcher.queue_changed(queue.id, queue.work_pool_id)
    return queue


async def _pause_queue(
    name: str, queue_name: str, paused: bool, db: DB, context: Context, by: str | None
) -> WorkQueue:
    async with db.read() as session:
        before = await storage.require_work_queue(session, name, queue_name)
    body = WorkQueueUpdate(is_paused=paused)
    queue = await update_work_queue(name, queue_name, body, db, context)
    if before.is_paused != paused:
        pool = {"tideflow.resource.id": f"tideflow.work-pool.{queue.work_pool_id}",
                "tideflow.resource.name": name, "tideflow.resource.role": "work-pool"}  # fmt: skip
        async with db.write() as session:
            await emit_change_event(session, kind="work-queue", object_id=queue.id,
                                    name=queue.name, verb="paused" if paused else "resumed",
                                    by=by, related=[pool])  # fmt: skip
    return queue


@router.post("/{name}/queues/{queue_name}/pause")
async def pause_work_queue(
    name: str, queue_name: str, db: DB, context: Context, by: Actor
) -> WorkQueue:
    return await _pause_queue(name, queue_name, True, db, context, by)


@router.post("/{name}/queues/{queue_name}/resume")
async def resume_work_queue(
    name: str, queue_name: str, db: DB, context: Context, by: Actor
) -> WorkQueue:
    return await _pause_queue(name, queue_name, False, db, context, by)


@router.delete("/{name}/queues/{queue_name}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_work_queue(name: str, queue_name: str, db: DB) -> Response:
    """Delete a queue (not the default one, a 422); its deployments and waiting runs move to the
    pool's default queue."""
    try:
        async with db.write() as session:
            await storage.delete_work_queue(session, name, queue_name)
    except InvalidWorkPoolInput as exc:
        raise _invalid(exc) from None
    return Response(status_code=status.HTTP_204_NO_CONTENT)
