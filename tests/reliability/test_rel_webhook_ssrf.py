"""SSRF through webhook actions, against real server processes: a webhook used to reach any address
the server could (loopback services, the cloud metadata address, private networks). Now loopback,
link-local, private and reserved targets are refused unless TIDEFLOW_WEBHOOKS_ALLOWED_NETWORKS names
them: a literal address at save time (422), a host name when the action runs (failed, the reason in
the history and the action.failed event), and nothing reaches the target; redirects are not followed
to refused addresses."""

from __future__ import annotations

import datetime as dt
import queue
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tideflow.exceptions import TideflowError
from tideflow.testing import ServerProcess

ALLOW_LOOPBACK = {"TIDEFLOW_WEBHOOKS_ALLOWED_NETWORKS": "127.0.0.0/8"}
HINT = "allow it with TIDEFLOW_WEBHOOKS_ALLOWED_NETWORKS"


class _Receiver(ThreadingHTTPServer):
    requests: queue.Queue[tuple[str, str]]  # (path, Host header)
    redirect_to: str | None = None


class _Handler(BaseHTTPRequestHandler):
    server: _Receiver

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        self.server.requests.put((self.path, self.headers.get("host", "")))
        if self.server.redirect_to and self.path == "/moved":
            self.send_response(302)
            self.send_header("location", self.server.redirect_to)
        else:
            self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _start_receiver(host: str) -> _Receiver:
    httpd = _Receiver((host, 0), _Handler)
    httpd.requests = queue.Queue()
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


@pytest.fixture
def receiver() -> Iterator[_Receiver]:
    """A webhook target on loopback that records every request it gets."""
    httpd = _start_receiver("127.0.0.1")
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def second_receiver() -> Iterator[_Receiver]:
    """Another loopback address (127.0.0.2), outside an allow-list of 127.0.0.1/32."""
    httpd = _start_receiver("127.0.0.2")
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def _port(receiver: _Receiver) -> int:
    return int(receiver.server_address[1])


def _create(api: httpx.Client, url: str, event: str) -> httpx.Response:
    return api.post(
        "/automations/",
        json={
            "name": f"hook on {event}",
            "trigger": {"type": "event", "expect": [event]},
            "actions": [{"type": "call-webhook", "url": url, "body": {"n": 1}, "timeout": 5}],
        },
    )


def _created(api: httpx.Client, url: str, event: str) -> str:
    response = _create(api, url, event)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _emit(api: httpx.Client, event: str) -> None:
    response = api.post(
        "/events",
        json=[
            {
                "id": str(uuid.uuid4()),
                "occurred": dt.datetime.now(dt.UTC).isoformat(),
                "event": event,
                "resource": {"tideflow.resource.id": "demo.thing"},
            }
        ],
    )
    assert response.status_code == 200, response.text


