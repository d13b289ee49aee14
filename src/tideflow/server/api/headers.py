"""Security headers on every response: a Content-Security-Policy that allows no inline script, no
framing (``frame-ancestors 'none'`` and ``X-Frame-Options: DENY``), ``nosniff``, a same-origin
Referrer-Policy, and HSTS when the request came over TLS (also behind a proxy saying so).

The UI ships its script as a file (``/ui/static/app.js``), so its policy is ``script-src 'self'``.
The API docs (Swagger UI at ``/docs``, ReDoc at ``/redoc``) are pages the framework writes with an
inline start-up script: those exact paths get their own policy allowing that script by its SHA-256
(computed from the page itself, which carries no request input) and inline styles, nothing more.
"""

from __future__ import annotations

import base64
import hashlib
import re

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["DOCS_PATHS", "PAGE_POLICY", "SecurityHeadersMiddleware", "docs_policy"]

PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
DOCS_PATHS = frozenset({"/docs", "/redoc", "/docs/oauth2-redirect"})
_HSTS = "max-age=31536000"
_INLINE_SCRIPT = re.compile(rb"<script(?![^>]*\bsrc=)[^>]*>(.*?)</script>", re.DOTALL | re.I)
_DOCS_LIMIT = 256 * 1024  # bytes of a docs page buffered to hash its scripts


def docs_policy(html: bytes) -> str:
    """The policy of a docs page: its own inline scripts, by hash, and inline styles."""
    hashes = " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(m.group(1)).digest()).decode()}'"
        for m in _INLINE_SCRIPT.finditer(html)
    )
    return (
        f"default-src 'self'; script-src 'self' {hashes}; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; font-src 'self'; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )


def _over_tls(scope: Scope) -> bool:
    if str(scope.get("scheme")) in ("https", "wss"):
        return True
    for name, value in scope["headers"]:
        if name.lower() == b"x-forwarded-proto":
            first: str = value.decode("latin-1").split(",")[0]
            return first.strip().lower() == "https"
    return False


class SecurityHeadersMiddleware:
    """ASGI middleware adding the security headers to every HTTP response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        tls = _over_tls(scope)
        docs = scope["path"] in DOCS_PATHS

        def secure(message: Message, policy: str) -> None:
            headers = MutableHeaders(scope=message)
            headers.setdefault("Content-Security-Policy", policy)
            headers.setdefault("X-Frame-Options", "DENY")
            headers.setdefault("X-Content-Type-Options", "nosniff")
            headers.setdefault("Referrer-Policy", "same-origin")
            headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
            if tls:
                headers.setdefault("Strict-Transport-Security", _HSTS)

        if not docs:

            async def send_secured(message: Message) -> None:
                if message["type"] == "http.response.start":
                    secure(message, PAGE_POLICY)
                await send(message)

            await self.app(scope, receive, send_secured)
            return

        # A docs page: hold it until its body is complete, to hash the scripts in it.
        start: Message | None = None
        body = b""

        async def send_docs(message: Message) -> None:
            nonlocal start, body
            if message["type"] == "http.response.start":
                start = message
                return
            if message["type"] != "http.response.body" or start is None:
                await send(message)
                return
            body += message.get("body", b"")
            if message.get("more_body", False) and len(body) <= _DOCS_LIMIT:
                return
            secure(start, docs_policy(body) if len(body) <= _DOCS_LIMIT else PAGE_POLICY)
            await send(start)
            start = None
            await send({**message, "body": body})
            body = b""

        await self.app(scope, receive, send_docs)
