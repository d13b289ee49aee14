"""The live event stream behind ``/api/events/out``: backfill, then live, with no loss or doubling.

The stream subscribes to the broker BEFORE reading the backfill from storage, so an event committed
while the backfill is read is in both; the ids the backfill sent are remembered and skipped when
they come again live. The subscription is bounded: when the client falls behind, the broker counts
what it could not queue and the stream reports it as ``{"type": "dropped", "count": n}``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from tideflow.schemas.events import EventFilter, ReceivedEvent
from tideflow.server.events.broker import Broker
from tideflow.server.storage import Database
from tideflow.server.storage.events import EVENTS_TOPIC, read_events

__all__ = ["MAX_QUEUE", "StreamRequest", "event_stream"]

MAX_QUEUE = 10_000
_PAGE = 500


class StreamRequest(BaseModel):
    """The client's first frame on ``/api/events/out``."""

    model_config = ConfigDict(extra="forbid")

    filter: EventFilter = Field(default_factory=EventFilter)
    backfill_minutes: float = Field(0, ge=0, le=60 * 24 * 366)
    queue_size: int = Field(MAX_QUEUE, ge=1, le=MAX_QUEUE)


def _frame(event: ReceivedEvent) -> dict[str, Any]:
    return {"type": "event", "event": event.model_dump(mode="json")}


async def _backfill(
    database: Database, flt: EventFilter, minutes: float, now: dt.datetime
) -> AsyncIterator[ReceivedEvent]:
    start = now - dt.timedelta(minutes=minutes)
    after = max(start, flt.occurred_after) if flt.occurred_after else start
    page_filter = flt.model_copy(
        update={"occurred_after": after, "order": "oldest", "limit": _PAGE, "cursor": None}
    )
    while True:
        async with database.read() as session:
            page = await read_events(session, page_filter)
        for event in page.events:
            yield event
        if page.next_cursor is None:
            return
        page_filter = page_filter.model_copy(update={"cursor": page.next_cursor})


async def event_stream(
    broker: Broker, database: Database, request: StreamRequest
) -> AsyncIterator[dict[str, Any]]:
    """Frames for the client: backfilled events oldest first, then live ones, and drop notices."""
    sub = broker.subscribe(EVENTS_TOPIC, maxsize=request.queue_size)
    flt = request.filter
    try:
        sent: set[UUID] = set()
        if request.backfill_minutes > 0:
            now = dt.datetime.now(dt.UTC)
            async for event in _backfill(database, flt, request.backfill_minutes, now):
                sent.add(event.id)
                yield _frame(event)
        reported = 0
        while True:
            if sub.dropped > reported:
                yield {"type": "dropped", "count": sub.dropped - reported}
                reported = sub.dropped
            try:
                event = sub.get_nowait()
            except asyncio.QueueEmpty:
                event = await sub.get()
            if event.id in sent:
                sent.discard(event.id)
                continue
            if flt.includes(event):
                yield _frame(event)
    finally:
        sub.close()