def _finished_action(api: httpx.Client, automation_id: str, wait: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        history = api.get(f"/automations/{automation_id}/history").json()
        actions = history[0]["actions"] if history else []
        if actions and actions[0]["status"] in ("executed", "failed"):
            return dict(actions[0])
        time.sleep(0.1)
    raise AssertionError(f"the action of automation {automation_id} did not finish in {wait} s")


def _failed_reasons(api: httpx.Client) -> list[str]:
    response = api.post(
        "/events/filter", json={"event_names": ["tideflow.automation.action.failed"], "limit": 50}
    )
    assert response.status_code == 200, response.text
    return [str(e["payload"].get("reason", "")) for e in response.json()["events"]]


def _api(server: ServerProcess) -> httpx.Client:
    return httpx.Client(base_url=server.api_url, timeout=30)


def test_loopback_webhooks_are_refused_by_default_and_nothing_is_sent(
    receiver: _Receiver,
) -> None:
    port = _port(receiver)
    with ServerProcess() as server, _api(server) as api:
        # Literal addresses are judged when saved: a 422 naming the action and the reason.
        for url in (
            f"http://127.0.0.1:{port}/hook",
            f"http://[::ffff:127.0.0.1]:{port}/hook",
            f"http://127.1:{port}/hook",
            "http://169.254.169.254/latest/meta-data/",
            "http://[::1]/hook",
        ):
            response = _create(api, url, "never")
            assert response.status_code == 422, (url, response.text)
            assert f"actions[0].url: webhook URL {url} is a" in response.text, response.text
            assert HINT in response.text
        metadata = _create(api, "http://169.254.169.254/latest/meta-data/", "never")
        assert "link-local address (the cloud metadata service)" in metadata.text
        ftp = _create(api, "ftp://files.example.org/x", "never")
        assert ftp.status_code == 422 and "actions[0].url" in ftp.text, ftp.text

        # A host name is judged when the action runs: localhost resolves to loopback.
        automation_id = _created(api, f"http://localhost:{port}/hook", "ping.localhost")
        _emit(api, "ping.localhost")
        action = _finished_action(api, automation_id)
        assert action["status"] == "failed", action
        assert action["detail"].startswith(f"webhook URL http://localhost:{port}/hook resolves to")
        assert "a loopback address" in action["detail"] and HINT in action["detail"]
        assert action["detail"] in _failed_reasons(api)
    assert receiver.requests.empty()


def test_stored_webhooks_are_judged_again_when_they_run(
    receiver: _Receiver, tmp_path: Path
) -> None:
    """Saved while the allow-list named loopback, then run by a server without it: refused."""
    port = _port(receiver)
    urls = [f"http://127.0.0.1:{port}/hook", f"http://[::ffff:127.0.0.1]:{port}/hook"]
    with ServerProcess(home=tmp_path, env=ALLOW_LOOPBACK) as server, _api(server) as api:
        ids = [_created(api, url, f"stored.{i}") for i, url in enumerate(urls)]
    with ServerProcess(home=tmp_path) as server, _api(server) as api:
        for i, _ in enumerate(urls):
            _emit(api, f"stored.{i}")
        details = [_finished_action(api, automation_id)["detail"] for automation_id in ids]
        reasons = _failed_reasons(api)
    assert details == [
        f"webhook URL {urls[0]} is a loopback address; {HINT}",
        f"webhook URL {urls[1]} is a loopback address (127.0.0.1 inside IPv6); {HINT}",
    ]
    assert all(detail in reasons for detail in details)
    assert receiver.requests.empty()


def test_the_allow_list_lets_loopback_through(receiver: _Receiver) -> None:
    port = _port(receiver)
    with ServerProcess(env=ALLOW_LOOPBACK) as server, _api(server) as api:
        literal = _created(api, f"http://127.0.0.1:{port}/literal", "ok.literal")
        named = _created(api, f"http://localhost:{port}/named", "ok.named")
        _emit(api, "ok.literal")
        assert _finished_action(api, literal)["status"] == "executed"
        _emit(api, "ok.named")
        action = _finished_action(api, named)
    if action["status"] == "failed":  # localhost may resolve to ::1 first, outside 127.0.0.0/8
        assert "::1" in action["detail"], action
    else:
        assert action["detail"] == f"POST http://localhost:{port}/named answered HTTP 200"
    got = dict(
        receiver.requests.get(timeout=5) for _ in range(1 + (action["status"] == "executed"))
    )
    assert got["/literal"] == f"127.0.0.1:{port}"
    if "/named" in got:  # sent to the checked address, the Host header still the name
        assert got["/named"] == f"localhost:{port}"


def test_a_redirect_to_a_refused_address_is_not_followed(
    receiver: _Receiver, second_receiver: _Receiver
) -> None:
    target = f"http://127.0.0.2:{_port(second_receiver)}/steal"
    receiver.redirect_to = target
    url = f"http://127.0.0.1:{_port(receiver)}/moved"
    env = {"TIDEFLOW_WEBHOOKS_ALLOWED_NETWORKS": "127.0.0.1/32"}
    with ServerProcess(env=env) as server, _api(server) as api:
        refused = _create(api, target, "never")
        assert refused.status_code == 422 and "is a loopback address" in refused.text
        automation_id = _created(api, url, "redirected")
        _emit(api, "redirected")
        action = _finished_action(api, automation_id)
    assert action["status"] == "failed", action
    assert target in action["detail"] and "redirect" in action["detail"]
    assert receiver.requests.get(timeout=5)[0] == "/moved"
    assert second_receiver.requests.empty()


def test_a_bad_allow_list_stops_the_server_naming_the_entry(tmp_path: Path) -> None:
    env = {"TIDEFLOW_WEBHOOKS_ALLOWED_NETWORKS": "127.0.0.0/8,10.0.0.0/33"}
    server = ServerProcess(home=tmp_path, env=env)
    try:
        with pytest.raises(TideflowError) as info:
            server.start()
    finally:
        server.stop()
    assert "TIDEFLOW_WEBHOOKS_ALLOWED_NETWORKS: '10.0.0.0/33' is not a CIDR network" in str(
        info.value
    )
