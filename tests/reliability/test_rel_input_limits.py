"""Sizes and numbers at the doors, against a real server: a 50 MB body and 1 MB ids, tags and
descriptions were stored; ``offset`` >= 2**63 on the filters and the UI's ``?page=`` were
OverflowError 500s; ``created_by {"id": ""}`` crashed building the run's state event. Now each is a
4xx naming the field or limit, and what was stored before stays readable."""

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
from tideflow.testing import ServerProcess

LIMIT = 1_000_000  # the request limit of the small server below
JSON = {"Content-Type": "application/json"}
MB = "x" * 1_000_000


@pytest.fixture(scope="module")
def srv() -> Iterator[ServerProcess]:
    with ServerProcess() as s:
        yield s


@pytest.fixture(scope="module")
def small() -> Iterator[ServerProcess]:
    with ServerProcess(env={"TIDEFLOW_SERVER_MAX_REQUEST_BYTES": str(LIMIT)}) as s:
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


def test_a_50_mb_body_is_a_413_naming_the_limit(srv: ServerProcess) -> None:
    kept = httpx.post(f"{srv.api_url}/events", json=[_event("lim.kept")], timeout=10)
    assert kept.json()["refused"] == []
    body = json.dumps([_event("lim.big", payload={"blob": "y" * 50_000_000})]).encode()
    answer = httpx.post(f"{srv.api_url}/events", content=body, headers=JSON, timeout=60)
    assert answer.status_code == 413
    assert answer.json() == {
        "detail": "request body is larger than the limit of 16777216 bytes "
        "(TIDEFLOW_SERVER_MAX_REQUEST_BYTES)"
    }
    # Streamed without a Content-Length: refused once the bytes pass the limit.
    chunks = (b"x" * 1_000_000 for _ in range(20))
    answer = httpx.post(f"{srv.api_url}/events", content=chunks, headers=JSON, timeout=60)
    assert answer.status_code == 413
    names = httpx.post(f"{srv.api_url}/events/count-by/event", json={}, timeout=10).json()
    assert {row["value"] for row in names} == {"lim.kept"}
    assert httpx.get(f"{srv.api_url}/health", timeout=5).status_code == 200


def test_the_request_limit_is_a_setting_and_covers_websocket_frames(small: ServerProcess) -> None:
    fits = [_event("lim.fits", payload={"blob": "z" * 100_000})]
    assert httpx.post(f"{small.api_url}/events", json=fits, timeout=10).json()["refused"] == []
    over = httpx.post(
        f"{small.api_url}/flows/", json={"name": "f", "tags": ["t" * 200] * 6000}, timeout=10
    )
    assert over.status_code == 413 and f"limit of {LIMIT} bytes" in over.json()["detail"]
    with connect(ws_url(small.api_url, "/events/in"), open_timeout=10, max_size=None) as ws:
        frame = [_event("lim.frame", payload={"blob": "w" * 300_000}) for _ in range(4)]
        ws.send(json.dumps(frame))
        answer = json.loads(ws.recv(timeout=30))
        assert answer["ack"] == []
        assert [r["id"] for r in answer["refused"]] == [e["id"] for e in frame]
        assert (
            f"above the limit of {LIMIT} bytes; send fewer events per frame"
            in (answer["refused"][0]["reason"])
        )
        small_one = _event("lim.after")
        ws.send(json.dumps(small_one))
        assert json.loads(ws.recv(timeout=10)) == {"ack": [small_one["id"]], "refused": []}


