"""The webhook calls (scope ``write``), sent with ``SyncClient.send`` / ``AsyncClient.send``."""

from __future__ import annotations

from uuid import UUID

from tideflow.client._calls import Call, _model, _none
from tideflow.schemas.webhooks import (
    Webhook,
    WebhookCreate,
    WebhookCreated,
    WebhookFilter,
    WebhookRotate,
    WebhookUpdate,
)

__all__ = [
    "create_webhook",
    "delete_webhook",
    "read_webhook",
    "read_webhooks",
    "rotate_webhook",
    "update_webhook",
]


def create_webhook(body: WebhookCreate) -> Call[WebhookCreated]:
    data = body.model_dump(mode="json", exclude_unset=True)
    return Call("POST", "/webhooks/", _model(WebhookCreated), data)


def read_webhooks(flt: WebhookFilter | None = None) -> Call[list[Webhook]]:
    body = (flt or WebhookFilter()).model_dump(mode="json", exclude_none=True)
    return Call("POST", "/webhooks/filter", _model(list[Webhook]), body)


def read_webhook(webhook_id: UUID) -> Call[Webhook]:
    return Call("GET", f"/webhooks/{webhook_id}", _model(Webhook))


def update_webhook(webhook_id: UUID, body: WebhookUpdate) -> Call[WebhookCreated]:
    data = body.model_dump(mode="json", exclude_unset=True)
    return Call("PATCH", f"/webhooks/{webhook_id}", _model(WebhookCreated), data)


def rotate_webhook(webhook_id: UUID, body: WebhookRotate) -> Call[WebhookCreated]:
    data = body.model_dump(mode="json")
    return Call("POST", f"/webhooks/{webhook_id}/rotate", _model(WebhookCreated), data)


def delete_webhook(webhook_id: UUID) -> Call[None]:
    return Call("DELETE", f"/webhooks/{webhook_id}", _none)
