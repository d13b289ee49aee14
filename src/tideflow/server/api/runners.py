"""The runners' websocket ``/api/runners/ws`` (ADR 0001): hello/welcome, heartbeats, the run offers
and cancels the dispatcher pushes, and batched claims (``claim`` → ``claimed``): the same
compare-and-set Scheduled → Pending as ``POST /flow_runs/{id}/set_state``, many runs per frame.
A runner that stops on purpose sends ``goodbye`` first; a close without one (a killed runner) is
recorded for the runner monitor, which crashes its runs unless it reconnects within a short grace.

A worker is a runner whose hello names a ``work_pool_name`` (and its ``worker_type``) instead of
deployments: it is offered the runs of the pool's queues, its claims also check the queue's and the
pool's concurrency limits and pause (WAIT when they do not allow a start), and ``poll`` asks for the
pool's due runs again (the fallback for a missed push)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
from typing import Any, Literal
from uuid import UUID

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from tideflow.schemas import FlowRun, SetStateStatus, StateProposal
from tideflow.schemas.limits import escape_lone_surrogates, lone_surrogate_path
from tideflow.schemas.states import Crashed, Pending, utcnow
from tideflow.server.api.errors import format_validation_errors
from tideflow.server.context import ServerContext
from tideflow.server.services.dispatcher import RunnerConnection
from tideflow.server.storage import flow_runs as runs_storage
from tideflow.server.storage import runners as storage
from tideflow.server.storage import work_pools as pools_storage
from tideflow.server.storage.deployments import mark_deployments_polled
from tideflow.server.storage.errors import NotFound

__all__ = ["Claim", "ClaimResult", "Claimed", "Heartbeat", "Hello", "router"]

router = APIRouter(prefix="/runners", tags=["runners"])

HELLO_TIMEOUT = 10.0
POLICY_VIOLATION = 1008


class Hello(BaseModel):
    """The runner's first frame."""

    model_config = ConfigDict(extra="ignore")

    type: Literal["hello"]
    runner_id: UUID
    name: str = Field(min_length=1, max_length=200)
    deployment_ids: list[UUID] = Field(default_factory=list, max_length=10_000)
    limit: int | None = Field(None, ge=1, le=1_000_000)
    work_pool_name: str | None = Field(None, min_length=1, max_length=200)
    worker_type: str | None = Field(None, min_length=1, max_length=40)


class Heartbeat(BaseModel):
    model_config = ConfigDict(extra="ignore")

    type: Literal["heartbeat"]
    running: list[UUID] = Field(default_factory=list)


class ClaimItem(BaseModel):
    model_config = ConfigDict(extra="ignore")

    flow_run_id: UUID
    expected_state_id: UUID


class Claim(BaseModel):
    """Claim runs for this runner: ``id`` is echoed in the answer."""

    model_config = ConfigDict(extra="ignore")

    type: Literal["claim"]
    id: int
    claims: list[ClaimItem] = Field(min_length=1, max_length=1000)


class ClaimResult(BaseModel):
    """One claim's outcome: ACCEPT (with the run as it is now), WAIT (concurrency) or REJECT."""

    flow_run_id: UUID
    status: SetStateStatus
    reason: str | None = None
    flow_run: FlowRun | None = None


class Claimed(BaseModel):
    type: Literal["claimed"] = "claimed"
    id: int
    results: list[ClaimResult]


def _error(detail: str) -> str:
    return json.dumps({"type": "error", "detail": detail})


def _parse(text: str) -> tuple[dict[str, Any] | None, str | None]:
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return None, "frames must be JSON objects"
    if not isinstance(value, dict):
        return None, "frames must be JSON objects"
    # A lone surrogate cannot be stored (nor echoed back as UTF-8): refuse the frame, naming where.
    where = lone_surrogate_path(value) if "\\u" in text else None
    if where is not None:
        field = escape_lone_surrogates(".".join(map(str, where)))
        return None, f"{field}: text holds a lone surrogate, which is not valid Unicode"
    return value, None


async def _write(websocket: WebSocket, conn: RunnerConnection) -> None:
    while True:
        await websocket.send_text(await conn.outbox.get())


