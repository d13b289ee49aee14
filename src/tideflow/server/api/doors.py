"""The server's doors: which requests get in at all, before any route (or body) is read.

With auth off (the local default), anything that can make the user's browser send a request can
drive the API. Three guards close that, none of which concerns non-browser clients (the SDK, the
runner, the CLI send no ``Origin`` and send our client header):

- **Host** must name this server (127.0.0.1, localhost, ::1, any IP literal, ``server_host``,
  ``TIDEFLOW_SERVER_ALLOWED_HOSTS``): a page on a rebound DNS name (DNS rebinding) reaches the
  server's address but still sends its own name as Host.
- A browser's **Origin** on a websocket handshake or a state-changing request must be the server's
  own (same host and port as the Host header) or in ``TIDEFLOW_SERVER_ALLOWED_ORIGINS``: websockets
  have no same-origin policy, and a cross-site form POST is sent without asking.
- A state-changing **API** request without a (same-origin) Origin must carry a JSON content type or
  the ``X-Tideflow-Client`` header: neither can be set by a cross-site form or simple request.

The rules are a pure function (:func:`refusal`) over the request's method, path, scheme and headers;
:class:`DoorsMiddleware` is the ASGI shell that answers a refusal with JSON ``{"detail": ...}``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket

from tideflow.settings import Settings

__all__ = [
    "CLIENT_HEADER",
    "DoorPolicy",
    "DoorsMiddleware",
    "Refusal",
    "host_name",
    "refusal",
]

CLIENT_HEADER = "X-Tideflow-Client"  # sent by tideflow.client on every request

_LOOPBACK = ("127.0.0.1", "localhost", "::1")
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
_ECHO_LIMIT = 120  # characters of a refused header value quoted back in the detail


@dataclass(frozen=True)
class Refusal:
    status: int
    detail: str


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def host_name(value: str) -> str:
    """The host part of a Host header or setting, lower-cased: ``'[::1]:4200'`` → ``'::1'``."""
    value = value.strip().lower()
    if value.startswith("["):
        end = value.find("]")
        return value[1:end] if end > 0 else value
    if value.count(":") == 1:  # name:port or v4:port; more colons is a bare IPv6 address
        value = value.split(":", 1)[0]
    return value.rstrip(".")


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _origin_key(origin: str) -> str:
    return origin.strip().lower().rstrip("/")


@dataclass(frozen=True)
class DoorPolicy:
    """Allowed hosts and origins, from the settings (``*`` in either list allows any)."""

    hosts: frozenset[str]
    origins: frozenset[str]

    @classmethod
    def from_settings(cls, settings: Settings, *, extra_hosts: Iterable[str] = ()) -> DoorPolicy:
        hosts = {*_LOOPBACK, *extra_hosts, *_split(settings.server_allowed_hosts)}
        if settings.server_host not in ("", "0.0.0.0", "::"):  # a wildcard bind names no host
            hosts.add(settings.server_host)
        return cls(
            hosts=frozenset(h if h == "*" else host_name(h) for h in hosts),
            origins=frozenset(_origin_key(o) for o in _split(settings.server_allowed_origins)),
        )

    def host_allowed(self, host: str) -> bool:
        name = host_name(host)
        # An IP literal cannot be a rebinding attack: that needs a name the attacker controls.
        return "*" in self.hosts or name in self.hosts or _is_ip(name)

    def origin_allowed(self, origin: str, host: str | None) -> bool:
        """Whether a browser page at ``origin`` may talk to the server reached as ``host``."""
        if "*" in self.origins or _origin_key(origin) in self.origins:
            return True
        # Same origin: the page's host:port is the one the request was sent to. Browsers leave
        # the default port out of both. The scheme is not compared: a TLS proxy in front changes
        # it, and no other page can share this host and port.
        netloc = urlsplit(origin.strip()).netloc.lower() if "://" in origin else ""
        return bool(netloc) and host is not None and netloc == host.strip().lower()


def _echo(value: str) -> str:
    short = value if len(value) <= _ECHO_LIMIT else value[:_ECHO_LIMIT] + "…"
    return repr(short)


def _is_json(content_type: str | None) -> bool:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def refusal(
    policy: DoorPolicy,
    *,
    websocket: bool,
    method: str,
    path: str,
    headers: Mapping[str, str],
    api_prefix: str = "/api",
) -> Refusal | None:
    """Why this request is refused at the door, or None. ``headers`` have lower-case names."""
    host = headers.get("host")
    if host is not None and not policy.host_allowed(host):
        return Refusal(
            421,
            f"Host {_echo(host)} is not a host this server answers to (a guard against DNS "
            "rebinding); to allow it, add it to TIDEFLOW_SERVER_ALLOWED_HOSTS "
            "(comma-separated, * for any)",
        )
    origin = headers.get("origin")
    if websocket:
        if origin is not None and not policy.origin_allowed(origin, host):
            return _cross_site(origin, f"websocket {path}")
        return None
    if method.upper() in _SAFE_METHODS:
        return None
    if origin is not None:
        if not policy.origin_allowed(origin, host):
            return _cross_site(origin, f"{method} {path}")
        return None  # the server's own pages (the UI's scripts) post without our header
    referer = headers.get("referer")
    if referer is not None:
        parts = urlsplit(referer)
        page = f"{parts.scheme}://{parts.netloc}"
        if not policy.origin_allowed(page, host):
            return _cross_site(page, f"{method} {path}")
    on_api = path == api_prefix or path.startswith(api_prefix + "/")
    # An inbound webhook takes forms and text from other systems; it carries no cookie
    # authority to abuse (api.hooks checks its own verification).
    hook = path.startswith(api_prefix + "/hooks/")
    if (
        on_api
        and not hook
        and not _is_json(headers.get("content-type"))
        and CLIENT_HEADER.lower() not in headers
    ):
        return Refusal(
            403,
            f"{method} {path} refused: a state-changing API request needs Content-Type: "
            f"application/json or the header {CLIENT_HEADER} (a guard against cross-site forms)",
        )
    return None


def _cross_site(origin: str, what: str) -> Refusal:
    return Refusal(
        403,
        f"{what} from origin {_echo(origin)} refused: it is not this server's origin; to allow it, "
        "add it to TIDEFLOW_SERVER_ALLOWED_ORIGINS (comma-separated)",
    )


class DoorsMiddleware:
    """ASGI middleware applying :func:`refusal` to every HTTP request and websocket handshake."""

    def __init__(self, app: ASGIApp, *, policy: DoorPolicy, api_prefix: str = "/api") -> None:
        self.app = app
        self.policy = policy
        self.api_prefix = api_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers: dict[str, str] = {}
        hosts = 0
        for raw_name, raw_value in scope["headers"]:
            name = raw_name.decode("latin-1").lower()
            hosts += name == "host"
            headers.setdefault(name, raw_value.decode("latin-1"))
        refused = (
            # Two Host headers: which one a proxy or route would believe is anyone's guess.
            Refusal(400, "more than one Host header")
            if hosts > 1
            else refusal(
                self.policy,
                websocket=kind == "websocket",
                method=scope.get("method", "GET"),
                path=scope["path"],
                headers=headers,
                api_prefix=self.api_prefix,
            )
        )
        if refused is None:
            await self.app(scope, receive, send)
            return
        response = JSONResponse({"detail": refused.detail}, status_code=refused.status)
        if kind == "http":
            await response(scope, receive, send)
            return
        websocket = WebSocket(scope, receive, send)
        if "websocket.http.response" in scope.get("extensions", {}):
            await websocket.send_denial_response(response)
        else:  # the server cannot send a body: closing before accepting answers 403
            await websocket.close()
