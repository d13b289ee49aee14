"""Webhooks: create, read (by id, name or slug), list, change, rotate and delete. Only encrypted
secret tokens reach this module (see server/secret_box.py); the API encrypts and decrypts."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from tideflow.schemas.webhooks import Webhook, WebhookCreate, WebhookFilter, WebhookUpdate
from tideflow.server.storage.errors import Conflict, is_unique_violation
from tideflow.server.storage.tables import webhooks

__all__ = [
    "StoredWebhook",
    "create_webhook",
    "delete_webhook",
    "read_webhook",
    "read_webhook_by_slug",
    "read_webhooks",
    "rotate_webhook",
    "update_webhook",
]

_W = webhooks.c


@dataclass(frozen=True)
class StoredWebhook:
    """A webhook and its encrypted secret (None when it has none)."""

    webhook: Webhook
    secret_token: str | None


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _stored(row: Any) -> StoredWebhook:
    values = dict(row._mapping)
    token = values.pop("secret_token")
    return StoredWebhook(Webhook.model_validate({**values, "has_secret": token is not None}), token)


def _conflict(exc: IntegrityError, name: str) -> Conflict:
    if "slug" in str(exc.orig).lower():
        return Conflict("a webhook with that slug exists already")
    return Conflict(f"a webhook named {name!r} exists already")


async def create_webhook(
    session: AsyncSession, body: WebhookCreate, *, slug: str, secret_token: str | None
) -> StoredWebhook:
    """Store a new webhook; Conflict when its name or slug is taken."""
    now = _now()
    values = {
        **body.model_dump(exclude={"name", "slug", "secret"}),
        "id": uuid.uuid4(),
        "name": body.name,
        "slug": slug,
        "secret_token": secret_token,
        "created": now,
        "updated": now,
    }
    try:
        await session.execute(sa.insert(webhooks).values(**values))
    except IntegrityError as exc:
        if is_unique_violation(exc):
            raise _conflict(exc, body.name) from None
        raise
    found = await read_webhook(session, values["id"])
    assert found is not None
    return found


async def read_webhook(session: AsyncSession, webhook_id: uuid.UUID) -> StoredWebhook | None:
    row = (await session.execute(sa.select(webhooks).where(_W.id == webhook_id))).first()
    return _stored(row) if row is not None else None


async def read_webhook_by_slug(session: AsyncSession, slug: str) -> StoredWebhook | None:
    row = (await session.execute(sa.select(webhooks).where(_W.slug == slug))).first()
    return _stored(row) if row is not None else None


async def read_webhooks(session: AsyncSession, flt: WebhookFilter) -> list[Webhook]:
    stmt = sa.select(webhooks).order_by(_W.name).limit(flt.limit).offset(flt.offset)
    if flt.name is not None:
        stmt = stmt.where(_W.name == flt.name)
    if flt.name_like:
        stmt = stmt.where(_W.name.icontains(flt.name_like, autoescape=True))
    if flt.enabled is not None:
        stmt = stmt.where(_W.enabled == flt.enabled)
    return [_stored(row).webhook for row in await session.execute(stmt)]


async def update_webhook(
    session: AsyncSession,
    webhook_id: uuid.UUID,
    body: WebhookUpdate,
    *,
    secret_token: str | None = None,
) -> StoredWebhook | None:
    """Change the fields ``body`` sets (and the secret, when given); None when there is none."""
    changes: dict[str, Any] = {
        k: v for k, v in body.model_dump(exclude_unset=True).items() if v is not None
    }
    if "signature_header" in body.model_fields_set and body.signature_header is None:
        changes["signature_header"] = None  # back to the kind's default header
    if secret_token is not None:
        changes["secret_token"] = secret_token
    changes["updated"] = _now()
    result = await session.execute(sa.update(webhooks).where(_W.id == webhook_id).values(**changes))
    if not result.rowcount:  # type: ignore[attr-defined]
        return None
    return await read_webhook(session, webhook_id)


async def rotate_webhook(
    session: AsyncSession,
    webhook_id: uuid.UUID,
    *,
    slug: str | None,
    secret_token: str | None,
) -> StoredWebhook | None:
    """Replace the slug and/or the secret; None when there is no such webhook."""
    changes: dict[str, Any] = {"updated": _now()}
    if slug is not None:
        changes["slug"] = slug
    if secret_token is not None:
        changes["secret_token"] = secret_token
    result = await session.execute(sa.update(webhooks).where(_W.id == webhook_id).values(**changes))
    if not result.rowcount:  # type: ignore[attr-defined]
        return None
    return await read_webhook(session, webhook_id)


async def delete_webhook(session: AsyncSession, webhook_id: uuid.UUID) -> bool:
    result = await session.execute(sa.delete(webhooks).where(_W.id == webhook_id))
    return bool(result.rowcount)  # type: ignore[attr-defined]
