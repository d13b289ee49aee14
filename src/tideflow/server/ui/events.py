"""Event pages: the feed (filters, newest first, older pages by cursor, live over the events
websocket; new rows are rendered here as fragments so live and loaded rows look the same) and the
page of one event."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from tideflow.schemas import FlowRunFilter
from tideflow.schemas.deployments import DeploymentFilter
from tideflow.schemas.events import EventFilter
from tideflow.schemas.states import utcnow
from tideflow.server.storage import deployments as deployment_storage
from tideflow.server.storage import events as storage
from tideflow.server.storage import flow_runs as run_storage
from tideflow.server.storage.event_filters import filter_clauses
from tideflow.server.storage.tables import events as events_table
from tideflow.server.ui import queries
from tideflow.server.ui.finding import (
    RANGES,
    TimeRange,
    bucket_counts,
    firings_for_event,
    parse_range,
)
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
    deployment: str = ""  # a deployment picked by name: its events and its runs' events
    span: TimeRange = field(default_factory=lambda: TimeRange("", None, None, "", ""))

    @classmethod
    def parse(cls, request: Request) -> EventQuery:
        q = request.query_params
        deployment = q.get("deployment", "").strip()
        try:
            deployment = str(UUID(deployment)) if deployment else ""
        except ValueError:
            deployment = ""
        return cls(
            name=q.get("name", "").strip(),
            resource=q.get("resource", "").strip(),
            related=q.get("related", "").strip(),
            deployment=deployment,
            span=parse_range(q, utcnow()),
        )

    @property
    def params(self) -> dict[str, str]:
        return {"name": self.name, "resource": self.resource, "related": self.related,
                "deployment": self.deployment, **self.span.params}  # fmt: skip

    @property
    def filtered(self) -> bool:
        return any(self.params.values())

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
        if self.deployment:
            criteria["related_ids"] = [f"tideflow.deployment.{self.deployment}"]
        elif self.related:
            criteria["related_ids"] = [self.related]
        if self.span.since:
            criteria["occurred_after"] = self.span.since
        if self.span.until:
            criteria["occurred_before"] = self.span.until
        return EventFilter(**{**criteria, **extra})

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
    now = utcnow()
    async with database(request).read() as session:
        page = await storage.read_events(session, flt)
        deployments = await deployment_storage.read_deployments(
            session, DeploymentFilter(limit=1000)
        )
        dialect = session.get_bind().dialect.name
        # The histogram counts the filtered events over the chosen range (the last 24 h if none).
        counted = query.event_filter(
            occurred_after=query.span.since or now - RANGES["24h"][1],
            occurred_before=query.span.until or now,
        )
        chart = await bucket_counts(
            session,
            events_table.c.occurred,
            filter_clauses(counted, dialect),
            counted.occurred_after or now,
            counted.occurred_before or now,
            events_table,
        )
    deployments.sort(key=lambda d: d.full_name)
    return render(
        request,
        "events.html",
        title="Event feed",
        query=query,
        events=page.events,
        total=page.total,
        next_cursor=page.next_cursor,
        # A feed that ends in the past is not live.
        live=cursor is None and query.span.until is None,
        deployments=deployments,
        ranges=RANGES,
        chart=chart,
        chart_page="/events",
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
    async with database(request).read() as session:
        fired = await firings_for_event(session, event.id, event.occurred, event.received)
        run_ids = await queries.runs_triggered_by(session, [event.id])
        runs = (
            await run_storage.read_flow_runs(
                session, FlowRunFilter(id=run_ids, sort="CREATED_ASC", limit=100)
            )
            if run_ids
            else []
        )
    return render(
        request, "event.html", title=event.event, event=event, fired=fired, triggered_runs=runs
    )
