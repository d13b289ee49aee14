"""Lone surrogates at every door, against a real server: an event with ``"\\udc80"`` in its payload
was stored, and from then on the filter, the event page, the UI feed, ``tideflow events ls`` and the
live stream failed; a surrogate in a flow name was a 500. Now every JSON body holding one is a 422
naming the field (run logs: U+FFFD instead), websocket frames are refused with a reason, and
everything stored before stays readable by every reader."""

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

JSON = {"Content-Type": "application/json"}
LONE = "\\udc80"  # as it appears in JSON text: the escape, not the character


@pytest.fixture(scope="module")
def srv() -> Iterator[ServerProcess]:
    with ServerProcess() as s:
        yield s


def _event(name: str, payload_json: str = '{"n": 1}', resource: str = "surr.r") -> str:
    ident = str(uuid.uuid4())
    occurred = dt.datetime.now(dt.UTC).isoformat()
    return (
        f'{{"id": "{ident}", "occurred": "{occurred}", "event": "{name}", '
        f'"resource": {{"tideflow.resource.id": "{resource}"}}, "payload": {payload_json}}}'
    )


def _post(srv: ServerProcess, path: str, body: str, method: str = "POST") -> httpx.Response:
    return httpx.request(
        method, f"{srv.api_url}{path}", content=body.encode(), headers=JSON, timeout=10
    )


