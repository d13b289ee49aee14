"""The task workers' websocket ``/api/task_workers/ws`` (ADR 0005): hello/welcome, the background
task runs the hub offers, claims (``claim`` → ``claimed``: a compare-and-set Scheduled → Pending for
this worker), heartbeats naming the runs still in hand (answered with a ``cancel`` for each being cancelled; a cancel
is also pushed when it is asked), and goodbye. A close without a goodbye (a
killed worker) hands its unfinished runs back at once, to be offered again."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tideflow.schemas.states import utcnow
from tideflow.schemas.task_workers import TaskRunClaimResult
from tideflow.server.context import ServerContext
from tideflow.server.services.task_workers import TaskWorkerConnection, cancel_message
from tideflow.server.storage import task_workers as storage

__all__ = ["TaskWorkerClaim", "TaskWorkerHeartbeat", "TaskWorkerHello", "router"]

router = APIRouter(prefix="/task_workers", tags=["task workers"])

HELLO_TIMEOUT = 10.0
POLICY_VIOLATION = 1008
SERVICE_RESTART = 1012


class TaskWorkerHello(BaseModel):
    """The worker's first frame: who it is and the task names (keys) it runs."""

    model_config = ConfigDict(extra="ignore")

    type: Literal["hello"]
    worker_id: UUID
    name: str = Field(min_length=1, max_length=200)
    task_keys: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        min_length=1, max_length=1000
    )


class TaskWorkerHeartbeat(BaseModel):
    model_config = ConfigDict(extra="ignore")

    type: Literal["heartbeat"]
    running: list[UUID] = Field(default_factory=list, max_length=100_000)


class TaskWorkerClaim(BaseModel):
    """Claim one offered run; ``id`` is echoed in the answer."""

    model_config = ConfigDict(extra="ignore")

    type: Literal["claim"]
    id: int
    task_run_id: UUID
    expected_state_id: UUID


def _error(detail: str) -> str:
    return json.dumps({"type": "error", "detail": detail})


def _parse(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def _problem(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "frame"
    return f"{where}: {first['msg']}"


async def _write(websocket: WebSocket, conn: TaskWorkerConnection) -> None:
    while True:
        await websocket.send_text(await conn.outbox.get())


@router.websocket("/ws")
async def task_worker_socket(websocket: WebSocket) -> None:
    """One task worker: hello → welcome + its backlog; then offers, claims and heartbeats."""
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
    frame = _parse(text)
    try:
        hello = TaskWorkerHello.model_validate(frame) if frame is not None else None
        problem = "frames must be JSON objects"
    except ValidationError as exc:
        hello, problem = None, "invalid hello: " + _problem(exc)
    if hello is None:
        await websocket.send_text(_error(problem))
        await websocket.close(POLICY_VIOLATION)
        return
    welcome = {
        "type": "welcome",
        "heartbeat_interval": context.settings.runner_heartbeat_interval,
    }
    await websocket.send_text(json.dumps(welcome))
    conn = TaskWorkerConnection(hello.worker_id, hello.name, hello.task_keys)
    writer = asyncio.create_task(_write(websocket, conn))
    lost = False
    try:
        await context.task_workers.connect(conn)
        await _read(websocket, context, conn)  # returns only on the worker's goodbye
    except WebSocketDisconnect as exc:
        # Closed without a goodbye: the worker died (or its network did). Not when this server is
        # the one going away (1012, a restart): the worker reconnects and keeps its runs; if it
        # does not, the monitor hands them back after the heartbeat timeout.
        lost = exc.code != SERVICE_RESTART
    finally:
        context.task_workers.disconnect(conn)
        writer.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await writer
    if lost:
        # Its claimed, unfinished runs go back to Scheduled (or Crashed past the redelivery limit).
        await context.task_workers.release(worker_id=conn.worker_id)


async def _read(websocket: WebSocket, context: ServerContext, conn: TaskWorkerConnection) -> None:
    while True:
        frame = _parse(await websocket.receive_text())
        kind = frame.get("type") if frame is not None else None
        if kind == "claim":
            try:
                claim = TaskWorkerClaim.model_validate(frame)
            except ValidationError as exc:
                conn.send(_error("invalid claim: " + _problem(exc)))
                continue
            async with context.database.write() as session:
                result = await storage.claim_task_run(
                    session, claim.task_run_id, claim.expected_state_id, conn.worker_id, utcnow()
                )
            conn.send(_claimed(claim.id, result))
        elif kind == "heartbeat":
            try:
                beat = TaskWorkerHeartbeat.model_validate(frame)
            except ValidationError as exc:
                conn.send(_error("invalid heartbeat: " + _problem(exc)))
                continue
            if beat.running:
                async with context.database.write() as session:
                    cancelling = await storage.heartbeat_task_runs(
                        session, conn.worker_id, beat.running, utcnow()
                    )
                for run_id in cancelling:
                    conn.send(cancel_message(run_id))
        elif kind == "goodbye":
            return
        else:
            conn.send(
                _error(
                    "frames must be JSON objects"
                    if frame is None
                    else f"unknown frame type {kind!r} (expected 'claim', 'heartbeat' or 'goodbye')"
                )
            )


def _claimed(claim_id: int, result: TaskRunClaimResult) -> str:
    return '{"type":"claimed","id":' + str(claim_id) + ',"result":' + result.model_dump_json() + "}"
