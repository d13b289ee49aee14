"""API-key authentication: :class:`KeyVerifier` (argon2 checks behind a short cache) and
:class:`AuthMiddleware`, which checks every HTTP request and websocket handshake before any route
runs and answers 401 (no or bad key, with ``WWW-Authenticate``) or 403 (naming the missing scope).

A verified key is remembered for :data:`VERIFIED_TTL` seconds, but its stored row (revoked or not,
its scopes) is re-read at most :data:`ROW_TTL` seconds after the last read, so a revocation takes
effect within a second on every replica and at once on the one that revoked it. Refusals are
recorded as ``tideflow.auth.failed`` events, at most one per client address per
:data:`FAILED_EVENT_INTERVAL` seconds.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from argon2.exceptions import InvalidHashError, VerificationError
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket

from tideflow.exceptions import TideflowError
from tideflow.schemas.api_keys import SCOPES, ApiKey, grants
from tideflow.schemas.api_keys import Scope as KeyScope
from tideflow.server.api.scopes import required_scope
from tideflow.server.storage import Database
from tideflow.server.storage.api_keys import (
    admin_key_exists,
    hasher,
    read_api_key_by_key_id,
    split_key,
)
from tideflow.server.storage.auth_events import emit_auth_failed
from tideflow.settings import Settings

__all__ = [
    "FAILED_EVENT_INTERVAL",
    "ROW_TTL",
    "SESSION_COOKIE",
    "VERIFIED_TTL",
    "AuthMiddleware",
    "AuthNotConfigured",
    "BrowserSessions",
    "Identity",
    "KeyVerifier",
    "check_auth_configured",
    "not_configured_message",
]

logger = logging.getLogger("tideflow.server.auth")

ROW_TTL = 1.0  # seconds a key's stored row (revoked? scopes?) is trusted without reading it again
VERIFIED_TTL = 300.0  # seconds a key whose argon2 check passed is not checked again
FAILED_EVENT_INTERVAL = 10.0  # at most one tideflow.auth.failed event per client address per this
_MAX_ENTRIES = 10_000  # cache entries kept before the caches are emptied (bounded memory)
_CONCURRENT_CHECKS = 2  # argon2 checks at once: a flood of bad keys cannot take every core
_REALM = 'Bearer realm="tideflow"'
SESSION_COOKIE = "tideflow_session"  # the UI's login (server/ui/login.py): a random session id
SESSION_TTL = 12 * 3600.0  # seconds a UI login lasts


MIN_ADMIN_KEY_LENGTH = 16


class AuthNotConfigured(TideflowError):
    """Auth is on but no key could ever get in: the server refuses to start."""


def not_configured_message(host: str) -> str:
    return (
        f"refusing to serve on {host} without authentication: run `tideflow server bootstrap` "
        "(prints an admin API key) or set TIDEFLOW_SERVER_ADMIN_KEY, or pass --insecure-no-auth "
        "to let anyone who can reach this address use the API"
    )


async def check_auth_configured(settings: Settings, database: Database) -> None:
    """Raise AuthNotConfigured unless an admin key is set or stored (called at start-up)."""
    admin = settings.server_admin_key
    if admin is not None and len(admin) < MIN_ADMIN_KEY_LENGTH:
        raise AuthNotConfigured(
            f"TIDEFLOW_SERVER_ADMIN_KEY is too short to be a secret: use at least "
            f"{MIN_ADMIN_KEY_LENGTH} random characters"
        )
    if admin:
        return
    async with database.read() as session:
        if await admin_key_exists(session):
            return
    raise AuthNotConfigured(not_configured_message(settings.server_host))


@dataclass(frozen=True)
class Identity:
    """Who a request authenticated as."""

    name: str
    key_id: str | None  # None for TIDEFLOW_SERVER_ADMIN_KEY
    scopes: tuple[KeyScope, ...]


class KeyVerifier:
    """Turns a presented key into an :class:`Identity` (or None), cheaply after the first time."""

    def __init__(
        self, *, admin_key: str | None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._admin_key = admin_key.encode() if admin_key else None
        self._clock = clock
        self._rows: dict[str, tuple[float, ApiKey | None, str]] = {}
        self._verified: dict[tuple[str, bytes], float] = {}
        self._checks = asyncio.Semaphore(_CONCURRENT_CHECKS)

    def forget(self, key_id: str) -> None:
        """Drop what is cached about a key (called when it is revoked here)."""
        self._rows.pop(key_id, None)
        for entry in [e for e in self._verified if e[0] == key_id]:
            del self._verified[entry]

    async def identify(self, database: Database, key: str) -> Identity | None:
        if self._admin_key is not None and hmac.compare_digest(key.encode(), self._admin_key):
            return Identity("TIDEFLOW_SERVER_ADMIN_KEY", None, SCOPES)
        parts = split_key(key)
        if parts is None:
            return None
        key_id = parts[0]
        now = self._clock()
        cached = self._rows.get(key_id)
        if cached is None or now - cached[0] > ROW_TTL:
            async with database.read() as session:
                found = await read_api_key_by_key_id(session, key_id)
            self._trim(self._rows)
            cached = (now, *found) if found is not None else (now, None, "")
            self._rows[key_id] = cached
        _, row, key_hash = cached
        if row is None or row.revoked is not None:
            return None
        digest = hashlib.sha256(key.encode()).digest()
        seen = self._verified.get((key_id, digest))
        if seen is None or now - seen > VERIFIED_TTL:
            async with self._checks:
                ok = await asyncio.to_thread(_verify, key_hash, key)
            if not ok:
                return None
            self._trim(self._verified)
            self._verified[(key_id, digest)] = now
        return Identity(row.name, key_id, tuple(row.scopes))

    @staticmethod
    def _trim(cache: dict[Any, Any]) -> None:
        if len(cache) >= _MAX_ENTRIES:
            cache.clear()


class BrowserSessions:
    """UI logins: a random session id (the cookie) -> the API key it was opened with, in memory.

    The cookie never carries the key; a server restart logs everyone out; each request of a session
    is checked with its key like any other, so revoking the key ends its sessions too.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._keys: dict[str, tuple[str, float]] = {}

    def open(self, key: str) -> str:
        if len(self._keys) >= _MAX_ENTRIES:
            now = self._clock()
            self._keys = {s: e for s, e in self._keys.items() if e[1] > now}
        sid = secrets.token_urlsafe(32)
        self._keys[sid] = (key, self._clock() + SESSION_TTL)
        return sid

    def key(self, sid: str) -> str | None:
        entry = self._keys.get(sid)
        if entry is None or entry[1] <= self._clock():
            self._keys.pop(sid, None)
            return None
        return entry[0]

    def close(self, sid: str) -> None:
        self._keys.pop(sid, None)


