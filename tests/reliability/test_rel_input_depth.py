"""Deeply nested JSON, against a real server: a frame nested ~900 deep on ``/events/in`` raised
RecursionError in the frame check, the reader died without an ack and the SDK resent the frame
forever. Now every frame is answered (the same socket then acks good events), HTTP bodies deeper
than ``server_max_json_depth`` are a 422 naming the limit, and payloads nest at most 64 levels."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

from tideflow.client._events import ws_url
from tideflow.testing import ServerProcess


@pytest.fixture(scope="module")
def srv() -> Iterator[ServerProcess]:
    with ServerProcess() as s:
        yield s


def _nested(depth: int) -> str:
    return "[" * depth + "1" + "]" * depth


def _event(name: str, payload: str = '{"n": 1}') -> str:
    return (
        f'{{"id": "{uuid.uuid4()}", "occurred": "{dt.datetime.now(dt.UTC).isoformat()}", '
        f'"event": "{name}", "resource": {{"tideflow.resource.id": "deep.r"}}, "payload": {payload}}}'
    )


def _good_event_acked(ws: Any) -> None:
    good = _event("deep.kept")
    ws.send(good)
    assert json.loads(ws.recv(timeout=10)) == {"ack": [json.loads(good)["id"]], "refused": []}


@pytest.mark.parametrize("depth", [900, 990, 5_000, 100_000])
def test_a_deep_frame_is_answered_and_the_socket_goes_on(srv: ServerProcess, depth: int) -> None:
    bad = _event("deep.bad", '{"x": ' + _nested(depth) + "}")
    with connect(ws_url(srv.api_url, "/events/in"), open_timeout=10, max_size=None) as ws:
        ws.send(f"[{bad}]")
        answer = json.loads(ws.recv(timeout=30))
        assert answer["ack"] == []
        [refusal] = answer["refused"]
        assert refusal["index"] == 0
        assert ("nested deeper than the limit of 64 levels" in refusal["reason"]) or (
            refusal["reason"].startswith("frame is nested too deeply to be read")
        ), refusal
        _good_event_acked(ws)
    assert httpx.get(f"{srv.api_url}/health", timeout=5).status_code == 200


def test_a_payload_of_65_levels_is_refused_by_name_and_64_are_stored(srv: ServerProcess) -> None:
    ok = _event("deep.64", '{"x": ' + _nested(63) + "}")
    deep = _event("deep.65", '{"x": ' + _nested(64) + "}")
    with connect(ws_url(srv.api_url, "/events/in"), open_timeout=10) as ws:
        ws.send(f"[{ok}, {deep}]")
        answer = json.loads(ws.recv(timeout=10))
    assert answer["ack"] == [json.loads(ok)["id"]]
    assert answer["refused"] == [
        {
            "index": 1,
            "id": json.loads(deep)["id"],
            "reason": "payload is nested deeper than the limit of 64 levels",
        }
    ]
    stored = httpx.get(f"{srv.api_url}/events/{json.loads(ok)['id']}", timeout=10)
    assert stored.status_code == 200 and stored.json()["payload"] == json.loads(ok)["payload"]
    # The HTTP batch answers the same way.
    again = _event("deep.65", '{"x": ' + _nested(64) + "}")
    answer = httpx.post(
        f"{srv.api_url}/events",
        content=f"[{again}]".encode(),
        headers={"Content-Type": "application/json"},
        timeout=10,
    ).json()
    assert answer["accepted"] == []
    assert "nested deeper than the limit of 64 levels" in answer["refused"][0]["reason"]


@pytest.mark.parametrize("depth", [101, 900, 100_000])
def test_a_deep_http_body_is_a_422_naming_the_limit(srv: ServerProcess, depth: int) -> None:
    body = '{"flow_name": "deep-params", "parameters": {"p": ' + _nested(depth) + "}}"
    answer = httpx.post(
        f"{srv.api_url}/flow_runs/",
        content=body.encode(),
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    assert answer.status_code == 422
    assert answer.json()["detail"] == (
        "body: JSON nested deeper than the limit of 100 levels (TIDEFLOW_SERVER_MAX_JSON_DEPTH)"
    )
    runs = httpx.post(f"{srv.api_url}/flow_runs/filter", json={"flow_name": ["deep-params"]})
    assert runs.json() == []
    # A body within the limit is stored and reads back whole.
    nested = json.loads(_nested(90))
    made = httpx.post(
        f"{srv.api_url}/flow_runs/",
        json={"flow_name": "deep-params-ok", "parameters": {"p": nested}},
        timeout=10,
    )
    assert made.status_code == 201, made.text
    read = httpx.get(f"{srv.api_url}/flow_runs/{made.json()['id']}", timeout=10)
    assert read.json()["parameters"] == {"p": nested}


def test_the_runner_socket_answers_a_deep_frame(srv: ServerProcess) -> None:
    with connect(ws_url(srv.api_url, "/runners/ws"), open_timeout=10, max_size=None) as ws:
        ws.send(_nested(100_000))
        error = json.loads(ws.recv(timeout=10))
    assert error == {"type": "error", "detail": "frames must be JSON objects"}
    assert httpx.get(f"{srv.api_url}/health", timeout=5).status_code == 200


EMIT_A_DEEP_EVENT_THEN_100 = """
from tideflow.events import emit_event
from tideflow.client._events import flush_events

deep = 1
for _ in range(900):
    deep = [deep]
try:
    emit_event("deep.sdk.bad", {"tideflow.resource.id": "deep.sdk"}, payload={"x": deep})
except ValueError as exc:
    print("refused:", " ".join(str(exc).split()))
for i in range(100):
    emit_event("deep.sdk.later", {"tideflow.resource.id": "deep.sdk"}, payload={"i": i})
assert flush_events(30)
"""


def test_the_sdk_refuses_a_deep_event_locally_and_the_later_ones_arrive(srv: ServerProcess) -> None:
    env = {**os.environ, "TIDEFLOW_API_URL": srv.api_url, "TIDEFLOW_SERVER_AUTOSTART": "false"}
    done = subprocess.run(
        [sys.executable, "-c", EMIT_A_DEEP_EVENT_THEN_100],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "payload Value error, payload is nested deeper than the limit of 64 levels" in (
        done.stdout
    )
    counts = httpx.post(f"{srv.api_url}/events/count-by/event", json={}, timeout=10).json()
    by_name = {row["value"]: row["count"] for row in counts}
    assert by_name.get("deep.sdk.later") == 100 and "deep.sdk.bad" not in by_name
