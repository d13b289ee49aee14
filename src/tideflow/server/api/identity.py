"""Who a request is: :class:`Identity`, and :class:`KeyVerifier`, which turns a presented API key or
a user's password into one with argon2 checks run off the event loop, two at a time at most, and
verified keys cached.

A verified key is remembered for :data:`VERIFIED_TTL` seconds, but its stored row (revoked or not,
its scopes) is re-read at most :data:`ROW_TTL` seconds after the last read, so a revocation takes
effect within a second on every replica and at once on the one that revoked it.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from argon2.exceptions import InvalidHashError, VerificationError

from tideflow.schemas.api_keys import SCOPES, ApiKey
from tideflow.schemas.api_keys import Scope as KeyScope
from tideflow.schemas.users import User
from tideflow.server.storage import Database
from tideflow.server.storage.api_keys import hasher, read_api_key_by_key_id, split_key
from tideflow.server.storage.users import read_user_by_name

__all__ = ["ADMIN_KEY_NAME", "MAX_ENTRIES", "ROW_TTL", "VERIFIED_TTL", "Identity", "KeyVerifier"]

ROW_TTL = 1.0  # seconds a key's stored row (revoked? scopes?) is trusted without reading it again
VERIFIED_TTL = 300.0  # seconds a key whose argon2 check passed is not checked again
MAX_ENTRIES = 10_000  # cache entries kept before a cache is emptied (bounded memory)
ADMIN_KEY_NAME = "TIDEFLOW_SERVER_ADMIN_KEY"
_CONCURRENT_CHECKS = 2  # argon2 checks at once: a flood of bad keys cannot take every core


@dataclass(frozen=True)
class Identity:
    """Who a request authenticated as."""

    name: str
    key_id: str | None  # None for TIDEFLOW_SERVER_ADMIN_KEY and for users
    scopes: tuple[KeyScope, ...]
    # Set when a browser session cookie authenticated the request: state-changing requests must
    # then carry this token (server.api.auth checks it).
    csrf_token: str | None = None
    user_id: UUID | None = None  # set for a user who logged in with a password


def trim(cache: dict[Any, Any]) -> None:
    """Empty ``cache`` when it is full: bounded memory whatever is presented."""
    if len(cache) >= MAX_ENTRIES:
        cache.clear()


class KeyVerifier:
    """Turns a presented key into an :class:`Identity` (or None), cheaply after the first time."""

    def __init__(
        self, *, admin_key: str | None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._admin_key = admin_key.encode() if admin_key else None
        # Names the admin key in browser sessions without storing it; changing the key ends them.
        self.admin_fingerprint = (
            hashlib.sha256(b"tideflow-admin-key\0" + self._admin_key).hexdigest()[:40]
            if self._admin_key
            else None
        )
        self._clock = clock
        self._rows: dict[str, tuple[float, ApiKey | None, str]] = {}
        self._verified: dict[tuple[str, bytes], float] = {}
        self._checks = asyncio.Semaphore(_CONCURRENT_CHECKS)
        # Checked against when a login names no user, so that answer takes as long as a wrong
        # password (the time would otherwise tell which user names exist). Made on first use.
        self._decoy_hash: str | None = None

    def forget(self, key_id: str) -> None:
        """Drop what is cached about a key (called when it is revoked here)."""
        self._rows.pop(key_id, None)
        for entry in [e for e in self._verified if e[0] == key_id]:
            del self._verified[entry]

    def admin_identity(self) -> Identity:
        return Identity(ADMIN_KEY_NAME, None, SCOPES)

    async def identify(self, database: Database, key: str) -> Identity | None:
        if self._admin_key is not None and hmac.compare_digest(key.encode(), self._admin_key):
            return self.admin_identity()
        parts = split_key(key)
        if parts is None:
            return None
        key_id = parts[0]
        now = self._clock()
        cached = self._rows.get(key_id)
        if cached is None or now - cached[0] > ROW_TTL:
            async with database.read() as session:
                found = await read_api_key_by_key_id(session, key_id)
            trim(self._rows)
            cached = (now, *found) if found is not None else (now, None, "")
            self._rows[key_id] = cached
        _, row, key_hash = cached
        if row is None or row.revoked is not None:
            return None
        digest = hashlib.sha256(key.encode()).digest()
        seen = self._verified.get((key_id, digest))
        if seen is None or now - seen > VERIFIED_TTL:
            if not await self.check(key_hash, key):
                return None
            trim(self._verified)
            self._verified[(key_id, digest)] = now
        return Identity(row.name, key_id, tuple(row.scopes))

    async def check(self, stored_hash: str, secret: str) -> bool:
        """Whether ``secret`` matches the argon2 ``stored_hash`` (in a thread, bounded)."""
        async with self._checks:
            return await asyncio.to_thread(_verify, stored_hash, secret)

    async def hash(self, secret: str) -> str:
        """The argon2 hash of ``secret`` (in a thread, bounded like the checks)."""
        async with self._checks:
            return await asyncio.to_thread(hasher.hash, secret)

    async def identify_user(self, database: Database, name: str, password: str) -> User | None:
        """The user whose name and password these are, or None (in the same time either way)."""
        async with database.read() as session:
            found = await read_user_by_name(session, name)
        if found is None:
            if self._decoy_hash is None:
                self._decoy_hash = await self.hash("tideflow decoy password")
            await self.check(self._decoy_hash, password)
            return None
        user, password_hash = found
        return user if await self.check(password_hash, password) else None


def _verify(key_hash: str, key: str) -> bool:
    try:
        return hasher.verify(key_hash, key)
    except (VerificationError, InvalidHashError):
        return False
