"""Event pages: the feed (filters, newest first, older pages by cursor, live over the events
websocket; new rows are rendered here as fragments so live and loaded rows look the same) and the
page of one event."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from tideflow.schemas.events import EventFilter
from tideflow.server.storage import events as storage
from tideflow.server.ui.rendering import database, not_found, read_by_id, render

__all__ = ["EventQuery", "router"]

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50
MAX_ROWS_PER_FETCH = 100


@dataclass
class EventQuery:
    """The feed's filters: an event name (``*`` patterns, else a prefix), a resource id (a trailing
    ``*`` makes it a prefix) and a related resource id."""

    name: str = ""
    resource: str = ""
    related: str = ""

    @classmethod
    def parse(cls, request: Request) -> EventQuery:
        q = request.query_params
        return cls(
            name=q.get("name", "").strip(),
            resource=q.get("resource", "").strip(),
            related=q.get("related", "").strip(),
        )

    @property
    def params(self) -> dict[str, str]:
        return {"name": self.name, "resource": self.resource, "related": self.related}

    def event_filter(self, **extra: Any) -> EventFilter:
        criteria: dict[str, Any] = {}
        if "*" in self.name:
            criteria["event_patterns"] = [self.name]
        elif self.name:
            criteria["event_prefixes"] = [self.name]
        if self.resource.endswith("*"):
            criteria["resource_id_prefixes"] = [self.resource.rstrip("*")]
        elif self.resource:
            criteria["resource_ids"] = [self.resource]
        if self.related:
            criteria["related_ids"] = [self.related]
        return EventFilter(**criteria, **extra)

    def stream_filter_json(self) -> str:
        """The filter for the live websocket's first frame."""
        return json.dumps(
            self.event_filter().model_dump(
                mode="json", exclude_none=True, exclude={"limit", "order", "cursor"}
            )
        )


@router.get("/events", response_class=HTMLResponse)
async def events_page(request: Request) -> HTMLResponse:
    query = EventQuery.parse(request)
    cursor = request.query_params.get("cursor") or None
    try:
        flt = query.event_filter(limit=PAGE_SIZE, cursor=cursor)
    except ValueError:
        flt = query.event_filter(limit=PAGE_SIZE)
    async with database(request).read() as session:
        page = await storage.read_events(session, flt)
    return render(
        request,
        "events.html",
        title="Event feed",
        query=query,
        events=page.events,
        total=page.total,
        next_cursor=page.next_cursor,
        live=cursor is None,
    )


@router.get("/events/rows", response_class=HTMLResponse)
async def event_rows(request: Request) -> HTMLResponse:
    """Rows for events that just arrived on the live feed, in the order of ``ids``."""
    ids = []
    for raw in request.query_params.getlist("id")[:MAX_ROWS_PER_FETCH]:
        try:
            ids.append(UUID(raw))
        except ValueError:
            continue
    events = []
    if ids:
        async with database(request).read() as session:
            page = await storage.read_events(session, EventFilter(ids=ids, limit=len(ids)))
        events = page.events
    return render(request, "_event_rows.html", events=events, expanded=False)


@router.get("/events/{event_id}", response_class=HTMLResponse)
async def event_page(request: Request, event_id: str) -> HTMLResponse:
    event = await read_by_id(request, event_id, storage.read_event)
    if event is None:
        return not_found(request, f"event {event_id}")
    return render(request, "event.html", title=event.event, event=event)
