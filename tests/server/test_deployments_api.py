"""Deployments API on both databases: upsert keeps the id, reads, filter, update, delete,
pause/resume, runs from deployments (parameter validation, idempotency), schedules."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.anyio

SCHEMA = {
    "type": "object",
    "properties": {
        "source": {"type": "string", "default": "s3://raw"},
        "limit": {"type": "integer", "default": 100},
        "day": {"type": "string"},
    },
    "required": ["day"],
}


def body(**over: Any) -> dict[str, Any]:
    return {
        "flow_name": "etl",
        "name": "nightly",
        "parameters": {"limit": 10},
        "parameter_openapi_schema": SCHEMA,
        "tags": ["etl"],
        **over,
    }


async def _create(http: httpx.AsyncClient, **over: Any) -> dict[str, Any]:
    r = await http.post("/deployments/", json=body(**over))
    assert r.status_code in (200, 201), r.text
    return dict(r.json())


async def test_upsert_keeps_the_id_and_updates_changed_fields(http: httpx.AsyncClient) -> None:
    r = await http.post("/deployments/", json=body())
    assert r.status_code == 201
    first = r.json()
    assert first["flow_name"] == "etl" and first["status"] == "NOT_READY"
    r = await http.post("/deployments/", json=body(version="2", tags=["etl", "v2"]))
    assert r.status_code == 200
    second = r.json()
    assert second["id"] == first["id"] and second["version"] == "2"
    assert second["tags"] == ["etl", "v2"] and second["created"] == first["created"]
    by_name = (await http.get("/deployments/name/etl/nightly")).json()
    assert by_name == (await http.get(f"/deployments/{first['id']}")).json() == second
    missing = await http.get("/deployments/name/etl/nope")
    assert missing.status_code == 404 and "etl/nope" in missing.json()["detail"]
    assert (await http.get(f"/deployments/{uuid.uuid4()}")).status_code == 404


async def test_filter_update_delete(http: httpx.AsyncClient) -> None:
    a = await _create(http)
    b = await _create(http, name="hourly", tags=["other"])
    listed = (await http.post("/deployments/filter", json={})).json()
    assert [d["name"] for d in listed] == ["hourly", "nightly"]
    only = (await http.post("/deployments/filter", json={"tags_all": ["etl"]})).json()
    assert [d["id"] for d in only] == [a["id"]]
    r = await http.patch(
        f"/deployments/{b['id']}", json={"description": "d", "concurrency_limit": 2}
    )
    assert r.status_code == 200 and r.json()["description"] == "d"
    assert r.json()["concurrency_limit"] == 2
    bad = await http.patch(f"/deployments/{b['id']}", json={"parameters": {"limit": "x"}})
    assert bad.status_code == 422 and "limit" in bad.json()["detail"]
    run = (
        await http.post(
            f"/deployments/{a['id']}/create_flow_run", json={"parameters": {"day": "d"}}
        )
    ).json()
    assert (await http.delete(f"/deployments/{a['id']}")).status_code == 204
    assert (await http.get(f"/deployments/{a['id']}")).status_code == 404
    assert (await http.delete(f"/deployments/{a['id']}")).status_code == 404
    kept = (await http.get(f"/flow_runs/{run['id']}")).json()
    assert kept["deployment_id"] is None and kept["deployment_name"] is None


async def test_created_runs_answer_exactly_what_a_read_returns(http: httpx.AsyncClient) -> None:
    # Creation answers with the run as written (no read-back): it must equal a later read.
    d = await _create(http)
    by_deployment = await http.post(
        f"/deployments/{d['id']}/create_flow_run",
        json={"parameters": {"day": "tue"}, "idempotency_key": "k-1",
              "created_by": {"type": "user", "id": "tideflow.user.x", "name": "x"}},
    )  # fmt: skip
    by_flow = await http.post(
        "/flow_runs/",
        json={"flow_name": "etl", "parameters": {"a": 1}, "tags": ["t"],
              "state": {"type": "RUNNING", "name": "Running"}},
    )  # fmt: skip
    by_new_flow = await http.post("/flow_runs/", json={"flow_name": f"new-{uuid.uuid4().hex}"})
    for created in (by_deployment, by_flow, by_new_flow):
        assert created.status_code == 201, created.text
        run = created.json()
        assert (await http.get(f"/flow_runs/{run['id']}")).json() == run


async def test_create_flow_run_merges_and_schedules(http: httpx.AsyncClient) -> None:
    d = await _create(http)
    when = "2031-05-01T10:00:00Z"
    r = await http.post(
        f"/deployments/{d['id']}/create_flow_run",
        json={"parameters": {"day": "mon"}, "tags": ["x"], "scheduled_time": when},
    )
    assert r.status_code == 201
    run = r.json()
    assert run["parameters"] == {"limit": 10, "day": "mon"}
    assert run["tags"] == ["etl", "x"]
    assert run["deployment_id"] == d["id"] and run["deployment_name"] == "nightly"
    assert run["state_type"] == "SCHEDULED" and run["state_name"] == "Scheduled"
    assert dt.datetime.fromisoformat(run["expected_start_time"]) == dt.datetime(
        2031, 5, 1, 10, tzinfo=dt.UTC
    )
    now_run = (
        await http.post(
            f"/deployments/{d['id']}/create_flow_run", json={"parameters": {"day": "x"}}
        )
    ).json()
    scheduled = dt.datetime.fromisoformat(now_run["state"]["details"]["scheduled_time"])
    assert abs((scheduled - dt.datetime.now(dt.UTC)).total_seconds()) < 60


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"day": "d", "nope": 1}, "nope"),
        ({"day": "d", "limit": "many"}, "limit"),
        ({}, "day"),
    ],
)
async def test_run_parameters_are_validated(
    http: httpx.AsyncClient, params: dict[str, Any], named: str
) -> None:
    d = await _create(http)
    r = await http.post(f"/deployments/{d['id']}/create_flow_run", json={"parameters": params})
    assert r.status_code == 422
    assert named in r.json()["detail"], r.json()["detail"]
    assert (await http.post("/flow_runs/count", json={})).json() == 0


async def test_unenforced_schema_accepts_anything(http: httpx.AsyncClient) -> None:
    d = await _create(http, enforce_parameter_schema=False)
    r = await http.post(f"/deployments/{d['id']}/create_flow_run", json={"parameters": {"nope": 1}})
    assert r.status_code == 201 and r.json()["parameters"] == {"limit": 10, "nope": 1}


async def test_idempotency_key_gives_the_same_run(http: httpx.AsyncClient) -> None:
    d = await _create(http)
    payload = {"parameters": {"day": "d"}, "idempotency_key": "k1"}
    first = await http.post(f"/deployments/{d['id']}/create_flow_run", json=payload)
    again = await http.post(f"/deployments/{d['id']}/create_flow_run", json=payload)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    assert (await http.post("/flow_runs/count", json={})).json() == 1


async def test_unknown_deployment_run_is_404(http: httpx.AsyncClient) -> None:
    r = await http.post(f"/deployments/{uuid.uuid4()}/create_flow_run", json={})
    assert r.status_code == 404 and "deployment" in r.json()["detail"]


async def test_schedules_api(http: httpx.AsyncClient) -> None:
    d = await _create(http, schedules=[{"schedule": {"cron": "0 2 * * *"}}])
    assert [s["schedule"]["cron"] for s in d["schedules"]] == ["0 2 * * *"]
    r = await http.post(
        f"/deployments/{d['id']}/schedules", json=[{"schedule": {"interval": 60}, "active": False}]
    )
    assert r.status_code == 201
    added = r.json()[0]
    assert added["active"] is False
    listed = (await http.get(f"/deployments/{d['id']}/schedules")).json()
    assert [s["id"] for s in listed] == [d["schedules"][0]["id"], added["id"]]
    r = await http.patch(f"/deployments/{d['id']}/schedules/{added['id']}", json={"active": True})
    assert r.status_code == 200 and r.json()["active"] is True
    assert (await http.delete(f"/deployments/{d['id']}/schedules/{added['id']}")).status_code == 204
    assert (await http.delete(f"/deployments/{d['id']}/schedules/{added['id']}")).status_code == 404
    # re-registering the same schedules keeps their ids
    again = await _create(http, schedules=[{"schedule": {"cron": "0 2 * * *"}}])
    assert [s["id"] for s in again["schedules"]] == [d["schedules"][0]["id"]]


async def test_pause_and_resume(http: httpx.AsyncClient) -> None:
    d = await _create(http, schedules=[{"schedule": {"interval": 3600}}])
    paused = (await http.post(f"/deployments/{d['id']}/pause")).json()
    assert paused["paused"] is True and len(paused["schedules"]) == 1
    resumed = (await http.post(f"/deployments/{d['id']}/resume")).json()
    assert resumed["paused"] is False and resumed["schedules"] == d["schedules"]


async def test_poll_returns_due_runs_and_marks_ready(http: httpx.AsyncClient) -> None:
    d = await _create(http)
    due = (
        await http.post(
            f"/deployments/{d['id']}/create_flow_run", json={"parameters": {"day": "1"}}
        )
    ).json()
    await http.post(
        f"/deployments/{d['id']}/create_flow_run",
        json={"parameters": {"day": "2"}, "scheduled_time": "2099-01-01T00:00:00Z"},
    )
    retrying = (
        await http.post(
            f"/deployments/{d['id']}/create_flow_run", json={"parameters": {"day": "3"}}
        )
    ).json()
    awaiting = {"type": "SCHEDULED", "name": "AwaitingRetry"}
    r = await http.post(f"/flow_runs/{retrying['id']}/set_state", json={"state": awaiting})
    assert r.status_code == 200
    r = await http.post("/deployments/get_scheduled_flow_runs", json={"deployment_ids": [d["id"]]})
    # the run awaiting an in-place retry belongs to its process: never offered
    assert r.status_code == 200 and [run["id"] for run in r.json()] == [due["id"]]
    polled = (await http.get(f"/deployments/{d['id']}")).json()
    assert polled["status"] == "READY" and polled["last_polled"] is not None
