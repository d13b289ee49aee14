"""``POST /api/hooks/{slug}``: the one route that takes requests without an API key (see
``api.scopes``). The slug is the capability: an unknown slug and a disabled webhook answer the
same 404. Then, in this order: the webhook's rate limit (429), its body size (413), its
verification (401), the body (400), its template (400, in a worker thread under the bounded
sandbox, ADR 0004) and the event checks (400). Every refusal after the 404 is recorded as a
``tideflow.webhook.failed`` event on the webhook (at most ``MAX_FAILURE_EVENTS`` a minute), so
its owner can see why senders fail (``tideflow webhook inspect``, the UI's webhooks page).
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from tideflow.schemas.webhooks import Webhook, is_slug
from tideflow.server.api.deps import get_context, get_secret_box
from tideflow.server.context import ServerContext
from tideflow.server.events.ingest import check_events
from tideflow.server.events.webhooks import (
    FAILED_EVENT,
    event_from_rendered,
    parse_body,
    template_context,
    verification_problem,
    webhook_resource,
)
from tideflow.server.secret_box import SecretKeyError
from tideflow.server.storage import NotFound
from tideflow.server.storage import events as event_storage
from tideflow.server.storage import webhooks as storage
from tideflow.server.storage.events import EVENTS_TOPIC
from tideflow.server.triggers.template_budget import TemplateLimits
from tideflow.server.triggers.templates import TemplateError, arender_value

__all__ = ["router"]

router = APIRouter(tags=["webhooks"])

logger = logging.getLogger("tideflow.server")

_NOT_FOUND = "no webhook at this address"


class _Refused(Exception):
    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


async def _read_body(request: Request, limit: int) -> bytes:
    too_large = f"the body is larger than this webhook's limit of {limit} bytes"
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise _Refused(413, too_large)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise _Refused(413, too_large)
    return bytes(body)


async def _store(context: ServerContext, raws: list[dict[str, Any]]) -> list[str]:
    checked = check_events(raws, context.settings.events_max_payload_bytes)
    if checked.refused:
        raise _Refused(
            400, f"the event the template made is refused: {checked.refused[0]['reason']}"
        )
    await context.broker.wait_for_room(EVENTS_TOPIC, context.settings.events_backlog_limit)
    async with context.database.write() as session:
        await event_storage.insert_events(session, checked.events)
    return [str(e.id) for e in checked.events]


async def _record_failure(context: ServerContext, webhook: Webhook, refused: _Refused) -> None:
    if not context.webhook_limiter.may_record_failure(webhook.id):
        return
    raw = {
        "event": FAILED_EVENT,
        "resource": webhook_resource(webhook),
        "payload": {"status": refused.status, "reason": refused.detail[:1_000]},
    }
    try:
        checked = check_events([raw], context.settings.events_max_payload_bytes)
        async with context.database.write() as session:
            await event_storage.insert_events(session, checked.events)
    except Exception:  # the refusal stands even when its record cannot be written
        logger.warning("could not record %s for webhook %s", FAILED_EVENT, webhook.name)


async def _event(request: Request, context: ServerContext, webhook: Webhook, secret: str | None
                 ) -> dict[str, Any]:  # fmt: skip
    wait = context.webhook_limiter.allow(webhook.id, webhook.rate_limit)
    if wait is not None:
        raise _Refused(
            429,
            f"this webhook takes at most {webhook.rate_limit} requests a minute",
            {"Retry-After": str(max(1, math.ceil(wait)))},
        )
    raw = await _read_body(request, webhook.max_body_bytes)
    headers = {k.lower(): v for k, v in request.headers.items()}
    problem = verification_problem(webhook, secret, headers, raw)
    if problem:
        raise _Refused(401, f"webhook verification failed: {problem}")
    try:
        body = parse_body(headers.get("content-type"), raw)
    except ValueError as exc:
        raise _Refused(400, str(exc)) from None
    now = _utcnow()
    variables = template_context(
        webhook, body=body, raw=raw, headers=headers, query=dict(request.query_params), now=now
    )
    limits = TemplateLimits(
        timeout=context.settings.templates_render_timeout,
        max_output=context.settings.templates_max_output,
    )
    try:
        rendered = await arender_value(webhook.template, variables, where="template", limits=limits)
        return event_from_rendered(rendered, webhook, now)
    except (TemplateError, ValueError) as exc:
        raise _Refused(400, f"webhook {webhook.name!r}: {exc}") from None


@router.post(
    "/hooks/{slug}",
    responses={
        400: {"description": "The body or the template's event is refused (detail: why)."},
        401: {"description": "The token or signature is missing or wrong."},
        404: {"description": "No enabled webhook has this slug."},
        413: {"description": "The body is above the webhook's limit."},
        429: {"description": "The webhook's rate limit is reached (see Retry-After)."},
    },
)
async def receive_webhook(slug: str, request: Request) -> JSONResponse:
    """Turn the request into an event with the webhook's template and store it: answers the
    stored event's id and name. No API key: the slug (and the webhook's verification) let in."""
    context = get_context(request)
    if not is_slug(slug):
        raise NotFound(_NOT_FOUND)
    async with context.database.read() as session:
        stored = await storage.read_webhook_by_slug(session, slug)
    if stored is None or not stored.webhook.enabled:
        raise NotFound(_NOT_FOUND)
    webhook = stored.webhook
    try:
        secret = None
        if stored.secret_token is not None:
            try:
                secret = get_secret_box(request).decrypt(stored.secret_token, webhook.name)
            except SecretKeyError as exc:
                raise _Refused(500, str(exc)) from None
        raw = await _event(request, context, webhook, secret)
        ids = await _store(context, [raw])
    except _Refused as refused:
        await _record_failure(context, webhook, refused)
        return JSONResponse(
            {"detail": refused.detail}, status_code=refused.status, headers=refused.headers
        )
    return JSONResponse({"event_id": ids[0], "event": raw["event"]})
