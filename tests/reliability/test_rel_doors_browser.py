"""Limits and doors, the browser-facing part, against a real server: a page on another site (or on a
rebound DNS name) can neither open the three websockets, nor post to the API or the UI; our own
clients (no Origin, our header) and the server's own pages keep working; /api/version names no
database host, user or path."""

from __future__ import annotations

import datetime as dt
import json
import socket
import urllib.parse
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tideflow.client import SyncClient
from tideflow.client._events import ws_url
from tideflow.testing import ServerProcess

EVIL = "http://evil.example"
SOCKETS = ["/events/in", "/events/out", "/runners/ws"]

AUTOMATION: dict[str, Any] = {
    "name": "doors",
    "trigger": {"type": "event", "expect": ["doors.test"]},
    "actions": [{"type": "do-nothing"}],
}


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    # One server for the module: every test here only reads or makes its own objects.
    with ServerProcess() as s:
        yield s


def _own_origin(server: ServerProcess) -> str:
    return server.api_url.removesuffix("/api")


def _refused_handshake(url: str, headers: dict[str, str], *, host: str | None = None) -> Any:
    """The HTTP answer refusing the handshake; ``host`` replaces the URL's host (same socket)."""
    sock = None
    if host is not None:  # what a page on a rebound name does: its name, this server's address
        parts = urllib.parse.urlsplit(url)
        sock = socket.create_connection((parts.hostname, parts.port), timeout=10)
        url = parts._replace(netloc=host).geturl()
    with pytest.raises(InvalidStatus) as caught:
        with connect(url, additional_headers=headers, open_timeout=10, sock=sock):
            pass
    return caught.value.response


def _alive(server: ServerProcess) -> None:
    assert httpx.get(f"{server.api_url}/health", timeout=5).json() == {"status": "ok"}


@pytest.mark.parametrize("path", SOCKETS)
def test_websocket_from_a_foreign_origin_is_refused(server: ServerProcess, path: str) -> None:
    response = _refused_handshake(ws_url(server.api_url, path), {"Origin": EVIL})
    assert response.status_code == 403
    detail = json.loads(response.body)["detail"]
    assert "'http://evil.example'" in detail and "TIDEFLOW_SERVER_ALLOWED_ORIGINS" in detail
    _alive(server)


@pytest.mark.parametrize("path", SOCKETS)
@pytest.mark.parametrize("origin", ["own", "none"])
def test_websocket_from_the_own_origin_or_no_origin_is_accepted(
    server: ServerProcess, path: str, origin: str
) -> None:
    headers = {"Origin": _own_origin(server)} if origin == "own" else {}
    with connect(ws_url(server.api_url, path), additional_headers=headers, open_timeout=10) as ws:
        if path == "/events/out":  # the UI's live feed: subscribe, then read an event back
            resource = f"doors.{uuid.uuid4().hex}"
            event = {
                "id": str(uuid.uuid4()),
                "occurred": dt.datetime.now(dt.UTC).isoformat(),
                "event": "doors.feed",
                "resource": {"tideflow.resource.id": resource},
            }
            stored = httpx.post(f"{server.api_url}/events", json=[event], timeout=10)
            assert stored.json()["accepted"] == [event["id"]]
            ws.send(json.dumps({"filter": {"resource_ids": [resource]}, "backfill_minutes": 10}))
            frames = [json.loads(ws.recv(timeout=10)) for _ in range(1)]
            assert frames[0]["type"] == "event" and frames[0]["event"]["id"] == event["id"]


def test_websocket_and_http_with_a_foreign_host_are_refused(server: ServerProcess) -> None:
    # DNS rebinding: the page's name now points at 127.0.0.1, but the browser sends its own Host.
    answer = httpx.get(f"{server.api_url}/flows/filter", headers={"Host": "evil.example:4200"})
    assert answer.status_code == 421
    detail = answer.json()["detail"]
    assert "'evil.example:4200'" in detail and "TIDEFLOW_SERVER_ALLOWED_HOSTS" in detail
    posted = httpx.post(f"{server.api_url}/flows/filter", json={}, headers={"Host": "evil.example"})
    assert posted.status_code == 421
    for path in SOCKETS:
        response = _refused_handshake(
            ws_url(server.api_url, path), {"Origin": EVIL}, host="evil.example"
        )
        assert response.status_code == 421
        assert "TIDEFLOW_SERVER_ALLOWED_HOSTS" in json.loads(response.body)["detail"]
    # Loopback names with any port, and IP literals, are this server.
    for host in ("localhost:4200", "127.0.0.1", "[::1]:80"):
        ok = httpx.get(f"{server.api_url}/health", headers={"Host": host}, timeout=5)
        assert ok.status_code == 200, host


def test_a_body_less_cross_site_post_cannot_pause_an_automation(server: ServerProcess) -> None:
    with SyncClient(server.api_url) as client:
        automation = client.create_automation(AUTOMATION | {"name": f"doors-{uuid.uuid4()}"})
        url = f"{server.api_url}/automations/{automation.id}/pause"
        # What a cross-site <form enctype="text/plain"> or a simple fetch() sends (no Origin: an
        # older browser, or a privacy setting), and what it sends with its Origin.
        simple = httpx.post(url, content=b"x", headers={"Content-Type": "text/plain"})
        assert simple.status_code == 403
        assert "application/json or the header X-Tideflow-Client" in simple.json()["detail"]
        assert httpx.post(url).status_code == 403
        with_origin = httpx.post(url, headers={"Origin": EVIL, "Content-Type": "text/plain"})
        assert with_origin.status_code == 403
        assert "'http://evil.example'" in with_origin.json()["detail"]
        assert client.read_automation(automation.id).enabled is True

        # Our client (it sends X-Tideflow-Client), a JSON request, the UI's own page.
        assert client.pause_automation(automation.id).enabled is False
        assert client.resume_automation(automation.id).enabled is True
        as_json = httpx.post(url, headers={"Content-Type": "application/json"})
        assert as_json.status_code == 200 and as_json.json()["enabled"] is False
        resume = url.removesuffix("/pause") + "/resume"
        from_ui = httpx.post(resume, headers={"Origin": _own_origin(server)})
        assert from_ui.status_code == 200 and from_ui.json()["enabled"] is True


def test_ui_form_post_from_a_foreign_page_is_refused(server: ServerProcess) -> None:
    url = f"{_own_origin(server)}/automations/yaml"
    yaml = "name: from-yaml\ntrigger: {type: event, expect: [x]}\nactions: [{type: do-nothing}]\n"
    headers = {"Content-Type": "text/plain"}
    foreign = httpx.post(url, content=yaml, headers=headers | {"Origin": EVIL})
    assert foreign.status_code == 403 and "'http://evil.example'" in foreign.json()["detail"]
    by_referer = httpx.post(
        url, content=yaml, headers=headers | {"Referer": "http://evil.example/page"}
    )
    assert by_referer.status_code == 403
    own = httpx.post(url, content=yaml, headers=headers | {"Origin": _own_origin(server)})
    assert own.status_code == 200, own.text


def test_version_names_no_database_host_user_or_path(server: ServerProcess) -> None:
    body = httpx.get(f"{server.api_url}/version", timeout=5).json()
    assert body["database"] == "sqlite"
    text = json.dumps(body)
    assert str(server.home) not in text and "tideflow.db" not in text and "+aiosqlite" not in text
    assert set(body) == {"version", "api_version", "database"}
