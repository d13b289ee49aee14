"""The events websockets against a real server: /events/in acks after commit (bad events refused,
the rest stored), /events/out backfill + live with no gap and no duplicate at the seam while events
keep arriving, drop notices when a subscriber's queue overflows, a refused first frame."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

from tideflow.client._events import ws_url
from tideflow.testing import ServerProcess


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    with ServerProcess() as s:
        yield s


def _event(seq: int, name: str = "seam.tick", resource: str = "seam.r") -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "occurred": dt.datetime.now(dt.UTC).isoformat(),
        "event": name,
        "resource": {"tideflow.resource.id": resource},
        "payload": {"seq": seq},
    }


def test_events_in_acks_after_commit(server: ServerProcess) -> None:
    good = [_event(i, "in.test") for i in range(3)]
    bad = dict(_event(9, "in.test"), event="two words")
    with (
        connect(ws_url(server.api_url, "/events/in")) as ws,
        httpx.Client(base_url=server.api_url) as http,
    ):
        ws.send(json.dumps([good[0], bad, good[1]]))
        answer = json.loads(ws.recv(timeout=10))
        assert answer["ack"] == [good[0]["id"], good[1]["id"]]
        assert answer["refused"] == [
            {
                "index": 1,
                "id": bad["id"],
                "reason": "event: event name 'two words' contains whitespace",
            }
        ]
        # Acknowledged means committed: readable right away.
        assert http.get(f"/events/{good[1]['id']}").status_code == 200
        assert http.get(f"/events/{bad['id']}").status_code == 404
        ws.send(json.dumps(good[2]))  # a single event, not a list
        assert json.loads(ws.recv(timeout=10)) == {"ack": [good[2]["id"]], "refused": []}
        ws.send(json.dumps([good[0]]))  # a resend: acknowledged, stored once
        assert json.loads(ws.recv(timeout=10))["ack"] == [good[0]["id"]]
        ws.send("{not json")
        answer = json.loads(ws.recv(timeout=10))
        assert answer["ack"] == [] and answer["refused"][0]["reason"].startswith(
            "frame is not JSON"
        )
        page = http.post("/events/filter", json={"event_names": ["in.test"]}).json()
        assert page["total"] == 3


def test_pipelined_frames_are_acked_in_order_each_after_its_commit(server: ServerProcess) -> None:
    # Frames sent without waiting are stored together (one transaction for what was read ahead);
    # each still gets its own answer, in frame order: bad events and bad frames refused on their
    # own, duplicates across frames stored once, and every acknowledged event readable.
    name = f"pipe.{uuid.uuid4().hex[:8]}"
    frames = [[_event(f * 100 + i, name) for i in range(50)] for f in range(6)]
    bad = dict(_event(999, name), resource={"no": "id"})
    frames[2].insert(7, bad)
    frames[4] += frames[1][:5]  # resent: acknowledged again, stored once
    with (
        connect(ws_url(server.api_url, "/events/in")) as ws,
        httpx.Client(base_url=server.api_url) as http,
    ):
        for i, frame in enumerate(frames):
            ws.send(json.dumps(frame))
            if i == 3:
                ws.send("[{not json")
        answers = [json.loads(ws.recv(timeout=20)) for _ in range(len(frames) + 1)]
        not_json = answers.pop(4)
        assert not_json["ack"] == [] and not_json["refused"][0]["reason"].startswith(
            "frame is not JSON"
        )
        for frame, answer in zip(frames, answers, strict=True):
            assert answer["ack"] == [e["id"] for e in frame if e is not bad]
        assert answers[2]["refused"] == [
            {"index": 7, "id": bad["id"], "reason": "resource: resource has no "
             "'tideflow.resource.id' label"}
        ]  # fmt: skip
        assert all(a["refused"] == [] for i, a in enumerate(answers) if i != 2)
        page = http.post("/events/filter", json={"event_names": [name], "limit": 1}).json()
        assert page["total"] == 300


def test_backfill_live_seam_has_no_gap_and_no_duplicate(server: ServerProcess) -> None:
    stop = threading.Event()
    sent: list[int] = []
    resource = f"seam.{uuid.uuid4()}"

    def produce() -> None:
        with httpx.Client(base_url=server.api_url) as http:
            seq = 0
            while not stop.is_set():
                batch = [_event(seq + k, resource=resource) for k in range(3)]
                assert len(http.post("/events", json=batch).json()["accepted"]) == 3
                sent.extend(range(seq, seq + 3))
                seq += 3

    producer = threading.Thread(target=produce)
    producer.start()
    received: list[int] = []
    try:
        while len(sent) < 60:  # some history before the subscriber arrives
            threading.Event().wait(0.02)
        with connect(ws_url(server.api_url, "/events/out")) as ws:
            ws.send(json.dumps({"filter": {"resource_ids": [resource]}, "backfill_minutes": 10}))
            target = len(sent) + 60
            while len(received) < target:  # well past the seam, still producing
                frame = json.loads(ws.recv(timeout=10))
                assert frame["type"] == "event"
                received.append(frame["event"]["payload"]["seq"])
            stop.set()
            producer.join()
            last = sent[-1]
            while received[-1] != last:
                received.append(json.loads(ws.recv(timeout=10))["event"]["payload"]["seq"])
    finally:
        stop.set()
        producer.join()
    assert received == list(range(last + 1))


def test_overflowing_subscriber_is_told_how_many_were_dropped(server: ServerProcess) -> None:
    resource = f"drop.{uuid.uuid4()}"
    started = dt.datetime.now(dt.UTC).isoformat()
    with (
        connect(ws_url(server.api_url, "/events/out")) as ws,
        httpx.Client(base_url=server.api_url) as http,
    ):
        ws.send(json.dumps({"filter": {"resource_ids": [resource]}, "queue_size": 5}))
        # Wait until the subscription exists: a first event comes through.
        while True:
            http.post("/events", json=[_event(-1, resource=resource)])
            try:
                frame = json.loads(ws.recv(timeout=0.5))
                break
            except TimeoutError:
                continue
        assert frame["type"] == "event"
        # One transaction of 200 events is published at once: the 5-slot queue overflows.
        http.post("/events", json=[_event(i, resource=resource) for i in range(200)])
        events, dropped = 0, 0
        while events + dropped < 200:
            frame = json.loads(ws.recv(timeout=10))
            if frame["type"] == "dropped":
                dropped += frame["count"]
            elif frame["event"]["payload"]["seq"] >= 0:
                events += 1
        assert dropped > 0 and events + dropped == 200

    # The server reports what it shed, too: stored tideflow.events.dropped events whose counts
    # add up to what the client was told (the last one when the stream ended).
    def reported() -> int | None:
        body = {"event_names": ["tideflow.events.dropped"], "occurred_after": started}
        with httpx.Client(base_url=server.api_url) as http:
            page = http.post("/events/filter", json=body).json()
        streams = [
            e for e in page["events"]
            if e["resource"]["tideflow.resource.id"].startswith("tideflow.events-stream.")
        ]  # fmt: skip
        total = sum(e["payload"]["count"] for e in streams)
        return total if total == dropped else None

    deadline = time.monotonic() + 10
    while reported() is None:
        assert time.monotonic() < deadline, f"stored reports never added up to {dropped}"
        time.sleep(0.1)


def test_a_bad_first_frame_is_refused(server: ServerProcess) -> None:
    with connect(ws_url(server.api_url, "/events/out")) as ws:
        ws.send(json.dumps({"filter": {"limit": "many"}, "backfill_minutes": -1}))
        frame = json.loads(ws.recv(timeout=10))
        assert frame["type"] == "error" and "backfill_minutes" in frame["detail"]
