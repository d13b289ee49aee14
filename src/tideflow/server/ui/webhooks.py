"""The webhooks page (read-only): each webhook's URL, verification, limits and state, and the
latest requests the webhooks refused with why (their ``tideflow.webhook.failed`` events).
Like the API, it needs the ``write`` scope: a slug is what lets a sender in."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from tideflow.schemas.events import EventFilter
from tideflow.schemas.webhooks import WebhookFilter
from tideflow.server.events.webhooks import FAILED_EVENT
from tideflow.server.storage import events as event_storage
from tideflow.server.storage import webhooks as storage
from tideflow.server.ui.rendering import database, render

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

RECENT_FAILURES = 20


@router.get("/webhooks", response_class=HTMLResponse)
async def webhooks_page(request: Request) -> HTMLResponse:
    async with database(request).read() as session:
        hooks = await storage.read_webhooks(session, WebhookFilter(limit=500))
        failures = await event_storage.read_events(
            session,
            EventFilter(
                event_names=[FAILED_EVENT],
                resource_id_prefixes=["tideflow.webhook."],
                limit=RECENT_FAILURES,
            ),
        )
    base = str(request.base_url).rstrip("/")
    return render(
        request,
        "webhooks.html",
        title="Webhooks",
        hooks=hooks,
        base=base,
        failures=failures.events,
    )
