"""Which scope each request needs, and whether a server needs keys at all: pure rules over the
method, path and bind address, so they can be tested exhaustively without a server.

Public paths are matched **exactly** (``/api/health``, ``/api/version``): a path that merely ends in
``health`` needs a key like any other (Prefect's auth bypass came from suffix matching). The one
public path with a parameter is an inbound webhook's ``POST /api/hooks/{slug}`` (one segment, POST
only): the route answers 404 unless the slug names an enabled webhook, then applies that webhook's
own verification. Managing webhooks (``/api/webhooks``, the UI's ``/webhooks``) needs ``write``
even to read, since a slug lets its holder send events. A path no
rule names needs ``write`` (a state-changing request) or ``admin`` (a websocket): new routes are
closed until someone decides otherwise.
"""

from __future__ import annotations

import ipaddress
import re
import socket

from tideflow.schemas.api_keys import Scope
from tideflow.settings import Settings

__all__ = ["PUBLIC_PATHS", "auth_required", "is_loopback", "required_scope"]

PUBLIC_PATHS = frozenset({"/api/health", "/api/version"})
# The UI's login page and its form (it checks the key itself), and logging out.
_LOGIN = {("GET", "/login"), ("HEAD", "/login"), ("POST", "/login"), ("POST", "/logout")}
# The login page's style sheet, icon and theme script (exact paths): the page is shown before anyone
# logs in; none of them holds data.
_PUBLIC_ASSETS = frozenset(
    {"/ui/static/login.css", "/ui/static/favicon.svg", "/ui/static/theme.js"}
)
_ADMIN_PREFIXES = ("/api/api-keys/", "/api/users/")  # managing who gets in
_ADMIN_PATHS = frozenset({"/api/api-keys", "/api/users", "/access"})  # ... and the UI's page for it
_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

_WEBSOCKETS: dict[str, Scope] = {
    "/api/events/in": "events:write",
    "/api/events/out": "read",
    "/api/runners/ws": "runner",
    "/api/task_workers/ws": "runner",
}
_HOOK = re.compile(r"^/api/hooks/[^/]+$")  # an inbound webhook (api.hooks)
_WEBHOOKS = re.compile(r"^(/api)?/webhooks(/.*)?$")
_ARTIFACT = re.compile(r"^/api/artifacts/[^/]+$")
_SECRET_VALUE = re.compile(r"^/api/secrets/name/[^/]+/value/?$")
# POSTs that only read: filters and counts.
_READ_POST = re.compile(
    r"^/api/[a-z_]+/(filter|count)$|^/api/events/count-by/[^/]+$"
    r"|^/api/flow_runs/[^/]+/input/filter$"
)
# What executing runs needs: claim and report runs (and subflows), task runs, logs, tag slots, and
# sending to a notification destination (state hooks; the credentials never leave the server).
_RUNNER_POST = re.compile(
    r"^/api/("
    r"flows/|flow_runs/|flow_runs/[^/]+/set_state|task_runs/|task_runs/report|logs/"
    # a run sends input to another (send_input, respond) and acknowledges what it received
    r"|flow_runs/[^/]+/input|flow_runs/[^/]+/input/[^/]+/ack"
    r"|concurrency_limits/(acquire|renew|release)|deployments/get_scheduled_flow_runs"
    r"|runners/.*|task_workers/.*|artifacts/"
    r"|global_concurrency_limits/(acquire|renew|release)"
    r"|notification_destinations/name/[^/]+/send"
    r")$"
)


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the server reachable from this machine only."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        pass
    # A host name binds the address it resolves to: loopback when every address it has is one
    # (e.g. a machine name mapped to 127.0.0.1 in /etc/hosts); unresolvable means the network.
    try:
        infos = socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)
    except (OSError, UnicodeError):
        return False
    addresses = {info[4][0] for info in infos}
    return bool(addresses) and all(
        ipaddress.ip_address(str(a).split("%")[0]).is_loopback for a in addresses
    )


def auth_required(settings: Settings, host: str) -> bool:
    """TIDEFLOW_SERVER_AUTH ``on``/``off``, or for ``auto`` whether the bind is not loopback."""
    if settings.server_auth != "auto":
        return settings.server_auth == "on"
    return not is_loopback(host)


def required_scope(method: str, path: str, *, websocket: bool) -> Scope | None:
    """The scope a request needs; None for the public paths."""
    if websocket:
        return _WEBSOCKETS.get(path, "admin")
    method = method.upper()
    if (path in PUBLIC_PATHS or path in _PUBLIC_ASSETS) and method in ("GET", "HEAD"):
        return None
    if (method, path) in _LOGIN:
        return None
    if method == "POST" and _HOOK.match(path):
        return None
    if path.startswith(_ADMIN_PREFIXES) or path in _ADMIN_PATHS:
        return "admin"
    if _WEBHOOKS.match(path):
        return "write"
    if method in _READ_METHODS:
        # A secret's value: what running flows need (Secret.get), never a read-only key.
        return "runner" if _SECRET_VALUE.match(path) else "read"
    if method == "POST":
        if path == "/api/events":
            return "events:write"
        if _READ_POST.match(path):
            return "read"
        if _RUNNER_POST.match(path):
            return "runner"
    if method == "PATCH" and _ARTIFACT.match(path):
        return "runner"  # a running flow updates its progress artifacts
    return "write"
