"""The UI's logins, kept in the database (table ``browser_sessions``, ADR 0007), and the throttle on
failed logins.

:class:`BrowserSessions` opens a session for an identity (its cookie carries a random token, the
table a hash of it) and turns a cookie back into an :class:`Identity` by reading the session and
the row of its principal: a revoked key, a deleted user or a changed admin key ends the session.
What it read is trusted for :data:`ROW_TTL` seconds, so a revocation on another replica bites
within a second; this replica forgets at once (:meth:`BrowserSessions.forget`).

:class:`LoginThrottle` counts failed logins per client address and per user name and refuses
further attempts for a while, before any argon2 work is done.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterable
from uuid import UUID

from tideflow.schemas.api_keys import SCOPES
from tideflow.server.api.identity import (
    ADMIN_KEY_NAME,
    ROW_TTL,
    Identity,
    KeyVerifier,
    trim,
)
from tideflow.server.storage import Database
from tideflow.server.storage import sessions as stored
from tideflow.server.storage.api_keys import read_api_key_by_key_id
from tideflow.server.storage.users import read_user

__all__ = [
    "LOGIN_FAILURES",
    "LOGIN_WINDOW",
    "SESSION_TTL",
    "BrowserSessions",
    "LoginThrottle",
]

SESSION_TTL = 12 * 3600.0  # seconds a UI login lasts
LOGIN_FAILURES = 5  # failed logins allowed per client address, and per user name, in a window
LOGIN_WINDOW = 60.0  # seconds: the window, and how long the refusal lasts once it is reached


class BrowserSessions:
    """UI logins stored in the database; each use re-checks the key or user behind the session."""

    def __init__(
        self,
        verifier: KeyVerifier,
        *,
        ttl: float = SESSION_TTL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._verifier = verifier
        self.ttl = ttl
        self._clock = clock
        self._cache: dict[str, tuple[float, Identity | None]] = {}

    def forget(self) -> None:
        """Drop every cached session (a key was revoked or a user changed here)."""
        self._cache.clear()

    async def open(self, database: Database, identity: Identity) -> str:
        """Open a session acting as ``identity``; the token to put in the cookie."""
        if identity.user_id is not None:
            kind, principal = stored.USER, str(identity.user_id)
        elif identity.key_id is not None:
            kind, principal = stored.API_KEY, identity.key_id
        elif self._verifier.admin_fingerprint is not None:
            kind, principal = stored.ADMIN_KEY, self._verifier.admin_fingerprint
        else:
            raise ValueError("an identity without a key, a user or the admin key")
        async with database.write() as session:
            # Expired rows go a batch at a time with each login: bounded work, a bounded table.
            await stored.delete_expired_sessions(session, limit=100)
            return await stored.open_session(
                session,
                principal_kind=kind,
                principal_id=principal,
                ttl=dt.timedelta(seconds=self.ttl),
            )

    async def identify(self, database: Database, token: str) -> Identity | None:
        """The identity of the live session whose cookie carries ``token``, or None."""
        key = stored.session_id(token)
        now = self._clock()
        cached = self._cache.get(key)
        if cached is not None and now - cached[0] <= ROW_TTL:
            return cached[1]
        identity = await self._read(database, token)
        trim(self._cache)
        self._cache[key] = (now, identity)
        return identity

    async def _read(self, database: Database, token: str) -> Identity | None:
        csrf = stored.csrf_token(token)
        async with database.read() as session:
            found = await stored.read_session(session, token)
            if found is None:
                return None
            if found.principal_kind == stored.API_KEY:
                row = await read_api_key_by_key_id(session, found.principal_id)
                if row is None or row[0].revoked is not None:
                    return None
                key = row[0]
                return Identity(key.name, key.key_id, tuple(key.scopes), csrf_token=csrf)
            if found.principal_kind == stored.USER:
                try:
                    user_id = UUID(found.principal_id)
                except ValueError:
                    return None
                user = await read_user(session, user_id)
                if user is None:
                    return None
                return Identity(user.name, None, tuple(user.scopes), csrf, user.id)
        if (
            found.principal_kind == stored.ADMIN_KEY
            and self._verifier.admin_fingerprint is not None
            and found.principal_id == self._verifier.admin_fingerprint
        ):
            return Identity(ADMIN_KEY_NAME, None, SCOPES, csrf_token=csrf)
        return None

    async def close(self, database: Database, token: str) -> None:
        """Log out: delete the session."""
        self._cache.pop(stored.session_id(token), None)
        async with database.write() as session:
            await stored.delete_session(session, token)


class LoginThrottle:
    """Failed logins per client address and per user name: after :data:`LOGIN_FAILURES` in
    :data:`LOGIN_WINDOW` seconds, further attempts are refused until the window has passed.

    Per process: with several replicas, an attacker gets that many tries on each.
    """

    def __init__(
        self,
        *,
        failures: int = LOGIN_FAILURES,
        window: float = LOGIN_WINDOW,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.failures = failures
        self.window = window
        self._clock = clock
        self._counts: dict[str, tuple[float, int]] = {}  # what -> (window start, failures)

    def retry_after(self, whats: Iterable[str]) -> float:
        """Seconds until any of ``whats`` may try again; 0 when all of them may now."""
        now = self._clock()
        wait = 0.0
        for what in whats:
            entry = self._counts.get(what)
            if entry is None:
                continue
            start, count = entry
            if now - start >= self.window:
                del self._counts[what]
            elif count >= self.failures:
                wait = max(wait, self.window - (now - start))
        return wait

    def failed(self, whats: Iterable[str]) -> None:
        now = self._clock()
        for what in whats:
            start, count = self._counts.get(what, (now, 0))
            if now - start >= self.window:
                start, count = now, 0
            trim(self._counts)
            self._counts[what] = (start, count + 1)

    def succeeded(self, whats: Iterable[str]) -> None:
        for what in whats:
            self._counts.pop(what, None)
