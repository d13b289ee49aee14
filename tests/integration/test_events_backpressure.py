"""Backpressure against a real server whose trigger engine is stalled (the broker's hold hook, a
tiny ``events_backlog_limit``): POST /api/events and /events/in wait before storing while the engine
is behind, store and answer once it drains, and nothing acknowledged is lost; an SDK process with
a small buffer drops only events it never sent, and stored + reported dropped = emitted, exactly."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

from tideflow.client._events import DROPPED_EVENT, ws_url
from tideflow.server.events.broker import HOLD_ENV
from tideflow.testing import ServerProcess

LIMIT = 100


def _events(n: int, name: str) -> list[dict[str, Any]]:
    now = dt.datetime.now(dt.UTC).isoformat()
    return [
        {"id": str(uuid.uuid4()), "occurred": now, "event": name,
         "resource": {"tideflow.resource.id": f"bp.r{i}"}, "payload": {"i": i}}
        for i in range(n)
    ]  # fmt: skip


def _stored(http: httpx.Client, name: str) -> int:
    return int(
        http.post("/events/filter", json={"event_names": [name], "limit": 1}).json()["total"]
    )


@pytest.fixture
def held(tmp_path: Path) -> Path:
    hold = tmp_path / "hold"
    hold.touch()
    return hold


def _server(tmp_path: Path, hold: Path) -> ServerProcess:
    env = {HOLD_ENV: f"events:{hold}", "TIDEFLOW_EVENTS_BACKLOG_LIMIT": str(LIMIT)}
    return ServerProcess(home=tmp_path / "srv", env=env)


@pytest.mark.timeout(120)
def test_ingestion_waits_for_a_stalled_engine_and_loses_nothing(tmp_path: Path, held: Path) -> None:
    with _server(tmp_path, held) as server, httpx.Client(base_url=server.api_url) as http:
        first = _events(LIMIT, "bp.post")
        answer = http.post("/events", json=first, timeout=10).json()
        assert len(answer["accepted"]) == LIMIT  # room before it: stored at once
        # The engine now has LIMIT events queued and reads none: the next batches wait.
        later = _events(10, "bp.post")
        done: dict[str, Any] = {}

        def post() -> None:
            done["answer"] = http.post("/events", json=later, timeout=60).json()
            done["at"] = time.monotonic()

        poster = threading.Thread(target=post)
        poster.start()
        frame = _events(5, "bp.ws")
        with connect(ws_url(server.api_url, "/events/in")) as ws:
            ws.send(json.dumps(frame))
            with pytest.raises(TimeoutError):
                ws.recv(timeout=1.5)  # no ack: not stored while the engine is behind
            poster.join(0.1)
            assert poster.is_alive()
            assert _stored(http, "bp.post") == LIMIT and _stored(http, "bp.ws") == 0
            released = time.monotonic()
            held.unlink()
            ack = json.loads(ws.recv(timeout=20))
        poster.join(20)
        assert ack == {"ack": [e["id"] for e in frame], "refused": []}
        assert done["answer"] == {"accepted": [e["id"] for e in later], "refused": []}
        assert done["at"] >= released
        assert _stored(http, "bp.post") == LIMIT + 10 and _stored(http, "bp.ws") == 5
        for event in [*first, *later, *frame]:
            assert http.get(f"/events/{event['id']}").status_code == 200
    log = server.log_path.read_text()
    assert "event ingestion is throttled: a subscriber of 'events' has" in log


SDK_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from tideflow.client._events import event_worker, flush_events
    from tideflow.events import emit_event

    def emit(i):
        emit_event("bp.sdk", {"tideflow.resource.id": "bp.sdk"}, payload={"i": i})

    for i in range(100):
        emit(i)
    flush_events(1.0)  # not acknowledged (held) but sent: these 100 are in flight
    for i in range(100, 600):
        emit(i)
    print("emitted", flush=True)
    sys.stdin.readline()  # the test releases the engine, then says go
    ok = flush_events(60.0, wait_offline=True)
    worker = event_worker()
    print(json.dumps({"flushed": ok, "acknowledged": worker.delivered}), flush=True)
    """
)


