"""The door rules (server.api.doors.refusal) as a table: hosts, origins, the client header."""

from __future__ import annotations

import httpx
import pytest
from starlette.responses import PlainTextResponse
from starlette.types import Receive, Scope, Send

from tideflow.client._calls import CLIENT_HEADERS
from tideflow.server.api.doors import (
    CLIENT_HEADER,
    DoorPolicy,
    DoorsMiddleware,
    host_name,
    refusal,
)
from tideflow.settings import Settings

OWN = "127.0.0.1:4200"


def _policy(**settings: str) -> DoorPolicy:
    return DoorPolicy.from_settings(Settings(**settings))  # type: ignore[arg-type]


def _status(
    policy: DoorPolicy, method: str = "POST", path: str = "/api/x", websocket: bool = False,
    **headers: str,
) -> int | None:  # fmt: skip
    found = refusal(
        policy,
        websocket=websocket,
        method=method,
        path=path,
        headers={k.replace("_", "-"): v for k, v in headers.items()},
    )
    return None if found is None else found.status


def test_the_client_sends_the_header_the_server_looks_for() -> None:
    assert CLIENT_HEADER in CLIENT_HEADERS


@pytest.mark.parametrize(
    ("raw", "name"),
    [("Example.COM:4200", "example.com"), ("[::1]:4200", "::1"), ("::1", "::1"),
     ("localhost.", "localhost"), ("10.0.0.1", "10.0.0.1")],
)  # fmt: skip
def test_host_name(raw: str, name: str) -> None:
    assert host_name(raw) == name


@pytest.mark.parametrize(
    ("host", "allowed"),
    [("127.0.0.1:4200", True), ("localhost", True), ("LOCALHOST:1", True), ("[::1]:80", True),
     ("192.168.1.20:4200", True), ("[fe80::1]:4200", True), ("evil.example", False),
     ("localhost.evil.example", False), ("box.lan:4200", False), ("", False)],
)  # fmt: skip
def test_hosts_by_default(host: str, allowed: bool) -> None:
    assert (_status(_policy(), "GET", host=host) is None) is allowed


def test_hosts_from_settings() -> None:
    policy = _policy(server_host="box.lan", server_allowed_hosts=" tideflow , Ops.Example:443")
    for host in ("box.lan:4200", "tideflow:4200", "ops.example"):
        assert _status(policy, "GET", host=host) is None
    assert _status(policy, "GET", host="evil.example") == 421
    assert _status(_policy(server_allowed_hosts="*"), "GET", host="evil.example") is None
    assert _status(_policy(server_host="0.0.0.0"), "GET", host="0.0.0.0") is None  # an IP literal


@pytest.mark.parametrize("websocket", [True, False])
def test_origins(websocket: bool) -> None:
    policy = _policy(server_allowed_origins="https://Ops.example/")
    kw = {"websocket": websocket, "host": OWN, "content_type": "application/json"}
    assert _status(policy, origin="http://127.0.0.1:4200", **kw) is None
    assert _status(policy, origin="https://127.0.0.1:4200", **kw) is None  # behind a TLS proxy
    assert _status(policy, origin="https://ops.example", **kw) is None
    for foreign in (
        "http://evil.example",
        "null",
        "http://127.0.0.1:4201",
        "http://localhost:4200",
    ):
        assert _status(policy, origin=foreign, **kw) == 403, foreign
    assert _status(_policy(server_allowed_origins="*"), origin="null", **kw) is None


def test_state_changing_api_requests_need_json_or_the_header() -> None:
    policy = _policy()
    assert _status(policy, host=OWN) == 403
    assert _status(policy, host=OWN, content_type="text/plain") == 403
    assert _status(policy, "DELETE", host=OWN, content_type="multipart/form-data; b=x") == 403
    assert _status(policy, host=OWN, content_type="application/json; charset=utf-8") is None
    assert _status(policy, "PATCH", host=OWN, content_type="application/merge-patch+json") is None
    assert _status(policy, host=OWN, x_tideflow_client="python") is None
    assert _status(policy, host=OWN, origin="http://127.0.0.1:4200") is None  # the UI's scripts
    for safe in ("GET", "HEAD", "OPTIONS"):
        assert _status(policy, safe, host=OWN) is None
    # UI routes: no header needed, but a foreign page (Origin, or Referer without Origin) is refused.
    assert _status(policy, path="/automations/yaml", host=OWN) is None
    assert (
        _status(policy, path="/automations/yaml", host=OWN, referer="http://evil.example/a") == 403
    )
    own_page = "http://127.0.0.1:4200/automations/new"
    assert _status(policy, path="/automations/yaml", host=OWN, referer=own_page) is None
    assert _status(policy, path="/apis", host=OWN) is None  # not under /api


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_the_middleware_answers_json_and_refuses_two_host_headers(anyio_backend: str) -> None:
    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        await PlainTextResponse("inner")(scope, receive, send)

    app = DoorsMiddleware(inner, policy=_policy())
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
        assert (await http.get("/api/x")).text == "inner"
        refused = await http.get("/api/x", headers={"Host": "evil.example"})
        assert refused.status_code == 421 and "'evil.example'" in refused.json()["detail"]
        two = await http.get("/api/x", headers=[("Host", "127.0.0.1"), ("Host", "evil.example")])
        assert two.status_code == 400 and two.json() == {"detail": "more than one Host header"}
