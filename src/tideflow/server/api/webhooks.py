"""Webhook routes (scope ``write`` for every one, reads included: a slug is what lets a sender in):
create (slug and secret generated unless given; the secret is answered this once), list, read,
change, rotate the slug and/or secret, delete. The ingest path is ``api.hooks``."""

from __future__ import annotations

import secrets
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Depends, status

from tideflow.schemas.webhooks import (
    WEBHOOK_CONTEXT_NAMES,
    Webhook,
    WebhookCreate,
    WebhookCreated,
    WebhookFilter,
    WebhookRotate,
    WebhookUpdate,
)
from tideflow.server.api.deps import DB, get_secret_box
from tideflow.server.api.validation import InvalidInput
from tideflow.server.secret_box import SecretBox
from tideflow.server.storage import NotFound
from tideflow.server.storage import webhooks as storage
from tideflow.server.triggers.templates import check_template

__all__ = ["new_secret", "new_slug", "router"]

router = APIRouter(prefix="/webhooks", tags=["webhooks"])

Box = Depends(get_secret_box)


def new_slug() -> str:
    """A random slug: 32 URL-safe characters (192 bits), unguessable."""
    return secrets.token_urlsafe(24)


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def _missing(webhook_id: UUID) -> NotFound:
    return NotFound(f"webhook {webhook_id} not found")


def _check(template: Any) -> None:
    problem = check_template(template, where="template", names=WEBHOOK_CONTEXT_NAMES)
    if problem:
        raise InvalidInput([(("body", "template"), problem)])


def _created(stored: storage.StoredWebhook, secret: str | None) -> WebhookCreated:
    return WebhookCreated(**stored.webhook.model_dump(), secret=secret)


@router.post(
    "/",
    status_code=status.HTTP_201_CREATED,
    responses={409: {"description": "A webhook of that name or slug exists."}},
)
async def create_webhook(body: WebhookCreate, db: DB, box: SecretBox = Box) -> WebhookCreated:
    """Create a webhook; the answer holds its secret (for ``token``/``hmac`` verification), the
    only time it is shown."""
    _check(body.template)
    secret = body.secret or (new_secret() if body.verification != "none" else None)
    token = box.encrypt(secret) if secret is not None else None
    async with db.write() as session:
        stored = await storage.create_webhook(
            session, body, slug=body.slug or new_slug(), secret_token=token
        )
    return _created(stored, secret)


@router.post("/filter")
async def read_webhooks(db: DB, body: WebhookFilter | None = None) -> list[Webhook]:
    """Webhooks sorted by name, narrowed by the filter."""
    async with db.read() as session:
        return await storage.read_webhooks(session, body or WebhookFilter())


@router.get("/{webhook_id}")
async def read_webhook(webhook_id: UUID, db: DB) -> Webhook:
    async with db.read() as session:
        found = await storage.read_webhook(session, webhook_id)
    if found is None:
        raise _missing(webhook_id)
    return found.webhook


@router.patch("/{webhook_id}")
async def update_webhook(
    webhook_id: UUID, body: WebhookUpdate, db: DB, box: SecretBox = Box
) -> WebhookCreated:
    """Change the fields the body gives. Switching to a verification that needs a secret when the
    webhook has none makes one, answered in ``secret`` this once."""
    if body.template is not None:
        _check(body.template)
    secret = None
    async with db.write() as session:
        current = await storage.read_webhook(session, webhook_id)
        if current is None:
            raise _missing(webhook_id)
        needs = (body.verification or current.webhook.verification) != "none"
        if needs and current.secret_token is None:
            secret = new_secret()
        token = box.encrypt(secret) if secret is not None else None
        stored = await storage.update_webhook(session, webhook_id, body, secret_token=token)
    if stored is None:
        raise _missing(webhook_id)
    return _created(stored, secret)


@router.post("/{webhook_id}/rotate")
async def rotate_webhook(
    webhook_id: UUID, db: DB, body: WebhookRotate | None = None, box: SecretBox = Box
) -> WebhookCreated:
    """Replace the slug (the old URL answers 404 at once) and/or the secret (answered once)."""
    body = body or WebhookRotate()
    secret = new_secret() if body.secret else None
    async with db.write() as session:
        stored = await storage.rotate_webhook(
            session,
            webhook_id,
            slug=new_slug() if body.slug else None,
            secret_token=box.encrypt(secret) if secret is not None else None,
        )
    if stored is None:
        raise _missing(webhook_id)
    return _created(stored, secret)


@router.delete("/{webhook_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_webhook(webhook_id: UUID, db: DB) -> None:
    async with db.write() as session:
        if not await storage.delete_webhook(session, webhook_id):
            raise _missing(webhook_id)
