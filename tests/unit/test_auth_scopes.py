"""The pure auth rules: which scope each request needs (public paths matched exactly), what each
scope includes, which binds need keys, and the key format."""

from __future__ import annotations

import pytest

from tideflow.schemas.api_keys import SCOPES, grants
from tideflow.server.api.scopes import auth_required, is_loopback, required_scope
from tideflow.server.storage.api_keys import split_key
from tideflow.settings import Settings


@pytest.mark.parametrize(
    ("method", "path", "websocket", "scope"),
    [
        ("GET", "/api/health", False, None),
        ("HEAD", "/api/version", False, None),
        ("POST", "/api/health", False, "write"),
        ("GET", "/api/health/", False, "read"),
        ("GET", "/api/flows/health", False, "read"),
        ("GET", "/api/xhealth", False, "read"),
        ("GET", "/api/healthz", False, "read"),
        ("GET", "/", False, "read"),
        ("GET", "/ui/static/app.js", False, "read"),
        ("GET", "/ui/static/login.css", False, None),  # the login page's own assets
        ("HEAD", "/ui/static/favicon.svg", False, None),
        ("GET", "/ui/static/theme.js", False, None),
        ("POST", "/ui/static/login.css", False, "write"),
        ("GET", "/ui/static/login.css/x", False, "read"),
        ("GET", "/ui/static/app.css", False, "read"),
        ("GET", "/api/users/", False, "admin"),
        ("GET", "/api/users", False, "admin"),
        ("POST", "/api/users/1/password", False, "admin"),
        ("DELETE", "/api/users/1", False, "admin"),
        ("POST", "/automations/yaml", False, "write"),
        ("POST", "/api/flows/filter", False, "read"),
        ("POST", "/api/events/count-by/day", False, "read"),
        ("POST", "/api/events", False, "events:write"),
        ("POST", "/api/events/", False, "write"),
        ("POST", "/api/flow_runs/", False, "runner"),
        ("POST", "/api/flow_runs/1/set_state", False, "runner"),
        ("POST", "/api/task_runs/report", False, "runner"),
        ("POST", "/api/logs/", False, "runner"),
        ("POST", "/api/concurrency_limits/acquire", False, "runner"),
        ("POST", "/api/concurrency_limits/", False, "write"),
        ("POST", "/api/deployments/", False, "write"),
        ("POST", "/api/deployments/1/create_flow_run", False, "write"),
        ("DELETE", "/api/flow_runs/1", False, "write"),
        ("PATCH", "/api/automations/1", False, "write"),
        ("GET", "/api/api-keys/", False, "admin"),
        ("POST", "/api/api-keys/1/revoke", False, "admin"),
        ("GET", "/api/events/in", True, "events:write"),
        ("GET", "/api/events/out", True, "read"),
        ("GET", "/api/runners/ws", True, "runner"),
        ("GET", "/api/task_workers/ws", True, "runner"),
        ("GET", "/api/health", True, "admin"),
        ("GET", "/api/unknown/ws", True, "admin"),
        ("GET", "/login", False, None),
        ("POST", "/login", False, None),
        ("POST", "/logout", False, None),
        ("GET", "/logout", False, "read"),
        ("GET", "/login/x", False, "read"),
        ("GET", "/login", True, "admin"),
        # Inbound webhooks: POST to one slug is public (the route checks the slug and signature);
        # anything else there needs a key; managing webhooks needs write, reads included.
        ("POST", "/api/hooks/abcdefgh12345678", False, None),
        ("GET", "/api/hooks/abcdefgh12345678", False, "read"),
        ("PUT", "/api/hooks/abcdefgh12345678", False, "write"),
        ("POST", "/api/hooks/a/b", False, "write"),
        ("POST", "/api/hooks/", False, "write"),
        ("POST", "/api/hookss/abc", False, "write"),
        ("GET", "/api/hooks/x", True, "admin"),
        ("GET", "/api/webhooks/filter", False, "write"),
        ("POST", "/api/webhooks/filter", False, "write"),
        ("GET", "/api/webhooks/1", False, "write"),
        ("GET", "/webhooks", False, "write"),
    ],
)
def test_required_scope(method: str, path: str, websocket: bool, scope: str | None) -> None:
    assert required_scope(method, path, websocket=websocket) == scope


def test_scope_inclusion() -> None:
    assert all(grants(["admin"], s) for s in SCOPES)
    assert not grants(["write"], "admin")
    assert grants(["write"], "runner") and grants(["write"], "events:write")
    assert grants(["runner"], "read") and not grants(["runner"], "write")
    assert not grants(["read"], "events:write") and not grants(["events:write"], "read")
    assert grants(["read", "events:write"], "events:write")


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("localhost", True),
        ("::1", True),
        ("[::1]", True),
        ("0.0.0.0", False),
        ("::", False),
        ("", False),
        ("10.0.0.5", False),
        ("example.com", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_auth_required_follows_the_setting_then_the_bind() -> None:
    assert not auth_required(Settings(server_auth="auto"), "127.0.0.1")
    assert auth_required(Settings(server_auth="auto"), "0.0.0.0")
    assert auth_required(Settings(server_auth="on"), "127.0.0.1")
    assert not auth_required(Settings(server_auth="off"), "0.0.0.0")


def test_split_key() -> None:
    assert split_key("tf_abc123_secret_with_underscore") == ("abc123", "secret_with_underscore")
    for bad in ("", "tf_", "tf_abc", "tf__x", "xx_abc_def", "tf_" + "a" * 41 + "_x"):
        assert split_key(bad) is None


@pytest.mark.parametrize(
    ("method", "path", "scope"),
    [
        ("GET", "/api/secrets/name/db/value", "runner"),
        ("HEAD", "/api/secrets/name/db/value", "runner"),
        ("GET", "/api/secrets/name/db/value/", "runner"),
        ("GET", "/api/secrets/name/db", "read"),
        ("POST", "/api/secrets/filter", "read"),
        ("POST", "/api/secrets/", "write"),
        ("DELETE", "/api/secrets/name/db", "write"),
        ("POST", "/api/variables/filter", "read"),
        ("PATCH", "/api/variables/name/x", "write"),
        ("POST", "/api/artifacts/", "runner"),
        ("PATCH", "/api/artifacts/1", "runner"),
        ("DELETE", "/api/artifacts/1", "write"),
        ("POST", "/api/artifacts/filter", "read"),
        ("POST", "/api/global_concurrency_limits/acquire", "runner"),
        ("POST", "/api/global_concurrency_limits/renew", "runner"),
        ("POST", "/api/global_concurrency_limits/release", "runner"),
        ("POST", "/api/global_concurrency_limits/", "write"),
        ("POST", "/api/global_concurrency_limits/name/db/reset", "write"),
    ],
)
def test_a_secret_value_needs_more_than_read(method: str, path: str, scope: str) -> None:
    assert required_scope(method, path, websocket=False) == scope
    assert not grants(("read",), "runner") and grants(("runner",), "runner")