def _readers_work(srv: ServerProcess, name: str) -> None:
    """Every reader of the event feed still answers, and shows the event ``name``."""
    page = httpx.post(f"{srv.api_url}/events/filter", json={"event_names": [name]}, timeout=10)
    assert page.status_code == 200, page.text
    events = page.json()["events"]
    assert events and {e["event"] for e in events} == {name}
    one = httpx.get(f"{srv.api_url}/events/{events[0]['id']}", timeout=10)
    assert one.status_code == 200 and one.json()["event"] == name
    ui = httpx.get(f"{srv.api_url.removesuffix('/api')}/events", timeout=10)
    assert ui.status_code == 200 and name in ui.text
    env = {**os.environ, "TIDEFLOW_API_URL": srv.api_url, "TIDEFLOW_SERVER_AUTOSTART": "false"}
    done = subprocess.run(
        [sys.executable, "-m", "tideflow", "events", "ls", "--json", "--limit", "500"],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert name in {e["event"] for e in json.loads(done.stdout)}
    with connect(ws_url(srv.api_url, "/events/out"), open_timeout=10) as ws:
        flt = {"event_names": [name]}
        ws.send(json.dumps({"filter": flt, "backfill_minutes": 60}))
        frame = json.loads(ws.recv(timeout=10))
        assert frame["type"] == "event" and frame["event"]["event"] == name


def test_a_lone_surrogate_in_an_event_payload_is_refused_and_readers_keep_working(
    srv: ServerProcess,
) -> None:
    good = _event("surr.kept")
    assert _post(srv, "/events", f"[{good}]").json()["refused"] == []
    bad = _event("surr.poison", f'{{"text": "a{LONE}b"}}')
    answer = _post(srv, "/events", f"[{bad}]")
    assert answer.status_code == 422
    assert answer.json()["detail"].startswith("body.0.payload.text: contains a lone surrogate")
    # Raw UTF-8 bytes of a surrogate (which json.loads decodes too) are refused the same way.
    raw = _event("surr.poison", '{"text": "a\udc80b"}').encode("utf-8", "surrogatepass")
    answer = httpx.post(f"{srv.api_url}/events", content=b"[" + raw + b"]", headers=JSON)
    assert answer.status_code == 422 and "lone surrogate" in answer.json()["detail"]
    # A valid pair (an emoji written as two escapes) is text, and is stored.
    emoji = _event("surr.emoji", '{"text": "\\ud83d\\ude00"}')
    assert _post(srv, "/events", f"[{emoji}]").json()["refused"] == []
    _readers_work(srv, "surr.kept")
    stored = httpx.post(f"{srv.api_url}/events/filter", json={"event_names": ["surr.emoji"]})
    assert stored.json()["events"][0]["payload"] == {"text": "\U0001f600"}


def test_websocket_ingest_refuses_a_surrogate_event_and_acks_the_rest(srv: ServerProcess) -> None:
    with connect(ws_url(srv.api_url, "/events/in"), open_timeout=10) as ws:
        good, bad = _event("surr.ws.kept"), _event("surr.ws.bad", f'{{"x": ["{LONE}"]}}')
        bad_label = _event("surr.ws.bad", resource=f"surr.{LONE}")
        ws.send(f"[{bad}, {good}, {bad_label}]")
        answer = json.loads(ws.recv(timeout=10))
        assert answer["ack"] == [json.loads(good)["id"]]
        reasons = [r["reason"] for r in answer["refused"]]
        assert [r["index"] for r in answer["refused"]] == [0, 2]
        assert reasons[0].startswith("payload.x[0] contains a lone surrogate (\\udc80)")
        assert "label 'tideflow.resource.id' contains a lone surrogate" in reasons[1]
        # Same socket, next frame: still answered.
        later = _event("surr.ws.kept")
        ws.send(later)
        assert json.loads(ws.recv(timeout=10)) == {"ack": [json.loads(later)["id"]], "refused": []}
    _readers_work(srv, "surr.ws.kept")


def test_a_surrogate_in_a_flow_name_is_a_422_not_a_500(srv: ServerProcess) -> None:
    answer = _post(srv, "/flows/", f'{{"name": "flow{LONE}"}}')
    assert answer.status_code == 422
    assert answer.json()["detail"].startswith("body.name: contains a lone surrogate (\\udc80)")
    answer = _post(srv, "/flow_runs/", f'{{"flow_name": "f", "tags": ["ok", "t{LONE}"]}}')
    assert answer.status_code == 422
    assert answer.json()["detail"].startswith("body.tags.1: contains a lone surrogate")
    names = [f["name"] for f in httpx.post(f"{srv.api_url}/flows/filter", json={}).json()]
    assert not any("flow" in n for n in names)


def test_run_logs_keep_their_batch_with_the_surrogate_replaced(srv: ServerProcess) -> None:
    run = httpx.post(f"{srv.api_url}/flow_runs/", json={"flow_name": "surr-logs"}).json()
    now = dt.datetime.now(dt.UTC).isoformat()
    records = [
        f'{{"flow_run_id": "{run["id"]}", "name": "l", "level": 20, "message": "{m}", '
        f'"timestamp": "{now}"}}'
        for m in ("before", f"bad {LONE} byte", "after")
    ]
    answer = _post(srv, "/logs/", "[" + ",".join(records) + "]")
    assert answer.status_code == 201 and answer.json() == {"accepted": 3, "dropped": 0}
    logs = httpx.post(f"{srv.api_url}/logs/filter", json={"flow_run_id": [run["id"]]}).json()
    assert [log["message"] for log in logs] == ["before", "bad \ufffd byte", "after"]


def test_a_runner_hello_with_a_surrogate_is_refused_and_the_server_goes_on(
    srv: ServerProcess,
) -> None:
    hello = f'{{"type": "hello", "runner_id": "{uuid.uuid4()}", "name": "r{LONE}", "deployment_ids": []}}'
    with connect(ws_url(srv.api_url, "/runners/ws"), open_timeout=10) as ws:
        ws.send(hello)
        error = json.loads(ws.recv(timeout=10))
    assert error["type"] == "error"
    assert error["detail"] == "name: text holds a lone surrogate, which is not valid Unicode"
    assert httpx.get(f"{srv.api_url}/health", timeout=5).status_code == 200


def _doors(srv: ServerProcess) -> list[tuple[str, str]]:
    """Every (method, path) of the API that takes a JSON body, from its OpenAPI document."""
    spec = httpx.get(f"{srv.api_url}/openapi.json", timeout=10).json()
    doors = []
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if isinstance(op, dict) and "requestBody" in op:
                filled = path
                for part in path.split("/"):
                    if part.startswith("{"):
                        filled = filled.replace(part, str(uuid.uuid4()))
                doors.append((method.upper(), filled))
    return doors


def test_every_json_body_door_refuses_a_lone_surrogate(srv: ServerProcess) -> None:
    doors = _doors(srv)
    assert len(doors) >= 15, doors  # the enumeration found the API, not an empty document
    found: dict[str, Any] = {}
    for method, path in doors:
        if path.rstrip("/") == "/api/logs":
            continue  # replaced, not refused: the test above
        answer = _post(srv, path.removeprefix("/api"), f'{{"any": "x{LONE}"}}', method)
        found[f"{method} {path}"] = (answer.status_code, answer.json().get("detail"))
    refused = {
        door: detail
        for door, (status, detail) in found.items()
        if status == 422 and detail.startswith("body.any: contains a lone surrogate")
    }
    assert set(refused) == set(found), {d: v for d, v in found.items() if d not in refused}
    assert httpx.get(f"{srv.api_url}/health", timeout=5).status_code == 200


def test_surrogate_bytes_in_a_path_or_query_are_plain_text(srv: ServerProcess) -> None:
    # Percent-decoding replaces bytes that are not UTF-8: no surrogate reaches a route.
    by_name = httpx.get(f"{srv.api_url}/flows/name/x%ED%B2%80", timeout=10)
    assert by_name.status_code == 404
    assert by_name.json()["detail"] == "flow 'x\ufffd\ufffd\ufffd' not found"
    page = httpx.get(f"{srv.api_url.removesuffix('/api')}/runs?flow=%ED%B2%80", timeout=10)
    assert page.status_code == 200


FLOW_LOGGING_A_SURROGATE = """
import sys
from tideflow import flow, get_run_logger
from tideflow.runtime import flow_run

@flow(flow_run_name="surrogate-logs")
def logs_a_file_name() -> None:
    logger = get_run_logger()
    logger.info("before")
    logger.info("file %s", b"report-\\xff.csv".decode("utf-8", "surrogateescape"))
    logger.info("after")
    print(flow_run.id)

logs_a_file_name()
"""


def test_the_sdk_sends_run_logs_holding_a_surrogate_with_u_fffd(srv: ServerProcess) -> None:
    env = {**os.environ, "TIDEFLOW_API_URL": srv.api_url, "TIDEFLOW_SERVER_AUTOSTART": "false"}
    done = subprocess.run(
        [sys.executable, "-c", FLOW_LOGGING_A_SURROGATE],
        capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "sending run logs failed" not in done.stderr
    run_id = done.stdout.strip().splitlines()[-1]
    logs = httpx.post(f"{srv.api_url}/logs/filter", json={"flow_run_id": [run_id]}).json()
    assert [log["message"] for log in logs] == ["before", "file report-\ufffd.csv", "after"]
