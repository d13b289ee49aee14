"""Inbound webhooks, the pure part: verify a request, read its body, build the template context
and turn what the template rendered into an event. Plus :class:`WebhookLimiter`, the per-webhook
rate limit and failure-record budget one server holds (built with the ServerContext).

Nothing here touches the database or the network; ``api.hooks`` is the I/O shell.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qs

from tideflow.schemas.events import RESOURCE_ID, RESOURCE_NAME, RESOURCE_ROLE
from tideflow.schemas.webhooks import Webhook

__all__ = [
    "FAILED_EVENT",
    "MAX_FAILURE_EVENTS",
    "WebhookLimiter",
    "event_from_rendered",
    "parse_body",
    "template_context",
    "verification_problem",
    "webhook_resource",
]

FAILED_EVENT = "tideflow.webhook.failed"
MAX_FAILURE_EVENTS = 10  # failure events one webhook records a minute; the rest are only answered
_MAX_ENTRIES = 10_000  # webhooks tracked by the limiter before it starts afresh
_HIDDEN_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization"})
_NAMESPACE = uuid.UUID("6f1c3f4e-6a8e-4c59-9c2b-4e0f5e1d7a10")  # event ids from a template's "id"


def webhook_resource(webhook: Webhook, role: str | None = None) -> dict[str, str]:
    """The webhook as an event resource (``tideflow.webhook.<id>``), or related in ``role``."""
    labels = {RESOURCE_ID: f"tideflow.webhook.{webhook.id}", RESOURCE_NAME: webhook.name}
    if role is not None:
        labels[RESOURCE_ROLE] = role
    return labels


def _hmac_problem(secret: str, body: bytes, given: str) -> str | None:
    value = given.strip()
    if value.lower().startswith("sha256="):
        value = value[7:]
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    # compare_digest on equal-type ASCII: constant time whatever the given value holds.
    if not hmac.compare_digest(value.lower().encode("ascii", "replace"), expected.encode()):
        return "the signature does not match the body"
    return None


def verification_problem(
    webhook: Webhook, secret: str | None, headers: Mapping[str, str], body: bytes
) -> str | None:
    """Why the request does not prove it comes from the sender (None: it does, or no check).

    ``headers`` have lower-case names."""
    if webhook.verification == "none":
        return None
    header = webhook.header or ""
    given = headers.get(header.lower())
    if secret is None:
        return "the webhook has no secret to check against (rotate it to make one)"
    if given is None:
        return f"the {header} header is missing"
    if webhook.verification == "token":
        if not hmac.compare_digest(given.encode("utf-8", "replace"), secret.encode()):
            return f"the {header} header does not match the webhook's secret"
        return None
    return _hmac_problem(secret, body, given)


def parse_body(content_type: str | None, raw: bytes) -> Any:
    """The body as templates see it: JSON parsed, a form as a dict (repeated fields as lists),
    other text as a string. ValueError (naming the problem) for a body that says it is JSON and
    is not, or is not UTF-8."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("the body is not UTF-8 text") from None
    if media == "application/x-www-form-urlencoded":
        fields = parse_qs(text, keep_blank_values=True, max_num_fields=1_000)
        return {k: v[0] if len(v) == 1 else v for k, v in fields.items()}
    if not text.strip():
        return {}
    is_json = media == "application/json" or media.endswith("+json")
    if is_json or text.lstrip()[:1] in ("{", "["):
        try:
            return json.loads(text)
        except ValueError as exc:
            if is_json:
                raise ValueError(f"the body is not valid JSON: {exc}") from None
    return text


def template_context(
    webhook: Webhook,
    *,
    body: Any,
    raw: bytes,
    headers: Mapping[str, str],
    query: Mapping[str, str],
    now: dt.datetime,
) -> dict[str, Any]:
    """What a webhook's template can read (``schemas.webhooks.WEBHOOK_CONTEXT_NAMES``); the
    credentials (Authorization, cookies, the token header) are left out of ``headers``."""
    hidden = set(_HIDDEN_HEADERS)
    if webhook.verification == "token" and webhook.header:
        hidden.add(webhook.header.lower())
    return {
        "body": body,
        "raw_body": raw.decode("utf-8", "replace"),
        "headers": {k: v for k, v in headers.items() if k not in hidden},
        "query": dict(query),
        "webhook": {"id": str(webhook.id), "name": webhook.name, "slug": webhook.slug},
        "now": now.isoformat(),
    }