def test_one_megabyte_ids_tags_and_descriptions_are_refused(srv: ServerProcess) -> None:
    answer = httpx.post(
        f"{srv.api_url}/events",
        json=[_event("lim.id", resource={"tideflow.resource.id": MB}), _event("lim.id.ok")],
        timeout=10,
    ).json()
    assert len(answer["accepted"]) == 1
    assert answer["refused"][0]["reason"] == (
        "resource: label 'tideflow.resource.id' is 1000000 characters, above the limit of 1024"
    )
    long_name = _event("lim.n" + "e" * 1100)
    answer = httpx.post(f"{srv.api_url}/events", json=[long_name], timeout=10).json()
    assert "above the limit of 1024" in answer["refused"][0]["reason"]

    tag = httpx.post(f"{srv.api_url}/flow_runs/", json={"flow_name": "lim", "tags": [MB]})
    assert tag.status_code == 422
    assert tag.json()["detail"] == "body.tags.0: String should have at most 200 characters"
    many = httpx.post(f"{srv.api_url}/flows/", json={"name": "lim", "tags": ["t"] * 101})
    assert many.status_code == 422 and many.json()["detail"].startswith("body.tags: List should")
    flow = httpx.post(f"{srv.api_url}/flows/", json={"name": "x" * 201})
    assert flow.status_code == 422 and flow.json()["detail"].startswith("body.name: String")

    made = httpx.post(f"{srv.api_url}/deployments/", json={"flow_name": "lim", "name": "d"})
    assert made.status_code == 201
    too_long = {"flow_name": "lim", "name": "d", "description": MB}
    answer = httpx.post(f"{srv.api_url}/deployments/", json=too_long)
    assert answer.status_code == 422
    assert answer.json()["detail"] == (
        "body.description: String should have at most 100000 characters"
    )
    patch = httpx.patch(f"{srv.api_url}/deployments/{made.json()['id']}", json={"tags": [MB]})
    assert patch.status_code == 422
    stored = httpx.get(f"{srv.api_url}/deployments/{made.json()['id']}").json()
    assert stored["description"] is None and stored["tags"] == []


HUGE = 2**63


@pytest.mark.parametrize(
    "path",
    [
        "/flows/filter",
        "/flow_runs/filter",
        "/flow_runs/count",
        "/deployments/filter",
        "/automations/filter",
        "/task_runs/filter",
        "/task_runs/count",
    ],
)
def test_a_huge_offset_is_a_422_naming_it(srv: ServerProcess, path: str) -> None:
    answer = httpx.post(f"{srv.api_url}{path}", json={"offset": HUGE}, timeout=10)
    assert answer.status_code == 422
    assert answer.json()["detail"] == (
        "body.offset: Input should be less than or equal to 1000000000"
    )
    assert httpx.post(f"{srv.api_url}{path}", json={"offset": 10**9}).status_code == 200


def test_a_huge_log_level_and_runner_limit_are_refused(srv: ServerProcess) -> None:
    answer = httpx.post(f"{srv.api_url}/logs/filter", json={"level_ge": HUGE}, timeout=10)
    assert answer.status_code == 422 and answer.json()["detail"].startswith("body.level_ge")
    hello = {"type": "hello", "runner_id": str(uuid.uuid4()), "name": "r", "deployment_ids": []}
    with connect(ws_url(srv.api_url, "/runners/ws"), open_timeout=10) as ws:
        ws.send(json.dumps({**hello, "limit": HUGE}))
        error = json.loads(ws.recv(timeout=10))
    assert error["type"] == "error" and error["detail"].startswith("invalid hello: limit")


def test_a_huge_ui_page_is_a_422_naming_it(srv: ServerProcess) -> None:
    base = srv.api_url.removesuffix("/api")
    for url in (f"{base}/runs?page={HUGE}", f"{base}/runs/table?page={HUGE}"):
        answer = httpx.get(url, timeout=10)
        assert answer.status_code == 422, url
        assert answer.json()["detail"] == "query.page: must be at most 40000001"
    assert httpx.get(f"{base}/runs?page=2", timeout=10).status_code == 200


def test_an_empty_creator_id_is_a_422_and_the_server_goes_on(srv: ServerProcess) -> None:
    body = {"flow_name": "lim-creator", "created_by": {"type": "user", "id": ""}}
    answer = httpx.post(f"{srv.api_url}/flow_runs/", json=body, timeout=10)
    assert answer.status_code == 422
    assert answer.json()["detail"] == (
        "body.created_by: Value error, id must not be empty: it names the creator as a resource"
    )
    made = httpx.post(f"{srv.api_url}/deployments/", json={"flow_name": "lim-c", "name": "d"})
    run = httpx.post(
        f"{srv.api_url}/deployments/{made.json()['id']}/create_flow_run",
        json={"created_by": {"type": "user", "id": " "}},
    )
    assert run.status_code == 422 and "id must not be empty" in run.json()["detail"]
    fine = {**body, "created_by": {"type": "user", "id": "tideflow.user.alice"}}
    created = httpx.post(f"{srv.api_url}/flow_runs/", json=fine, timeout=10)
    assert created.status_code == 201
    states = httpx.get(f"{srv.api_url}/flow_runs/{created.json()['id']}/states", timeout=10)
    assert [s["type"] for s in states.json()] == ["PENDING"]


