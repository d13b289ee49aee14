"""The UI's login (when the server requires credentials): a page where a person logs in with a user
name and password or pastes an API key, the form that checks them and opens a browser session
(stored in the database; cookie ``tideflow_session``: HttpOnly, SameSite=Lax, Secure when the
request came over TLS, also behind a proxy saying so), and logout.

Both forms carry a CSRF token: the login form a double-submit token (the same random value in a
cookie scoped to ``/login`` and in the form, since there is no session yet), the logout form the
session's token. Failed logins are throttled per client address and per user name
(:class:`~tideflow.server.api.sessions.LoginThrottle`) and recorded as ``tideflow.auth.failed``.
With auth off there is nothing to log in to: both pages send the browser to the dashboard.
"""

from __future__ import annotations

import hmac
import math
import secrets
from dataclasses import dataclass
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from tideflow.schemas.api_keys import grants
from tideflow.schemas.users import MAX_PASSWORD_LENGTH
from tideflow.server.api.auth import (
    CSRF_FIELD,
    SESSION_COOKIE,
    AuthFailures,
    BrowserSessions,
    Identity,
    KeyVerifier,
)
from tideflow.server.api.sessions import LoginThrottle
from tideflow.server.storage import Database
from tideflow.server.ui.rendering import render

__all__ = ["LOGIN_CSRF_COOKIE", "router"]

router = APIRouter(include_in_schema=False)

LOGIN_CSRF_COOKIE = "tideflow_login_csrf"
_MAX_FORM = 16 * 1024  # bytes: a login form is two short fields and a path


@dataclass(frozen=True)
class _Auth:
    verifier: KeyVerifier
    sessions: BrowserSessions
    failures: AuthFailures
    throttle: LoginThrottle
    database: Database


def _auth(request: Request) -> _Auth | None:
    """The server's credential checks (set by create_app when auth is on), or None."""
    state = request.app.state
    verifier = getattr(state, "key_verifier", None)
    if verifier is None:
        return None
    throttle = getattr(state, "login_throttle", None)
    if throttle is None:  # one per app, made on the first login
        throttle = state.login_throttle = LoginThrottle()
    return _Auth(
        verifier, state.browser_sessions, state.auth_failures, throttle, state.context.database
    )


def _safe_next(value: str) -> str:
    # Only a path on this server: "//host" or "https://..." would send the browser elsewhere.
    if value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/"


def _tls(request: Request) -> bool:
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return request.url.scheme == "https" or forwarded == "https"


def _page(
    request: Request, next_path: str, error: str = "", status: int = 200, username: str = ""
) -> HTMLResponse:
    """The login page with a fresh double-submit CSRF token (in its forms and in a cookie)."""
    token = secrets.token_urlsafe(32)
    response = render(
        request,
        "login.html",
        status_code=status,
        title="Log in",
        next_path=_safe_next(next_path),
        error=error,
        csrf_token=token,
        username=username,
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        path="/login",
        httponly=True,
        samesite="strict",
        secure=_tls(request),
    )
    return response


@router.get("/login", response_class=HTMLResponse)
async def login_page(request: Request, next: str = "/") -> Response:
    if _auth(request) is None:
        return RedirectResponse("/", status_code=303)
    return _page(request, next)


async def _form(request: Request) -> dict[str, str]:
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > _MAX_FORM:
            break
    fields = parse_qs(body[:_MAX_FORM].decode("utf-8", errors="replace"))
    return {name: values[0] for name, values in fields.items()}


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@router.post("/login")
async def login(request: Request) -> Response:
    auth = _auth(request)
    if auth is None:
        return RedirectResponse("/", status_code=303)
    form = await _form(request)
    next_path = _safe_next(form.get("next", "/"))
    username = form.get("username", "").strip()[:200]
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    given = form.get(CSRF_FIELD, "")
    if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
        message = (
            "The login form expired or did not come from this server (no matching CSRF token): "
            "log in again."
        )
        return _page(request, next_path, message, status=403, username=username)
    address = _client(request)
    whats = [f"address:{address}"] + ([f"user:{username}"] if username else [])
    wait = auth.throttle.retry_after(whats)
    if wait > 0:
        await _failed(request, auth, 429, "too many failed logins", username)
        seconds = math.ceil(wait)
        response = _page(
            request,
            next_path,
            f"Too many failed logins: try again in {seconds} s.",
            status=429,
            username=username,
        )
        response.headers["Retry-After"] = str(seconds)
        return response
    identity, error = await _check(auth, form, username)
    if identity is None:
        auth.throttle.failed(whats)
        await _failed(request, auth, 401, error, username)
        return _page(request, next_path, error, status=401, username=username)
    if not grants(identity.scopes, "read"):
        error = f"{identity.name!r} cannot read (it needs the scope read)."
        return _page(request, next_path, error, status=403, username=username)
    if username:
        auth.throttle.succeeded([f"user:{username}"])
    redirect = RedirectResponse(next_path, status_code=303)
    redirect.set_cookie(
        SESSION_COOKIE,
        await auth.sessions.open(auth.database, identity),
        max_age=int(auth.sessions.ttl),
        path="/",
        httponly=True,
        samesite="lax",
        secure=_tls(request),
    )
    redirect.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return redirect


async def _check(auth: _Auth, form: dict[str, str], username: str) -> tuple[Identity | None, str]:
    """Who the form's credentials are, or None and why not."""
    key = form.get("key", "").strip()
    if key:
        identity = await auth.verifier.identify(auth.database, key)
        return identity, "" if identity else "That API key is invalid or revoked."
    password = form.get("password", "")
    if not username or not password:
        return None, "Enter a user name and a password, or an API key."
    bad = "Wrong user name or password."
    if len(password) > MAX_PASSWORD_LENGTH:
        return None, bad
    user = await auth.verifier.identify_user(auth.database, username, password)
    if user is None:
        return None, bad
    return Identity(user.name, None, tuple(user.scopes), user_id=user.id), ""


async def _failed(request: Request, auth: _Auth, status: int, reason: str, user: str) -> None:
    await auth.failures.record(
        auth.database,
        client=_client(request),
        method="POST",
        path="/login",
        status=status,
        reason=f"login: {reason}",
        user=user or None,
    )


@router.post("/logout")
async def logout(request: Request) -> Response:
    auth = _auth(request)
    token = request.cookies.get(SESSION_COOKIE)
    if auth is not None and token:
        identity = await auth.sessions.identify(auth.database, token)
        if identity is not None and identity.csrf_token is not None:
            given = (await _form(request)).get(CSRF_FIELD, "")
            if not hmac.compare_digest(given.encode(), identity.csrf_token.encode()):
                detail = "POST /logout refused: no CSRF token of this session in the form"
                return JSONResponse({"detail": detail}, status_code=403)
        await auth.sessions.close(auth.database, token)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
