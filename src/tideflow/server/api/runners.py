"""The runners' websocket ``/api/runners/ws`` (ADR 0001): hello/welcome, heartbeats, and the run
offers and cancels the dispatcher pushes. Claims go through ``POST /flow_runs/{id}/set_state``."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any, Literal
from uuid import UUID

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tideflow.schemas.states import utcnow
from tideflow.server.api.errors import format_validation_errors
from tideflow.server.context import ServerContext
from tideflow.server.services.dispatcher import RunnerConnection
from tideflow.server.storage import runners as storage

__all__ = ["Heartbeat", "Hello", "router"]

router = APIRouter(prefix="/runners", tags=["runners"])

HELLO_TIMEOUT = 10.0
POLICY_VIOLATION = 1008


class Hello(BaseModel):
    """The runner's first frame."""

    model_config = ConfigDict(extra="ignore")

    type: Literal["hello"]
    runner_id: UUID
    name: str = Field(min_length=1, max_length=200)
    deployment_ids: list[UUID]
    limit: int | None = Field(None, ge=1)


class Heartbeat(BaseModel):
    model_config = ConfigDict(extra="ignore")

    type: Literal["heartbeat"]
    running: list[UUID] = Field(default_factory=list)


def _error(detail: str) -> str:
    return json.dumps({"type": "error", "detail": detail})


def _parse(text: str) -> tuple[dict[str, Any] | None, str | None]:
    try:
        value = json.loads(text)
    except ValueError:
        return None, "frames must be JSON objects"
    if not isinstance(value, dict):
        return None, "frames must be JSON objects"
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
    if hello is None:
        await websocket.send_text(_error(problem or "invalid hello"))
        await websocket.close(POLICY_VIOLATION)
        return
    async with context.database.write() as session:
        await storage.register_runner(
            session, hello.runner_id, hello.name, hello.deployment_ids, hello.limit, utcnow()
        )
    interval = context.settings.runner_heartbeat_interval
    await websocket.send_text(json.dumps({"type": "welcome", "heartbeat_interval": interval}))
    conn = RunnerConnection(hello.runner_id, hello.name, hello.deployment_ids, hello.limit)
    writer = asyncio.create_task(_write(websocket, conn))
    try:
        await context.dispatcher.connect(conn)
        await _read(websocket, context, conn)
    except WebSocketDisconnect:
        pass
    finally:
        context.dispatcher.disconnect(conn)
        writer.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await writer


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
        else:
            conn.send(_error(problem or f"unknown frame type {kind!r} (expected 'heartbeat')"))