@router.websocket("/ws")
async def runner_socket(websocket: WebSocket) -> None:
    """One runner: hello → welcome + offers of due runs; heartbeats keep it and its deployments alive."""
    context: ServerContext = websocket.app.state.context
    await websocket.accept()
    try:
        text = await asyncio.wait_for(websocket.receive_text(), HELLO_TIMEOUT)
    except TimeoutError:
        await websocket.send_text(_error(f"no hello within {HELLO_TIMEOUT:.0f} s"))
        await websocket.close(POLICY_VIOLATION)
        return
    except WebSocketDisconnect:
        return
    frame, problem = _parse(text)
    try:
        hello = Hello.model_validate(frame) if frame is not None else None
    except ValidationError as exc:
        problem = "invalid hello: " + format_validation_errors(list(exc.errors()))
        hello = None
    pool_id: UUID | None = None
    if hello is not None and hello.work_pool_name is not None:
        pool_id, problem = await _worker_pool(context, hello)
        if pool_id is None:
            hello = None
    if hello is None:
        await websocket.send_text(_error(problem or "invalid hello"))
        await websocket.close(POLICY_VIOLATION)
        return
    async with context.database.write() as session:
        await storage.register_runner(
            session, hello.runner_id, hello.name, hello.deployment_ids, hello.limit, utcnow()
        )
        if pool_id is not None:
            await _worker_alive(session, hello.runner_id, pool_id, hello.name)
    interval = context.settings.runner_heartbeat_interval
    welcome = {"type": "welcome", "heartbeat_interval": interval, "claims": True}
    await websocket.send_text(json.dumps(welcome))
    conn = RunnerConnection(
        hello.runner_id, hello.name, hello.deployment_ids, hello.limit, work_pool_id=pool_id
    )
    writer = asyncio.create_task(_write(websocket, conn))
    context.runner_disconnects.opened(hello.runner_id)
    goodbye = False
    try:
        await context.dispatcher.connect(conn)
        await _read(websocket, context, conn)
        goodbye = True  # _read returns only on the runner's goodbye
    except WebSocketDisconnect:
        pass
    finally:
        context.dispatcher.disconnect(conn)
        # Closed without a goodbye (a killed runner): its runs crash after a short grace.
        context.runner_disconnects.closed(conn.runner_id, conn.name, utcnow(), goodbye=goodbye)
        writer.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await writer


async def _worker_alive(session: AsyncSession, worker_id: UUID, pool_id: UUID, name: str) -> None:
    """The worker is online, and the deployments of its pool are served (READY)."""
    now = utcnow()
    await pools_storage.register_worker(session, worker_id, pool_id, name, now)
    served = await pools_storage.read_pool_deployment_ids(session, pool_id)
    await mark_deployments_polled(session, served, now)


async def _worker_pool(context: ServerContext, hello: Hello) -> tuple[UUID | None, str | None]:
    """The id of the pool a worker's hello names, or why it cannot serve it."""
    assert hello.work_pool_name is not None
    async with context.database.read() as session:
        pool = await pools_storage.read_work_pool(session, hello.work_pool_name)
    if pool is None:
        return None, (
            f"work pool {hello.work_pool_name!r} not found; create it with: tideflow work-pool "
            f"create {hello.work_pool_name} --type process"
        )
    if hello.worker_type is not None and hello.worker_type != pool.type.value:
        return None, (
            f"work pool {pool.name!r} is of type {pool.type.value!r}; a {hello.worker_type!r} "
            "worker cannot run its flow runs"
        )
    return pool.id, None


async def _end_orphans(
    session: AsyncSession, context: ServerContext, conn: RunnerConnection, running: list[UUID]
) -> None:
    """Crash the runner's claimed runs that it no longer executes (their process ended while this
    server was down or restarting, so their last state never arrived): without this they stayed
    Pending or Running forever, since the runner itself keeps heartbeating. A claim younger than
    a few heartbeats may not be in the runner's list yet and is left alone."""
    grace = max(3 * context.settings.runner_heartbeat_interval, 15.0)
    now = utcnow()
    before = now - dt.timedelta(seconds=grace)
    for run_id in await storage.read_orphaned_runs(session, conn.runner_id, running, before):
        message = (
            f"runner {conn.name!r} ({conn.runner_id}) no longer runs it: the run was not among "
            f"the runs it reports for more than {grace:g} s (its process ended while the server "
            "could not be reached, so its last state never arrived)"
        )
        await runs_storage.set_flow_run_state(
            session, run_id, StateProposal(state=Crashed(message))
        )


