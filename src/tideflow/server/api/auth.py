"""Authentication of every request: :class:`AuthMiddleware` checks every HTTP request and websocket
handshake before any route runs and answers 401 (no or bad credentials, with ``WWW-Authenticate``)
or 403 (naming the missing scope, or the missing CSRF token).

A request proves who it is with an API key (``Authorization: Bearer``, checked by
:class:`~tideflow.server.api.identity.KeyVerifier`) or with the UI's session cookie
(:class:`~tideflow.server.api.sessions.BrowserSessions`). A state-changing request authenticated by
the cookie must also carry the session's CSRF token, in the ``X-CSRF-Token`` header (the UI's
scripts) or a ``csrf_token`` form field: a browser attaches the cookie to requests another site
makes it send, but only the UI's own pages know the token. A request with a key sends no cookie and
is not checked for one.

Refusals are recorded as ``tideflow.auth.failed`` events (:class:`AuthFailures`), at most one per
client address per :data:`FAILED_EVENT_INTERVAL` seconds.
"""

from __future__ import annotations

import hmac
import logging
import time
from urllib.parse import parse_qs, quote

from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket

from tideflow.exceptions import TideflowError
from tideflow.schemas.api_keys import grants
from tideflow.server.api.identity import (
    MAX_ENTRIES,
    ROW_TTL,
    VERIFIED_TTL,
    Identity,
    KeyVerifier,
)
from tideflow.server.api.scopes import required_scope
from tideflow.server.api.sessions import SESSION_TTL, BrowserSessions
from tideflow.server.storage import Database
from tideflow.server.storage.api_keys import admin_key_exists, split_key
from tideflow.server.storage.auth_events import emit_auth_failed
from tideflow.settings import Settings

__all__ = [
    "CSRF_FIELD",
    "CSRF_HEADER",
    "FAILED_EVENT_INTERVAL",
    "ROW_TTL",
    "SESSION_COOKIE",
    "SESSION_TTL",
    "VERIFIED_TTL",
    "AuthFailures",
    "AuthMiddleware",
    "AuthNotConfigured",
    "BrowserSessions",
    "Identity",
    "KeyVerifier",
    "check_auth_configured",
    "cookie",
    "not_configured_message",
]

logger = logging.getLogger("tideflow.server.auth")

FAILED_EVENT_INTERVAL = 10.0  # at most one tideflow.auth.failed event per client address per this
_REALM = 'Bearer realm="tideflow"'
SESSION_COOKIE = "tideflow_session"  # the UI's login (server/ui/login.py): a random token
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"  # the hidden field of the UI's HTML forms
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_FORM_LIMIT = 64 * 1024  # bytes of a form body read to find its CSRF token


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


def cookie(headers: list[tuple[bytes, bytes]], name: str) -> str | None:
    """The value of cookie ``name`` in raw ASGI headers, or None."""
    for header, value in headers:
        if header.lower() == b"cookie":
            for part in value.decode("latin-1").split(";"):
                key, sep, val = part.strip().partition("=")
                if sep and key == name:
                    return val
    return None


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> str | None:
    for key, value in headers:
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def _wants_page(kind: str, method: str, path: str, headers: list[tuple[bytes, bytes]]) -> bool:
    if kind != "http" or method not in ("GET", "HEAD") or path.startswith("/api"):
        return False
    return "text/html" in (_header(headers, b"accept") or "")


def _bearer(headers: list[tuple[bytes, bytes]]) -> str | None:
    value = _header(headers, b"authorization")
    if value is None:
        return None
    scheme, _, token = value.strip().partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


async def _csrf_check(scope: Scope, receive: Receive, expected: str) -> tuple[str | None, Receive]:
    """Why a cookie-authenticated state-changing request is refused (None: its token is right),
    and the ``receive`` to hand on (a form body read to find the token is replayed)."""
    given = _header(scope["headers"], CSRF_HEADER.lower().encode())
    if given is None:
        media = (_header(scope["headers"], b"content-type") or "").split(";")[0].strip().lower()
        if media != "application/x-www-form-urlencoded":
            return (
                f"no CSRF token: a request authenticated by the session cookie must send the "
                f'{CSRF_HEADER} header (the UI\'s pages carry it in <meta name="csrf-token">)',
                receive,
            )
        messages: list[Message] = []
        body = b""
        more = True
        while more:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > _FORM_LIMIT:
                return f"the form is larger than {_FORM_LIMIT} bytes", receive
        values = parse_qs(body.decode("utf-8", errors="replace")).get(CSRF_FIELD)
        given = values[0] if values else None

        async def replay() -> Message:
            return messages.pop(0) if messages else await receive()

        receive = replay
        if given is None:
            return f"no CSRF token: the form has no {CSRF_FIELD} field", receive
    if not hmac.compare_digest(given.encode(), expected.encode()):
        return "the CSRF token does not match this session (reload the page)", receive
    return None, receive