def _labels(value: Any, what: str) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise ValueError(f"{what} must render to an object of labels, got {type(value).__name__}")
    out = {}
    for key, label in value.items():
        if isinstance(label, Mapping | list):
            raise ValueError(f"{what} label {str(key)[:80]!r} must be text, got an object or list")
        out[str(key)] = "" if label is None else str(label)
    return out


def event_from_rendered(rendered: Any, webhook: Webhook, now: dt.datetime) -> dict[str, Any]:
    """The raw event (for the ingest checks) a template rendered, or ValueError naming the
    problem. The webhook is added as a related resource in the role ``webhook``; an ``id`` that
    is not a UUID becomes one derived from it, so a sender's retried delivery is stored once."""
    if isinstance(rendered, str):
        try:
            rendered = json.loads(rendered)
        except ValueError as exc:
            raise ValueError(f"the template did not render JSON: {exc}") from None
    if not isinstance(rendered, Mapping):
        raise ValueError(f"the template must render an object, got {type(rendered).__name__}")
    name = rendered.get("event")
    if not isinstance(name, str) or not name.strip():
        raise ValueError("the template's 'event' rendered empty or not text")
    event: dict[str, Any] = {
        "event": name.strip(),
        "resource": _labels(rendered.get("resource"), "resource"),
        "occurred": rendered.get("occurred") or now.isoformat(),
        "payload": rendered.get("payload") if rendered.get("payload") is not None else {},
    }
    if not isinstance(event["payload"], Mapping):
        event["payload"] = {"value": event["payload"]}
    related = rendered.get("related")
    related = [] if related is None else related
    if not isinstance(related, list):
        raise ValueError("the template's 'related' must render a list of resources")
    event["related"] = [_labels(r, f"related[{i}]") for i, r in enumerate(related)]
    event["related"].append(webhook_resource(webhook, "webhook"))
    given_id = rendered.get("id")
    if given_id not in (None, ""):
        try:
            event["id"] = str(uuid.UUID(str(given_id)))
        except ValueError:
            event["id"] = str(uuid.uuid5(_NAMESPACE, f"{webhook.id}:{given_id}"))
    return event


class WebhookLimiter:
    """Per-webhook token buckets (``rate_limit`` requests a minute, bursts up to that many) and a
    budget of failure events a minute, in memory: each server replica limits on its own."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._buckets: dict[uuid.UUID, tuple[float, float]] = {}
        self._failures: dict[uuid.UUID, tuple[float, int]] = {}

    def allow(self, webhook_id: uuid.UUID, per_minute: int) -> float | None:
        """None when a request may go on (taking a token); else seconds until one is free."""
        now = self._clock()
        tokens, last = self._buckets.get(webhook_id, (float(per_minute), now))
        tokens = min(float(per_minute), tokens + (now - last) * per_minute / 60.0)
        if len(self._buckets) >= _MAX_ENTRIES and webhook_id not in self._buckets:
            self._buckets.clear()
        if tokens < 1.0:
            self._buckets[webhook_id] = (tokens, now)
            return (1.0 - tokens) * 60.0 / per_minute
        self._buckets[webhook_id] = (tokens - 1.0, now)
        return None

    def may_record_failure(self, webhook_id: uuid.UUID) -> bool:
        """Whether another failure event may be stored for this webhook this minute."""
        now = self._clock()
        start, count = self._failures.get(webhook_id, (now, 0))
        if now - start >= 60.0:
            start, count = now, 0
        if len(self._failures) >= _MAX_ENTRIES and webhook_id not in self._failures:
            self._failures.clear()
        if count >= MAX_FAILURE_EVENTS:
            return False
        self._failures[webhook_id] = (start, count + 1)
        return True
