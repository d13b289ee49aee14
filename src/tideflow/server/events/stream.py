"""The live event stream behind ``/api/events/out``: backfill, then live, with no loss or doubling.

The stream subscribes to the broker BEFORE reading the backfill from storage, so an event committed
while the backfill is read is in both; the ids the backfill sent are remembered and skipped when
they come again live. The subscription is bounded: when the client falls behind, the broker counts
what it could not queue and the stream reports it as ``{"type": "dropped", "count": n}``. The
server also says so itself: a warning in its log and a stored ``tideflow.events.dropped`` event
(resource ``tideflow.events-stream.<id>``, payload ``count``), at most one of each per stream every
``REPORT_EVERY`` seconds with the count since the last, and a last one when the stream ends.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from tideflow.schemas.events import Event, EventFilter, ReceivedEvent
from tideflow.server.events.broker import Broker
from tideflow.server.storage import Database
from tideflow.server.storage.events import EVENTS_TOPIC, insert_events, read_events

__all__ = ["MAX_QUEUE", "REPORT_EVERY", "StreamRequest", "event_stream"]

MAX_QUEUE = 10_000
REPORT_EVERY = 10.0  # seconds between a stream's log lines and stored reports of dropped events
_PAGE = 500

_log = logging.getLogger("tideflow.server.events")


class _ShedReport:
    """Counts what one live stream dropped and reports it in the log and as a stored event."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self.stream_id = uuid.uuid4()
        self.since: dt.datetime | None = None
        self.unreported = 0
        self.last = float("-inf")

    def add(self, count: int) -> None:
        if self.since is None:
            self.since = dt.datetime.now(dt.UTC)
        self.unreported += count

    async def flush(self, *, force: bool = False) -> None:
        if not self.unreported or (not force and time.monotonic() - self.last < REPORT_EVERY):
            return
        count, since = self.unreported, self.since
        self.unreported, self.since, self.last = 0, None, time.monotonic()
        _log.warning(
            "live event stream %s fell behind its client and dropped %d event(s)",
            self.stream_id,
            count,
        )
        report = Event(
            event="tideflow.events.dropped",
            resource={
                "tideflow.resource.id": f"tideflow.events-stream.{self.stream_id}",
                "tideflow.resource.name": "live event stream (/api/events/out)",
            },
            payload={"count": count, "since": since.isoformat() if since else None},
        )
        try:
            async with self.database.write() as session:
                await insert_events(session, [report])
        except Exception:  # the report must never end the stream it reports on
            _log.warning("could not store the dropped-events report", exc_info=True)


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
    shed = _ShedReport(database)
    reported = 0
    try:
        sent: set[UUID] = set()
        if request.backfill_minutes > 0:
            now = dt.datetime.now(dt.UTC)
            async for event in _backfill(database, flt, request.backfill_minutes, now):
                sent.add(event.id)
                yield _frame(event)
        while True:
            if sub.dropped > reported:
                shed.add(sub.dropped - reported)
                yield {"type": "dropped", "count": sub.dropped - reported}
                reported = sub.dropped
                await shed.flush()
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
        if sub.dropped > reported:
            shed.add(sub.dropped - reported)
        await shed.flush(force=True)