class AuthFailures:
    """Records refusals as ``tideflow.auth.failed`` events, at most one per client address per
    :data:`FAILED_EVENT_INTERVAL` seconds (a flood of bad requests is not a flood of writes)."""

    def __init__(self) -> None:
        self._last: dict[str, float] = {}

    async def record(
        self,
        database: Database,
        *,
        client: str,
        method: str,
        path: str,
        status: int,
        reason: str,
        key_id: str | None = None,
        user: str | None = None,
    ) -> None:
        now = time.monotonic()
        last = self._last.get(client)
        if last is not None and now - last < FAILED_EVENT_INTERVAL:
            return
        if len(self._last) >= MAX_ENTRIES:
            self._last.clear()
        self._last[client] = now
        try:
            async with database.write() as session:
                await emit_auth_failed(
                    session,
                    client=client,
                    method=method,
                    path=path,
                    status=status,
                    reason=reason,
                    key_id=key_id,
                    user=user,
                )
        except Exception:  # the refusal stands even when its audit record cannot be written
            logger.warning("could not record tideflow.auth.failed", exc_info=True)


def client_address(scope: Scope) -> str:
    """The address a request came from, as the audit events name it."""
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


class AuthMiddleware:
    """ASGI middleware: no route or websocket runs before the credentials and scope are checked."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        verifier: KeyVerifier,
        sessions: BrowserSessions,
        failures: AuthFailures,
    ) -> None:
        self.app = app
        self.verifier = verifier
        self.sessions = sessions
        self.failures = failures

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
        database: Database = scope["app"].state.context.database
        key = _bearer(scope["headers"])
        token = None
        identity = None
        if key is not None:
            identity = await self.verifier.identify(database, key)
        else:  # a browser logged in to the UI: its session cookie
            token = cookie(scope["headers"], SESSION_COOKIE)
            if token:
                identity = await self.sessions.identify(database, token)
        what = f"websocket {path}" if kind == "websocket" else f"{method} {path}"
        if identity is not None and grants(identity.scopes, needed):
            if identity.csrf_token is not None and kind == "http" and method not in _SAFE_METHODS:
                refused, receive = await _csrf_check(scope, receive, identity.csrf_token)
                if refused is not None:
                    await self.failures.record(
                        database, client=client_address(scope), method=method, path=path,
                        status=403, reason="csrf", user=identity.name,
                    )  # fmt: skip
                    detail = f"{what} refused: {refused}"
                    await JSONResponse({"detail": detail}, status_code=403)(scope, receive, send)
                    return
            scope.setdefault("state", {})["identity"] = identity
            await self.app(scope, receive, send)
            return
        if identity is None:
            status = 401
            if key is not None:
                reason = "invalid or revoked API key"
                detail = f"{what} refused: the API key is invalid or revoked"
            elif token:
                reason = "expired or ended session"
                detail = f"{what} refused: the session has expired or ended: log in again"
            else:
                reason = "no API key"
                detail = (
                    f"{what} needs an API key: send 'Authorization: Bearer <key>' "
                    "(set TIDEFLOW_API_KEY)"
                )
        else:
            status = 403
            reason = f"missing scope {needed}"
            holder = "the API key" if identity.user_id is None else "the user"
            detail = (
                f"{what} needs the scope '{needed}' (or one including it); {holder} "
                f"{identity.name!r} has {', '.join(identity.scopes)}"
            )
        parts = split_key(key) if key is not None else None
        await self.failures.record(
            database, client=client_address(scope), method=method, path=path, status=status,
            reason=reason, key_id=parts[0] if parts is not None else None,
        )  # fmt: skip
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
