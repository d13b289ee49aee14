"""The UI's login (when the server requires API keys): a page where a person pastes an API key,
the form that checks it and opens a browser session (cookie ``tideflow_session``: HttpOnly,
SameSite=Lax, Secure when the request came over TLS, also behind a proxy saying so), and logout.

The page is self-contained (no script, its style inline) because nothing else is served before
login. With auth off there is nothing to log in to: both pages send the browser to the dashboard.
"""

from __future__ import annotations

import html
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from tideflow.schemas.api_keys import grants
from tideflow.server.api.auth import SESSION_COOKIE, SESSION_TTL, BrowserSessions, KeyVerifier

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>tideflow · log in</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body {{ font-family: system-ui, sans-serif; background: #f5f7fa; display: grid;
       place-items: center; min-height: 90vh; margin: 0; }}
form {{ background: #fff; padding: 2rem; border-radius: 8px; box-shadow: 0 1px 4px #0002;
       width: min(28rem, 90vw); }}
input {{ width: 100%; box-sizing: border-box; padding: .5rem; margin: .5rem 0 1rem;
        font-family: monospace; }}
.error {{ color: #b00020; }}
</style></head>
<body><form method="post" action="/login">
<h1>tideflow</h1>
<label for="key">API key</label>
<input id="key" name="key" type="password" autocomplete="off" autofocus required
       placeholder="tf_...">
<input type="hidden" name="next" value="{next}">
{error}
<button type="submit">Log in</button>
</form></body></html>
"""


def _auth(request: Request) -> tuple[KeyVerifier, BrowserSessions] | None:
    """The server's key verifier and UI sessions (set by create_app when auth is on), or None."""
    verifier = getattr(request.app.state, "key_verifier", None)
    sessions = getattr(request.app.state, "browser_sessions", None)
    return (verifier, sessions) if verifier is not None and sessions is not None else None


def _safe_next(value: str) -> str:
    # Only a path on this server: "//host" or "https://..." would send the browser elsewhere.
    if value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/"


def _page(next_path: str, error: str = "", status: int = 200) -> HTMLResponse:
    shown = f'<p class="error">{html.escape(error)}</p>' if error else ""
    body = _PAGE.format(next=html.escape(_safe_next(next_path), quote=True), error=shown)
    return HTMLResponse(body, status_code=status)


def _tls(request: Request) -> bool:
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return request.url.scheme == "https" or forwarded == "https"


@router.get("/login", response_class=HTMLResponse)
async def login_page(request: Request, next: str = "/") -> Response:
    if _auth(request) is None:
        return RedirectResponse("/", status_code=303)
    return _page(next)


@router.post("/login")
async def login(request: Request) -> Response:
    auth = _auth(request)
    if auth is None:
        return RedirectResponse("/", status_code=303)
    form = parse_qs((await request.body()).decode("utf-8", errors="replace"))
    key = (form.get("key") or [""])[0].strip()
    next_path = _safe_next((form.get("next") or ["/"])[0])
    identity = None
    if key:
        identity = await auth[0].identify(request.app.state.context.database, key)
    if identity is None:
        return _page(next_path, "That API key is invalid or revoked.", status=401)
    if not grants(identity.scopes, "read"):
        return _page(next_path, "That API key cannot read (it needs the scope read).", status=403)
    response = RedirectResponse(next_path, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        auth[1].open(key),
        max_age=int(SESSION_TTL),
        path="/",
        httponly=True,
        samesite="lax",
        secure=_tls(request),
    )
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    auth = _auth(request)
    sid = request.cookies.get(SESSION_COOKIE)
    if auth is not None and sid:
        auth[1].close(sid)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