def test_every_list_route_pages_and_bounds_its_page(srv: ServerProcess) -> None:
    """State history, tag limits, schedules and API keys answer one bounded page at a time."""
    api = srv.api_url
    run = httpx.post(f"{api}/flow_runs/", json={"flow_name": "lim-pages"}, timeout=10).json()
    for state in ("PENDING", "RUNNING", "COMPLETED"):
        proposal = {"state": {"type": state}}
        answer = httpx.post(f"{api}/flow_runs/{run['id']}/set_state", json=proposal, timeout=10)
        assert answer.status_code == 200, answer.text
    states = f"{api}/flow_runs/{run['id']}/states"
    everything = [s["type"] for s in httpx.get(states, timeout=10).json()]
    assert everything == ["PENDING", "RUNNING", "COMPLETED"]
    page = httpx.get(states, params={"limit": 1, "offset": 1}, timeout=10).json()
    assert [s["type"] for s in page] == ["RUNNING"]
    too_big = httpx.get(states, params={"limit": 10_001}, timeout=10)
    assert too_big.status_code == 422
    assert too_big.json()["detail"].startswith("query.limit")

    for tag in ("lim-a", "lim-b", "lim-c"):
        made = httpx.post(f"{api}/concurrency_limits/", json={"tag": tag, "concurrency_limit": 1})
        assert made.status_code in (200, 201), made.text
    tags = httpx.post(f"{api}/concurrency_limits/filter", json={"limit": 2}, timeout=10).json()
    assert [t["tag"] for t in tags] == ["lim-a", "lim-b"]
    rest = httpx.post(f"{api}/concurrency_limits/filter", json={"offset": 2}, timeout=10).json()
    assert [t["tag"] for t in rest] == ["lim-c"]
    assert httpx.post(f"{api}/concurrency_limits/filter", json={}, timeout=10).status_code == 200
    bad = httpx.post(f"{api}/concurrency_limits/filter", json={"limit": 5000}, timeout=10)
    assert bad.status_code == 422 and bad.json()["detail"].startswith("body.limit")

    schedules = [{"schedule": {"interval": 3600 * (i + 1)}, "active": False} for i in range(3)]
    body = {"flow_name": "lim-pages-flow", "name": "paged", "schedules": schedules}
    deployment = httpx.post(f"{api}/deployments/", json=body, timeout=10)
    assert deployment.status_code in (200, 201), deployment.text
    url = f"{api}/deployments/{deployment.json()['id']}/schedules"
    page = httpx.get(url, params={"limit": 2, "offset": 1}, timeout=10).json()
    assert [s["schedule"]["interval"] for s in page] == ["PT2H", "PT3H"]
    assert httpx.get(url, params={"offset": HUGE}, timeout=10).status_code == 422

    for name in ("k1", "k2", "k3"):
        made = httpx.post(f"{api}/api-keys/", json={"name": name, "scopes": ["read"]}, timeout=10)
        assert made.status_code == 201, made.text
    keys = httpx.get(f"{api}/api-keys/", params={"limit": 2}, timeout=10).json()
    assert len(keys) == 2
    later = httpx.get(f"{api}/api-keys/", params={"offset": 2, "limit": 1000}, timeout=10).json()
    assert {k["name"] for k in keys} | {k["name"] for k in later} >= {"k1", "k2", "k3"}
    assert httpx.get(f"{api}/api-keys/", params={"limit": 0}, timeout=10).status_code == 422

    for name in ("ua", "ub", "uc"):
        body = {"name": f"lim-{name}", "password": "a long enough password 1", "scopes": ["read"]}
        assert httpx.post(f"{api}/users/", json=body, timeout=30).status_code == 201
    users = httpx.get(f"{api}/users/", params={"limit": 2, "offset": 1}, timeout=10).json()
    assert [u["name"] for u in users] == ["lim-ub", "lim-uc"]
    assert httpx.get(f"{api}/users/", params={"limit": 1001}, timeout=10).status_code == 422