def _cookie(headers: list[tuple[bytes, bytes]], name: str) -> str | None:
    for header, value in headers:
        if header.lower() == b"cookie":
            for part in value.decode("latin-1").split(";"):
                key, sep, val = part.strip().partition("=")
                if sep and key == name:
                    return val
    return None


def _wants_page(kind: str, method: str, path: str, headers: list[tuple[bytes, bytes]]) -> bool:
    if kind != "http" or method not in ("GET", "HEAD") or path.startswith("/api"):
        return False
    accept = next((v for k, v in headers if k.lower() == b"accept"), b"")
    return b"text/html" in accept


def _verify(key_hash: str, key: str) -> bool:
    try:
        return hasher.verify(key_hash, key)
    except (VerificationError, InvalidHashError):
        return False


def _bearer(headers: list[tuple[bytes, bytes]]) -> str | None:
    for name, value in headers:
        if name.lower() == b"authorization":
            scheme, _, token = value.decode("latin-1").strip().partition(" ")
            return token.strip() if scheme.lower() == "bearer" and token.strip() else None
    return None


class AuthMiddleware:
    """ASGI middleware: no route or websocket runs before the key and its scope are checked."""

    def __init__(
        self, app: ASGIApp, *, verifier: KeyVerifier, sessions: BrowserSessions | None = None
    ) -> None:
        self.app = app
        self.verifier = verifier
        self.sessions = sessions or BrowserSessions()
        self._last_failure: dict[str, float] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        method = scope.get("method", "GET")
        path = scope["path"]
        needed = required_scope(method, path, websocket=kind == "websocket")
        if needed is None:
            await self.app(scope, receive, send)
            return
        key = _bearer(scope["headers"])
        if key is None:  # a browser logged in to the UI: its session cookie names the key
            sid = _cookie(scope["headers"], SESSION_COOKIE)
            key = self.sessions.key(sid) if sid else None
        identity = None
        if key is not None:
            database: Database = scope["app"].state.context.database
            identity = await self.verifier.identify(database, key)
        if identity is not None and grants(identity.scopes, needed):
            scope.setdefault("state", {})["identity"] = identity
            await self.app(scope, receive, send)
            return
        what = f"websocket {path}" if kind == "websocket" else f"{method} {path}"
        if identity is None:
            status = 401
            reason = "no API key" if key is None else "invalid or revoked API key"
            detail = (
                f"{what} needs an API key: send 'Authorization: Bearer <key>' (set TIDEFLOW_API_KEY)"
                if key is None
                else f"{what} refused: the API key is invalid or revoked"
            )
        else:
            status = 403
            reason = f"missing scope {needed}"
            detail = (
                f"{what} needs the scope '{needed}' (or one including it); the API key "
                f"{identity.name!r} has {', '.join(identity.scopes)}"
            )
        parts = split_key(key) if key is not None else None
        key_id = parts[0] if parts is not None else None
        await self._record(scope, method, path, status, reason, key_id)
        headers = {"WWW-Authenticate": _REALM} if status == 401 else None
        response: Response = JSONResponse({"detail": detail}, status_code=status, headers=headers)
        if status == 401 and _wants_page(kind, method, path, scope["headers"]):
            response = RedirectResponse(f"/login?next={quote(path)}", status_code=303)
        if kind == "http":
            await response(scope, receive, send)
            return
        websocket = WebSocket(scope, receive, send)
        if "websocket.http.response" in scope.get("extensions", {}):
            await websocket.send_denial_response(response)
        else:  # the server cannot send a body: closing before accepting answers 403
            await websocket.close()

    async def _record(
        self, scope: Scope, method: str, path: str, status: int, reason: str, key_id: str | None
    ) -> None:
        client = scope.get("client")
        address = str(client[0]) if client else "unknown"
        now = time.monotonic()
        last = self._last_failure.get(address)
        if last is not None and now - last < FAILED_EVENT_INTERVAL:
            return
        if len(self._last_failure) >= _MAX_ENTRIES:
            self._last_failure.clear()
        self._last_failure[address] = now
        try:
            database: Database = scope["app"].state.context.database
            async with database.write() as session:
                await emit_auth_failed(
                    session,
                    client=address,
                    method=method,
                    path=path,
                    status=status,
                    reason=reason,
                    key_id=key_id,
                )
        except Exception:  # the refusal stands even when its audit record cannot be written
            logger.warning("could not record tideflow.auth.failed", exc_info=True)