async def _read(websocket: WebSocket, context: ServerContext, conn: RunnerConnection) -> None:
    while True:
        frame, problem = _parse(await websocket.receive_text())
        kind = frame.get("type") if frame is not None else None
        if kind == "heartbeat":
            try:
                beat = Heartbeat.model_validate(frame)
            except ValidationError as exc:
                conn.send(
                    _error("invalid heartbeat: " + format_validation_errors(list(exc.errors())))
                )
                continue
            async with context.database.write() as session:
                known = await storage.heartbeat(session, conn.runner_id, utcnow(), beat.running)
                if known is None:  # forgotten after a silence: register it again
                    await storage.register_runner(
                        session,
                        conn.runner_id,
                        conn.name,
                        list(conn.deployment_ids),
                        conn.limit,
                        utcnow(),
                    )
                    await storage.heartbeat(session, conn.runner_id, utcnow(), beat.running)
                if conn.work_pool_id is not None:
                    await _worker_alive(session, conn.runner_id, conn.work_pool_id, conn.name)
                await _end_orphans(session, context, conn, beat.running)
        elif kind == "goodbye":  # a clean shutdown: its runs are not crashed early
            if conn.work_pool_id is not None:
                async with context.database.write() as session:
                    await pools_storage.set_worker_offline(session, conn.runner_id)
            return
        elif kind == "poll" and conn.work_pool_id is not None:
            await context.dispatcher.offer_pool_runs(conn.work_pool_id, only=conn)
        elif kind == "claim":
            try:
                claim = Claim.model_validate(frame)
            except ValidationError as exc:
                conn.send(_error("invalid claim: " + format_validation_errors(list(exc.errors()))))
                continue
            conn.send(await _claim(context, conn, claim))
        else:
            conn.send(
                _error(
                    problem
                    or f"unknown frame type {kind!r} (expected 'heartbeat', 'claim', 'poll' or "
                    "'goodbye')"
                )
            )


async def _claim(context: ServerContext, conn: RunnerConnection, claim: Claim) -> str:
    """Compare-and-set each run Scheduled → Pending for ``conn``; the ``claimed`` frame.

    On SQLite (one writer at a time) the whole batch is one write transaction: one commit instead
    of one per run. On PostgreSQL each claim is its own transaction: two runners locking the same
    runs' rows and deployments' rows in one transaction each could deadlock.
    """
    results: list[ClaimResult] = []  # in the frame's order: the runner's oldest offer first
    if context.database.is_sqlite:
        async with context.database.write() as session:
            for item in claim.claims:
                results.append(await _claim_one(session, conn, item))
    else:
        for item in claim.claims:
            async with context.database.write() as session:
                results.append(await _claim_one(session, conn, item))
    if conn.work_pool_id is not None and any(r.status is SetStateStatus.WAIT for r in results):
        context.dispatcher.claim_waited(conn.work_pool_id)
    return Claimed(id=claim.id, results=results).model_dump_json()


async def _pool_refusal(
    session: AsyncSession, conn: RunnerConnection, item: ClaimItem
) -> ClaimResult | None:
    """For a worker: REJECT a run outside its pool; WAIT when its queue or pool is paused or full."""
    assert conn.work_pool_id is not None
    route = await pools_storage.read_run_route(session, item.flow_run_id)
    if route is None or route.pool_id != conn.work_pool_id:
        outside = f"flow run {item.flow_run_id} is not in this worker's work pool"
        return ClaimResult(
            flow_run_id=item.flow_run_id, status=SetStateStatus.REJECT, reason=outside
        )
    reason = await pools_storage.missing_slot(session, route.queue_id, item.flow_run_id)
    if reason is not None:
        return ClaimResult(flow_run_id=item.flow_run_id, status=SetStateStatus.WAIT, reason=reason)
    return None


async def _claim_one(session: AsyncSession, conn: RunnerConnection, item: ClaimItem) -> ClaimResult:
    if conn.work_pool_id is not None:
        refused = await _pool_refusal(session, conn, item)
        if refused is not None:
            return refused
    proposal = StateProposal(
        state=Pending(runner_id=str(conn.runner_id)), expected_state_id=item.expected_state_id
    )
    try:
        decision, run = await runs_storage.set_flow_run_state(session, item.flow_run_id, proposal)
    except NotFound as exc:
        return ClaimResult(
            flow_run_id=item.flow_run_id, status=SetStateStatus.REJECT, reason=str(exc)
        )
    accepted = decision.status is SetStateStatus.ACCEPT
    return ClaimResult(
        flow_run_id=item.flow_run_id,
        status=decision.status,
        reason=decision.reason,
        flow_run=run if accepted else None,
    )
