"""The audit events of authentication: ``tideflow.api-key.created|revoked`` (resource
``tideflow.api-key.<id>``, named after the key), ``tideflow.user.created|deleted|password-changed``
(resource ``tideflow.user.<id>``) and ``tideflow.auth.failed`` (resource
``tideflow.client.<address>``), stored with ``insert_events`` like every other event.

No event ever carries a key's secret: a failed attempt records only the key id it named, if any.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from tideflow.schemas.api_keys import ApiKey
from tideflow.schemas.events import Event, Resource
from tideflow.schemas.users import User
from tideflow.server.storage.events import insert_events

__all__ = ["emit_api_key_event", "emit_auth_failed", "emit_user_event"]


async def emit_api_key_event(session: AsyncSession, key: ApiKey, verb: str) -> None:
    """``tideflow.api-key.<verb>`` about ``key``, in the caller's transaction."""
    event = Event(
        event=f"tideflow.api-key.{verb}",
        resource=Resource(
            {
                "tideflow.resource.id": f"tideflow.api-key.{key.id}",
                "tideflow.resource.name": key.name,
                "tideflow.api-key.key-id": key.key_id,
            }
        ),
        payload={"scopes": list(key.scopes)},
    )
    await insert_events(session, [event])


async def emit_auth_failed(
    session: AsyncSession,
    *,
    client: str,
    method: str,
    path: str,
    status: int,
    reason: str,
    key_id: str | None,
    user: str | None = None,
) -> None:
    """``tideflow.auth.failed``: who (address), what they asked for and why it was refused."""
    payload: dict[str, object] = {
        "method": method,
        "path": path[:500],
        "status": status,
        "reason": reason,
    }
    if key_id is not None:
        payload["key_id"] = key_id
    if user is not None:
        payload["user"] = user[:200]
    event = Event(
        event="tideflow.auth.failed",
        resource=Resource(
            {
                "tideflow.resource.id": f"tideflow.client.{client}",
                "tideflow.resource.name": client,
            }
        ),
        payload=payload,
    )
    await insert_events(session, [event])


async def emit_user_event(session: AsyncSession, user: User, verb: str) -> None:
    """``tideflow.user.<verb>`` (created, deleted, password-changed) about ``user``, in the caller's
    transaction; never carries the password or its hash."""
    event = Event(
        event=f"tideflow.user.{verb}",
        resource=Resource(
            {
                "tideflow.resource.id": f"tideflow.user.{user.id}",
                "tideflow.resource.name": user.name,
            }
        ),
        payload={"scopes": list(user.scopes)},
    )
    await insert_events(session, [event])