@pytest.mark.timeout(120)
def test_sdk_drops_only_unsent_events_and_counts_them_exactly(tmp_path: Path, held: Path) -> None:
    with _server(tmp_path, held) as server, httpx.Client(base_url=server.api_url) as http:
        http.post("/events", json=_events(LIMIT, "bp.fill"), timeout=10)  # the engine is now full
        # The emitter waits 1 s for room, then (the engine still held) drops.
        env = dict(os.environ, TIDEFLOW_API_URL=server.api_url, TIDEFLOW_EVENTS_CLIENT_BUFFER="200",
                   TIDEFLOW_EVENTS_CLIENT_WAIT="1")  # fmt: skip
        proc = subprocess.Popen([sys.executable, "-c", SDK_SCRIPT], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)  # fmt: skip
        assert proc.stdout is not None and proc.stdin is not None
        assert proc.stdout.readline().strip() == "emitted"
        time.sleep(1.0)
        assert _stored(http, "bp.sdk") == 0  # held back: nothing of it stored yet
        held.unlink()
        proc.stdin.write("go\n")
        proc.stdin.flush()
        out, err = proc.communicate(timeout=90)
        assert proc.returncode == 0, err
        result = json.loads(out.strip().splitlines()[-1])
        reports = http.post("/events/filter", json={"event_names": [DROPPED_EVENT]}).json()
        stored = _stored(http, "bp.sdk")
    dropped = sum(int(e["payload"]["count"]) for e in reports["events"])
    assert result["flushed"] is True
    assert dropped == 600 - 200  # the buffer holds 200 events, the rest was dropped
    assert stored + dropped == 600
    assert result["acknowledged"] == stored + len(reports["events"])
    assert f"dropped {dropped} event(s)" in err


BURST_SCRIPT = textwrap.dedent(
    """
    import json, time
    from tideflow.client._events import event_worker, flush_events
    from tideflow.events import emit_event

    start = time.monotonic()
    for i in range(3000):
        emit_event("bp.burst", {"tideflow.resource.id": "bp.burst"}, payload={"i": i})
    emitted = time.monotonic() - start
    ok = flush_events(60.0)
    worker = event_worker()
    print(json.dumps({"flushed": ok, "acknowledged": worker.delivered, "emit_s": emitted}))
    """
)


@pytest.mark.timeout(120)
def test_a_burst_larger_than_the_buffer_waits_for_room_and_drops_nothing(
    tmp_path: Path, held: Path
) -> None:
    with _server(tmp_path, held) as server, httpx.Client(base_url=server.api_url) as http:
        http.post("/events", json=_events(LIMIT, "bp.fill"), timeout=10)  # the engine is now full
        env = dict(os.environ, TIDEFLOW_API_URL=server.api_url, TIDEFLOW_EVENTS_CLIENT_BUFFER="200")
        env.pop("TIDEFLOW_EVENTS_CLIENT_WAIT", None)  # the default wait
        proc = subprocess.Popen([sys.executable, "-c", BURST_SCRIPT], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=env)  # fmt: skip
        time.sleep(2.0)  # the emitter is blocked on a full buffer while the engine is held
        assert proc.poll() is None
        assert _stored(http, "bp.burst") == 0
        held.unlink()
        out, err = proc.communicate(timeout=90)
        assert proc.returncode == 0, err
        result = json.loads(out.strip().splitlines()[-1])
        reports = http.post("/events/filter", json={"event_names": [DROPPED_EVENT]}).json()
        stored = _stored(http, "bp.burst")
    assert result == {"flushed": True, "acknowledged": 3000, "emit_s": result["emit_s"]}
    assert result["emit_s"] >= 2.0  # it waited for room: backpressure, not loss
    assert stored == 3000
    assert reports["total"] == 0
    assert "dropped" not in err
