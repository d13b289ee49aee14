"""Hostile action templates the save-time check cannot see through used to render on the event loop
without bounds: a ``recursive`` loop held the server for 20 s (weeks by extrapolation) and single
expressions (``replace``, ``'%0100000000d' % 1``, ``'{:>100000000}'.format``, ``join``) each built
100 MB bodies (server RSS 692 MB). Now each firing fails its action with the reason recorded
(time limit or size cap, naming the setting), /api/health answers quickly throughout, the server's
memory stays bounded, and a legitimate automation still fires afterwards."""

from __future__ import annotations

import datetime as dt
import json
import queue
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import psutil
import pytest

from tideflow.testing import ServerProcess

TIMEOUT = 0.5  # TIDEFLOW_TEMPLATES_RENDER_TIMEOUT for this server, to keep the test short
TOO_BIG = "above the limit of 1048576 (TIDEFLOW_TEMPLATES_MAX_OUTPUT)"
TOO_LONG = "rendering exceeded the time limit of 0.5 seconds (TIDEFLOW_TEMPLATES_RENDER_TIMEOUT)"
RSS_GROWTH_LIMIT = 250 * 2**20  # unbounded, one payload took the server to 692 MB


class _Receiver(ThreadingHTTPServer):
    bodies: queue.Queue[bytes]


class _Handler(BaseHTTPRequestHandler):
    server: _Receiver

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        self.server.bodies.put(self.rfile.read(length))
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def receiver() -> Iterator[_Receiver]:
    """A webhook target on loopback that keeps every body it is sent."""
    httpd = _Receiver(("127.0.0.1", 0), _Handler)
    httpd.bodies = queue.Queue()
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    env = {
        "TIDEFLOW_TEMPLATES_RENDER_TIMEOUT": str(TIMEOUT),
        "TIDEFLOW_WEBHOOKS_ALLOWED_NETWORKS": "127.0.0.0/8",  # the receiver is on loopback
    }
    with ServerProcess(env=env) as process:
        yield process


@pytest.fixture(scope="module")
def api(server: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.api_url, timeout=30) as client:
        yield client


def _rss(server: ServerProcess) -> int:
    assert server.proc is not None
    process = psutil.Process(server.proc.pid)
    return int(sum(p.memory_info().rss for p in [process, *process.children(recursive=True)]))


def _automation(api: httpx.Client, receiver: _Receiver, event: str, body: Any) -> str:
    url = f"http://127.0.0.1:{receiver.server_address[1]}/hook"
    response = api.post(
        "/automations/",
        json={
            "name": f"webhook on {event}",
            "trigger": {"type": "event", "expect": [event]},
            "actions": [{"type": "call-webhook", "url": url, "body": body}],
        },
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _emit(api: httpx.Client, event: str, payload: dict[str, Any]) -> None:
    response = api.post(
        "/events",
        json=[
            {
                "id": str(uuid.uuid4()),
                "occurred": dt.datetime.now(dt.UTC).isoformat(),
                "event": event,
                "resource": {"tideflow.resource.id": "demo.thing"},
                "payload": payload,
            }
        ],
    )
    assert response.status_code == 200, response.text
    assert len(response.json()["accepted"]) == 1


def _health_within(api: httpx.Client, seconds: float) -> None:
    started = time.monotonic()
    response = api.get("/health", timeout=seconds + 5)
    assert response.status_code == 200
    assert time.monotonic() - started < seconds


def _finished_action(api: httpx.Client, automation_id: str, wait: float = 60) -> dict[str, Any]:
    """The automation's first action once it has finished, probing health while waiting."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        _health_within(api, 5)
        history = api.get(f"/automations/{automation_id}/history").json()
        actions = history[0]["actions"] if history else []
        if actions and actions[0]["status"] in ("executed", "failed"):
            return dict(actions[0])
        time.sleep(0.1)
    raise AssertionError(f"the action of automation {automation_id} did not finish in {wait} s")


HOSTILE = [
    (
        "recursive-loop",
        "{% for x in range(1000) recursive %}{{ loop(range(1000)) if loop.depth < 9 else '' }}"
        "{% endfor %}",
        TOO_LONG,
    ),
    (
        "nested-loops",
        # a million iterations printing nothing (printing would hit the output cap first)
        "{% for i in range(1000) %}{% for j in range(1000) %}{% if i + j < 0 %}x{% endif %}"
        "{% endfor %}{% endfor %}",
        TOO_LONG,
    ),
    (
        "replace",
        "{{ event.payload.s|replace('x', event.payload.s * 100) }}",
        f"|replace would build 100000000 characters, {TOO_BIG}",
    ),
    (
        "round-ceil",
        "{{ event.payload.n|round(10000000, 'ceil') }}",
        "|round precision 10000000 is above the limit of 400",
    ),
    (
        "compare-nested",
        "{% set b = event.payload.s|list * 100 %}{% set e = b[:-1] + ['y'] %}"
        "{{ e in [" + ", ".join(["b"] * 200) + "] }}",
        "a comparison would build",
    ),
    ("printf", "{{ '%0100000000d' % 1 }}", f"'%' would build 100000014 characters, {TOO_BIG}"),
    (
        "format",
        "{{ '{:>100000000}'.format(event.payload.n) }}",
        f"format() would build 100000015 characters, {TOO_BIG}",
    ),
    ("join", "{{ (event.payload.s * 100)|join(event.payload.s) }}", "|join would build"),
    (
        "center-method",
        "{{ event.payload.s.center(100000000) }}",
        f"center() would build 100000000 characters, {TOO_BIG}",
    ),
    (
        "shared-list",
        "{% set a = [event.payload.s * 100] * 10 %}{{ [a, a, a, a, a, a, a, a, a, a]|tojson }}",
        "|tojson would build",
    ),
]
PAYLOAD = {"s": "x" * 1000, "n": 7}


@pytest.mark.parametrize(("name", "template", "reason"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_a_hostile_template_fails_its_action_with_the_reason_and_the_server_keeps_serving(
    server: ServerProcess,
    api: httpx.Client,
    receiver: _Receiver,
    name: str,
    template: str,
    reason: str,
) -> None:
    rss_before = _rss(server)
    event = f"hostile.{name}"
    automation_id = _automation(api, receiver, event, {"text": template})
    _emit(api, event, PAYLOAD)
    action = _finished_action(api, automation_id)
    assert action["status"] == "failed"
    assert action["detail"].startswith("template body.text ("), action["detail"]
    assert reason in action["detail"]
    assert receiver.bodies.empty()  # nothing was sent
    assert _rss(server) - rss_before < RSS_GROWTH_LIMIT

    # The failure is also an event, with the reason, for the feed and `automation explain`.
    failed = api.post(
        "/events/filter", json={"event_names": ["tideflow.automation.action.failed"], "limit": 50}
    )
    assert failed.status_code == 200, failed.text
    reasons = [e["payload"].get("reason", "") for e in failed.json()["events"]]
    assert any(reason in r for r in reasons), reasons


def test_a_legitimate_automation_still_fires_afterwards(
    api: httpx.Client, receiver: _Receiver
) -> None:
    body = {"rows": "{{ event.payload.n }}", "text": "{{ event.payload.s|length }} characters"}
    automation_id = _automation(api, receiver, "legit.happened", body)
    _emit(api, "legit.happened", PAYLOAD)
    action = _finished_action(api, automation_id)
    assert action["status"] == "executed", action
    assert json.loads(receiver.bodies.get(timeout=10)) == {"rows": 7, "text": "1000 characters"}
