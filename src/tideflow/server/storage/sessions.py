"""Browser session queries (the UI's logins, ADR 0007). The cookie carries a random token; the
table stores only a SHA-256 of it, so a copy of the database opens no session. A session names its
principal (an API key, a user, or the TIDEFLOW_SERVER_ADMIN_KEY) and expires; the server checks
the principal on every use (server.api.auth), and revoking or deleting it deletes its sessions.

The CSRF token of a session is derived from its token (another SHA-256, with a different prefix):
only a page that was given it can know it, and it needs no column of its own.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from tideflow.schemas.states import utcnow
from tideflow.server.storage.tables import browser_sessions

__all__ = [
    "ADMIN_KEY",
    "API_KEY",
    "USER",
    "StoredSession",
    "csrf_token",
    "delete_expired_sessions",
    "delete_principal_sessions",
    "delete_session",
    "open_session",
    "read_session",
    "session_id",
]

API_KEY = "api_key"  # principal id: the key's key id
USER = "user"  # principal id: the user's id
ADMIN_KEY = "admin_key"  # principal id: admin_key_fingerprint() of TIDEFLOW_SERVER_ADMIN_KEY
_MAX_TOKEN = 200  # characters of a cookie value worth hashing; longer is not one of ours


@dataclass(frozen=True)
class StoredSession:
    """A live session's principal and expiry."""

    principal_kind: str
    principal_id: str
    expires: dt.datetime


def session_id(token: str) -> str:
    """The stored id of a session token."""
    return hashlib.sha256(b"tideflow-session\0" + token.encode()).hexdigest()


def csrf_token(token: str) -> str:
    """The CSRF token of the session whose cookie carries ``token``."""
    return hashlib.sha256(b"tideflow-csrf\0" + token.encode()).hexdigest()


async def open_session(
    session: AsyncSession, *, principal_kind: str, principal_id: str, ttl: dt.timedelta
) -> str:
    """Store a new session and return its token (the cookie's value)."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    await session.execute(
        sa.insert(browser_sessions).values(
            id=session_id(token),
            principal_kind=principal_kind,
            principal_id=principal_id,
            created=now,
            expires=now + ttl,
        )
    )
    return token


async def read_session(session: AsyncSession, token: str) -> StoredSession | None:
    """The unexpired session whose cookie carries ``token``, or None."""
    if not token or len(token) > _MAX_TOKEN:
        return None
    row = (
        await session.execute(
            sa.select(
                browser_sessions.c.principal_kind,
                browser_sessions.c.principal_id,
                browser_sessions.c.expires,
            ).where(
                browser_sessions.c.id == session_id(token), browser_sessions.c.expires > utcnow()
            )
        )
    ).first()
    return StoredSession(*row) if row is not None else None


async def delete_session(session: AsyncSession, token: str) -> bool:
    """Log out: delete the session whose cookie carries ``token``; whether there was one."""
    if not token or len(token) > _MAX_TOKEN:
        return False
    result = await session.execute(
        sa.delete(browser_sessions).where(browser_sessions.c.id == session_id(token))
    )
    return bool(getattr(result, "rowcount", 0))


async def delete_principal_sessions(session: AsyncSession, kind: str, principal_id: str) -> int:
    """Delete every session of a principal (its key revoked, the user deleted); how many."""
    result = await session.execute(
        sa.delete(browser_sessions).where(
            browser_sessions.c.principal_kind == kind,
            browser_sessions.c.principal_id == principal_id,
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def delete_expired_sessions(session: AsyncSession, *, limit: int = 1000) -> int:
    """Delete up to ``limit`` expired sessions (bounded work per call); how many."""
    expired = (
        sa.select(browser_sessions.c.id)
        .where(browser_sessions.c.expires <= utcnow())
        .limit(limit)
        .scalar_subquery()
    )
    result = await session.execute(
        sa.delete(browser_sessions).where(browser_sessions.c.id.in_(expired))
    )
    return int(getattr(result, "rowcount", 0) or 0)
