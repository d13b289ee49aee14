"""The request limits of the security issue, each against a real server and each refused naming the
limit: one event above 1.5 MB (before, only the 16 MiB body limit bounded an event: 100 related
resources of 500 labels each made a 60 MB event possible in a larger body limit and a 15 MB one in
the default), more than 500 labels on a resource, more than 100 related resources, and a page size
above the maximum of every list route. What fits is still accepted."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

from tideflow.client._events import ws_url
from tideflow.schemas.limits import MAX_EVENT_BYTES
from tideflow.testing import ServerProcess

EVENT_LIMIT = "above the limit of 1500000 bytes (1.5 MB) for one event"


@pytest.fixture(scope="module")
def srv() -> Iterator[ServerProcess]:
    with ServerProcess() as s:
        yield s


def _event(name: str, **extra: Any) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "occurred": dt.datetime.now(dt.UTC).isoformat(),
        "event": name,
        "resource": {"tideflow.resource.id": "lim.r"},
        "payload": {},
        **extra,
    }


def _related(count: int, labels: int, width: int) -> list[dict[str, str]]:
    return [
        {"tideflow.resource.id": f"lim.rel.{i}", "tideflow.resource.role": "thing",
         **{f"l{j}": "v" * width for j in range(labels)}}
        for i in range(count)
    ]  # fmt: skip


def _size(event: dict[str, Any]) -> int:
    return len(json.dumps(event, separators=(",", ":")))


def test_one_event_above_1_5_mb_is_refused_naming_the_limit(srv: ServerProcess) -> None:
    # Payload under its own limit (1,000,000 bytes), each label under its own: only the whole is
    # too big.
    big = _event("lim.big", payload={"blob": "p" * 900_000}, related=_related(3, 250, 1000))
    fits = _event("lim.fits", payload={"blob": "p" * 900_000}, related=_related(1, 250, 1000))
    assert _size(big) > MAX_EVENT_BYTES > _size(fits)
    answer = httpx.post(f"{srv.api_url}/events", json=[big, fits], timeout=30)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["accepted"] == [fits["id"]]
    [refused] = body["refused"]
    assert refused["id"] == big["id"] and refused["index"] == 0
    assert refused["reason"].startswith("the event is "), refused
    assert EVENT_LIMIT in refused["reason"]
    print(f"\nrefused an event of {_size(big)} bytes: {refused['reason']}")

    # The websocket the SDK uses answers the same, per event, and the connection goes on.
    with connect(ws_url(srv.api_url, "/events/in"), open_timeout=10, max_size=None) as ws:
        again = {**big, "id": str(uuid.uuid4())}
        ws.send(json.dumps([again]))
        answer_ws = json.loads(ws.recv(timeout=30))
        assert answer_ws["ack"] == [] and EVENT_LIMIT in answer_ws["refused"][0]["reason"]
        small = _event("lim.after")
        ws.send(json.dumps(small))
        assert json.loads(ws.recv(timeout=10)) == {"ack": [small["id"]], "refused": []}

    names = httpx.post(f"{srv.api_url}/events/count-by/event", json={}, timeout=10).json()
    assert {row["value"] for row in names} >= {"lim.fits", "lim.after"}
    assert "lim.big" not in {row["value"] for row in names}


def test_the_sdk_refuses_a_too_big_event_before_buffering_it(
    srv: ServerProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tideflow.events import emit_event

    monkeypatch.setenv("TIDEFLOW_API_URL", srv.api_url)
    related = _related(3, 250, 1000)
    with pytest.raises(ValueError, match=r"above the limit of 1500000 bytes \(1\.5 MB\)"):
        emit_event("lim.sdk", {"tideflow.resource.id": "lim.r"}, related=related,
                   payload={"blob": "p" * 900_000})  # fmt: skip


def test_more_than_500_labels_or_100_related_is_refused_naming_the_limit(
    srv: ServerProcess,
) -> None:
    labels = {"tideflow.resource.id": "lim.r", **{f"l{i}": "v" for i in range(500)}}
    events = [
        _event("lim.labels", resource=labels),  # 501 labels
        _event("lim.related", related=_related(101, 0, 0)),
        _event("lim.labels.ok", resource={k: labels[k] for k in list(labels)[:500]}),
        _event("lim.related.ok", related=_related(100, 0, 0)),
    ]
    answer = httpx.post(f"{srv.api_url}/events", json=events, timeout=30).json()
    reasons = {r["index"]: r["reason"] for r in answer["refused"]}
    assert reasons == {
        0: "resource: resource has 501 labels, above the limit of 500",
        1: "related: List should have at most 100 items after validation, not 101",
    }
    assert answer["accepted"] == [events[2]["id"], events[3]["id"]]


# Every list route that pages, with the maximum of its page size.
PAGED = [
    ("POST", "/flows/filter", 1000),
    ("POST", "/flow_runs/filter", 1000),
    ("POST", "/task_runs/filter", 1000),
    ("POST", "/deployments/filter", 1000),
    ("POST", "/deployments/get_scheduled_flow_runs", 1000),
    ("POST", "/automations/filter", 1000),
    ("POST", "/logs/filter", 10000),
    ("POST", "/events/filter", 500),
    ("POST", "/events/count-by/event", 500),
    ("GET", "/automations/{id}/history", 500),
]


@pytest.mark.parametrize(("method", "path", "maximum"), PAGED, ids=[p[1] for p in PAGED])
def test_a_page_size_above_the_maximum_is_a_422_naming_it(
    srv: ServerProcess, method: str, path: str, maximum: int
) -> None:
    with httpx.Client(base_url=srv.api_url, timeout=10) as api:
        if "{id}" in path:
            made = api.post("/automations/", json={
                "name": "lim", "trigger": {"type": "event", "expect": ["x"]},
                "actions": [{"type": "do-nothing"}]})  # fmt: skip
            assert made.status_code == 201, made.text
            path = path.format(id=made.json()["id"])
            over = api.get(path, params={"limit": maximum + 1})
            fine = api.get(path, params={"limit": maximum})
            where = "query.limit"
        else:
            body: dict[str, Any] = {"limit": maximum + 1}
            if path.endswith("get_scheduled_flow_runs"):
                body["deployment_ids"] = [str(uuid.uuid4())]
            over = api.request(method, path, json=body)
            fine = api.request(method, path, json={**body, "limit": maximum})
            where = "body.limit"
    assert over.status_code == 422, over.text
    assert over.json()["detail"] == f"{where}: Input should be less than or equal to {maximum}"
    assert fine.status_code == 200, fine.text
