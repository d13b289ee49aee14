"""Event routes: ingest (POST batch, websocket ``/events/in``), query (filter, count-by, one event)
and the live websocket ``/events/out`` (backfill then live; see ``server.events.stream``)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, Literal
from uuid import UUID

from fastapi import APIRouter, Request, WebSocket, WebSocketDisconnect
from pydantic import ValidationError

from tideflow.schemas.events import EventFilter, EventPage, ReceivedEvent
from tideflow.server.api.deps import DB, get_context
from tideflow.server.api.errors import format_validation_errors
from tideflow.server.context import ServerContext
from tideflow.server.events.hotpath import gc_paused
from tideflow.server.events.ingest import Checked, check_events, check_frame
from tideflow.server.events.stream import StreamRequest, event_stream
from tideflow.server.storage import NotFound
from tideflow.server.storage import events as storage
from tideflow.server.storage.events import EVENTS_TOPIC

__all__ = ["router"]

router = APIRouter(prefix="/events", tags=["events"])

logger = logging.getLogger("tideflow.server")

POLICY_VIOLATION = 1008


# Websocket ingest: frames are received and checked ahead of the writer (at most _READ_AHEAD per
# connection, so a waiting writer stops the reading and the sender's acks come later), and the
# writer stores everything already checked in one transaction (at most _GROUP_EVENTS events):
# fewer, larger commits cost SQLite less per event.
_READ_AHEAD = 8
_GROUP_EVENTS = 2_000


async def _store(context: ServerContext, batches: list[Checked]) -> None:
    """Store the checked events of ``batches`` in one transaction, once there is room for them."""
    todo = [e for c in batches for e in c.events]
    if not todo:
        return
    await context.broker.wait_for_room(EVENTS_TOPIC, context.settings.events_backlog_limit)
    async with context.database.write() as session:
        await storage.insert_events(session, todo)


@router.post("")
async def create_events(body: list[Any], request: Request) -> dict[str, Any]:
    """Store a batch: ``accepted`` ids (stored, or already stored) and ``refused`` with reasons.
    The answer waits while the trigger engine is too far behind (backpressure)."""
    context = get_context(request)
    with gc_paused():
        checked = check_events(body, context.settings.events_max_payload_bytes)
    await _store(context, [checked])
    return {"accepted": [str(e.id) for e in checked.events], "refused": checked.refused}


def _check_frame(text: str, max_payload_bytes: int, max_frame_bytes: int) -> Checked:
    with gc_paused():
        try:
            return check_frame(text, max_payload_bytes, max_frame_bytes)
        except Exception as exc:  # a frame nobody foresaw still gets an answer; the reader goes on
            logger.exception("could not check an /events/in frame")
            reason = f"frame could not be checked: {type(exc).__name__}"
            return Checked(refused=[{"index": 0, "id": None, "reason": reason}])


async def _read_frames(
    websocket: WebSocket, frames: asyncio.Queue[Checked | None], room: asyncio.Semaphore,
    max_payload_bytes: int, max_frame_bytes: int,
) -> None:  # fmt: skip
    try:
        while True:
            await room.acquire()
            text = await websocket.receive_text()
            frames.put_nowait(_check_frame(text, max_payload_bytes, max_frame_bytes))
    finally:
        frames.put_nowait(None)  # the writer stops after what was read


@router.websocket("/in")
async def events_in(websocket: WebSocket) -> None:
    """Each frame is one event or a list; the answers ``{"ack", "refused"}`` come in frame order,
    each after the commit that stored its events."""
    context: ServerContext = websocket.app.state.context
    await websocket.accept()
    frames: asyncio.Queue[Checked | None] = asyncio.Queue()
    room = asyncio.Semaphore(_READ_AHEAD)
    settings = context.settings
    reader = asyncio.create_task(
        _read_frames(
            websocket, frames, room, settings.events_max_payload_bytes,
            settings.server_max_request_bytes,
        )
    )  # fmt: skip
    try:
        ended = False
        while not ended:
            first = await frames.get()
            if first is None:
                break
            group, size = [first], len(first.events)
            while size < _GROUP_EVENTS and not frames.empty():
                more = frames.get_nowait()
                if more is None:
                    ended = True
                    break
                group.append(more)
                size += len(more.events)
            await _store(context, group)
            for checked in group:
                ack = [str(e.id) for e in checked.events]
                await websocket.send_json({"ack": ack, "refused": checked.refused})
                room.release()
    except WebSocketDisconnect:
        return
    finally:
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, RuntimeError):
            await reader


@router.post("/filter")
async def read_events(db: DB, body: EventFilter | None = None) -> EventPage:
    """One page of matching events (newest first by default); follow ``next_cursor`` for more."""
    async with db.read() as session:
        return await storage.read_events(session, body or EventFilter())


@router.post("/count-by/{by}")
async def count_events(
    by: Literal["day", "hour", "event", "resource"], db: DB, body: EventFilter | None = None
) -> list[dict[str, Any]]:
    """Matching events counted per UTC day or hour (oldest first), or per event name or resource."""
    async with db.read() as session:
        return await storage.count_events_by(session, body or EventFilter(), by)


@router.get("/{event_id}")
async def read_event(event_id: UUID, db: DB) -> ReceivedEvent:
    async with db.read() as session:
        event = await storage.read_event(session, event_id)
    if event is None:
        raise NotFound(f"event {event_id} not found")
    return event


async def _until_closed(websocket: WebSocket) -> None:
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return


@router.websocket("/out")
async def events_out(websocket: WebSocket) -> None:
    """First frame ``{"filter", "backfill_minutes", "queue_size"}``; then frames
    ``{"type": "event", "event"}`` and ``{"type": "dropped", "count"}``."""
    context: ServerContext = websocket.app.state.context
    await websocket.accept()
    try:
        request = StreamRequest.model_validate_json(await websocket.receive_text())
    except ValidationError as exc:
        detail = format_validation_errors(list(exc.errors()))
        await websocket.send_json({"type": "error", "detail": detail})
        await websocket.close(POLICY_VIOLATION)
        return
    except WebSocketDisconnect:
        return
    closed = asyncio.create_task(_until_closed(websocket))
    frames = event_stream(context.broker, context.database, request)
    try:
        while not closed.done():
            next_frame = asyncio.ensure_future(anext(frames))
            await asyncio.wait({next_frame, closed}, return_when=asyncio.FIRST_COMPLETED)
            if not next_frame.done():
                # Let the generator finish its cancellation before it is closed below.
                next_frame.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await next_frame
                break
            await websocket.send_json(next_frame.result())
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        closed.cancel()
        await frames.aclose()
