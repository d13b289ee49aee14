"""API key queries: create (generates the key, stores its argon2 hash), list, revoke, look up by
key id, and whether an admin key exists (the server's start-up check)."""

from __future__ import annotations

import secrets
import uuid
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from argon2 import PasswordHasher
from sqlalchemy.ext.asyncio import AsyncSession

from tideflow.schemas.api_keys import ApiKey, ApiKeyCreate, ApiKeyCreated
from tideflow.schemas.states import utcnow
from tideflow.server.storage.tables import api_keys

__all__ = [
    "KEY_PREFIX",
    "admin_key_exists",
    "create_api_key",
    "hasher",
    "read_api_key_by_key_id",
    "read_api_keys",
    "revoke_api_key",
    "split_key",
]

KEY_PREFIX = "tf_"
# argon2id with the library's defaults (~tens of ms a check): verified keys are cached by the
# server (server.api.auth), so the cost is paid once per key and cache period, not per request.
hasher = PasswordHasher()


def split_key(key: str) -> tuple[str, str] | None:
    """``tf_<key id>_<secret>`` -> ``(key id, secret)``; None when it is not in that form."""
    if not key.startswith(KEY_PREFIX):
        return None
    key_id, sep, secret = key[len(KEY_PREFIX) :].partition("_")
    if not sep or not key_id or not secret or len(key_id) > 40:
        return None
    return key_id, secret


def _api_key(row: Any) -> ApiKey:
    m = row._mapping
    return ApiKey(
        id=m["id"],
        key_id=m["key_id"],
        name=m["name"],
        scopes=list(m["scopes"]),
        created=m["created"],
        revoked=m["revoked"],
    )


async def create_api_key(session: AsyncSession, spec: ApiKeyCreate) -> ApiKeyCreated:
    """Store a new key; the answer is the only place its secret ever appears."""
    # token_hex for the id: no "_" in it, so the key splits unambiguously.
    key_id = secrets.token_hex(6)
    key = f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    values = {
        "id": uuid.uuid4(),
        "key_id": key_id,
        "name": spec.name,
        "key_hash": hasher.hash(key),
        "scopes": list(dict.fromkeys(spec.scopes)),
        "created": utcnow(),
        "revoked": None,
    }
    await session.execute(sa.insert(api_keys).values(**values))
    return ApiKeyCreated(**_api_key(_Row(values)).model_dump(), key=key)


class _Row:
    """A values dict seen as a row (``_mapping``), so one converter serves both."""

    def __init__(self, values: dict[str, Any]) -> None:
        self._mapping = values


async def read_api_keys(
    session: AsyncSession,
    *,
    include_revoked: bool = False,
    limit: int | None = None,
    offset: int = 0,
) -> list[ApiKey]:
    """Keys oldest first, one page at a time; revoked ones only when asked."""
    stmt = (
        sa.select(api_keys).order_by(api_keys.c.created, api_keys.c.id).limit(limit).offset(offset)
    )
    if not include_revoked:
        stmt = stmt.where(api_keys.c.revoked.is_(None))
    return [_api_key(row) for row in (await session.execute(stmt)).all()]


async def read_api_key_by_key_id(session: AsyncSession, key_id: str) -> tuple[ApiKey, str] | None:
    """The key with this key id and its stored hash, revoked or not."""
    row = (await session.execute(sa.select(api_keys).where(api_keys.c.key_id == key_id))).first()
    return (_api_key(row), row._mapping["key_hash"]) if row is not None else None


async def revoke_api_key(session: AsyncSession, key_uuid: UUID) -> tuple[ApiKey, bool] | None:
    """Mark the key revoked (kept for the audit trail): the key and whether this call revoked it
    (False: it was already); None when there is no such key."""
    result = await session.execute(
        sa.update(api_keys)
        .where(api_keys.c.id == key_uuid, api_keys.c.revoked.is_(None))
        .values(revoked=utcnow())
    )
    row = (await session.execute(sa.select(api_keys).where(api_keys.c.id == key_uuid))).first()
    return (_api_key(row), bool(getattr(result, "rowcount", 0))) if row is not None else None


async def admin_key_exists(session: AsyncSession) -> bool:
    rows = await session.execute(sa.select(api_keys.c.scopes).where(api_keys.c.revoked.is_(None)))
    return any("admin" in scopes for (scopes,) in rows.all())
