"""Task runs on the server (SQLite and PostgreSQL): batched reports upsert runs and apply states in
order, resent reports store nothing twice, illegal transitions and unknown flow runs are refused by
name, each accepted state writes its tideflow.task-run.<State> event; read, filter, count."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tideflow.client import AsyncClient
from tideflow.schemas import FlowRunCreate, State
from tideflow.schemas import states as S
from tideflow.schemas.events import EventFilter
from tideflow.schemas.task_runs import TaskRunFilter

pytestmark = pytest.mark.anyio


def _report(run_id: uuid.UUID, flow_run_id: Any, *states: State, **extra: Any) -> dict[str, Any]:
    return {
        "id": str(run_id),
        "flow_run_id": str(flow_run_id) if flow_run_id else None,
        "name": extra.pop("name", "fetch-0"),
        "task_name": extra.pop("task_name", "fetch"),
        "states": [s.model_dump(mode="json") for s in states],
        **extra,
    }


async def test_reports_upsert_runs_and_write_their_events(
    client: AsyncClient, http: httpx.AsyncClient
) -> None:
    flow_run = await client.create_flow_run(FlowRunCreate(flow_name="etl", tags=["nightly"]))
    run_id = uuid.uuid4()
    pending, running, completed = S.Pending(), S.Running(), S.Completed()
    first = await http.post(
        "/task_runs/report",
        json=[_report(run_id, flow_run.id, pending, running, tags=["io"], parameters={"x": 1})],
    )
    assert first.status_code == 200
    assert first.json() == {"accepted": 2, "duplicates": 0, "refused": []}
    # the same report again (a lost answer, resent) plus the next state
    second = await http.post(
        "/task_runs/report",
        json=[_report(run_id, flow_run.id, running, completed, run_count=1, tags=["io"])],
    )
    assert second.json() == {"accepted": 1, "duplicates": 1, "refused": []}
    stored = await client.read_task_run(run_id)
    assert stored.flow_run_id == flow_run.id and stored.state_name == "Completed"
    assert [s.name for s in stored.state_history] == ["Pending", "Running", "Completed"]
    assert stored.run_count == 1 and stored.tags == ["io"]
    page = await client.read_events(EventFilter(resource_ids=[f"tideflow.task-run.{run_id}"]))
    events = sorted(page.events, key=lambda e: e.occurred)
    assert [e.event for e in events] == [
        "tideflow.task-run.Pending",
        "tideflow.task-run.Running",
        "tideflow.task-run.Completed",
    ]
    completed_event = events[-1]
    assert completed_event.resource["tideflow.task-name"] == "fetch"
    assert completed_event.follows == events[1].id
    roles = {
        r["tideflow.resource.role"]: r["tideflow.resource.id"] for r in completed_event.related
    }
    assert roles["flow-run"] == f"tideflow.flow-run.{flow_run.id}"
    assert roles["flow"] == f"tideflow.flow.{flow_run.flow_id}"
    assert roles["tag"] == "tideflow.tag.io"


async def test_illegal_transitions_and_unknown_flow_runs_are_refused_by_name(
    client: AsyncClient, http: httpx.AsyncClient
) -> None:
    flow_run = await client.create_flow_run(FlowRunCreate(flow_name="etl"))
    done, ghost_run = uuid.uuid4(), uuid.uuid4()
    ghost_flow_run = uuid.uuid4()
    answer = await http.post(
        "/task_runs/report",
        json=[
            _report(done, flow_run.id, S.Running(), S.Completed(), S.Running()),
            _report(ghost_run, ghost_flow_run, S.Pending()),
        ],
    )
    body = answer.json()
    assert body["accepted"] == 2
    assert body["refused"][0]["id"] == str(done) and body["refused"][0]["state"] == "Running"
    assert "COMPLETED, a final state" in body["refused"][0]["reason"]
    assert body["refused"][1] == {
        "id": str(ghost_run),
        "reason": f"no flow run with id {ghost_flow_run}",
    }
    assert (await client.read_task_run(done)).state_name == "Completed"
    missing = await http.get(f"/task_runs/{ghost_run}")
    assert missing.status_code == 404
    assert missing.json()["detail"] == f"task run {ghost_run} not found"


async def test_bad_reports_are_422_naming_the_field(http: httpx.AsyncClient) -> None:
    no_states = _report(uuid.uuid4(), None)
    answer = await http.post("/task_runs/report", json=[no_states])
    assert answer.status_code == 422
    assert "states" in answer.json()["detail"]
    unknown_field = _report(uuid.uuid4(), None, S.Pending(), colour="red")
    answer = await http.post("/task_runs/report", json=[unknown_field])
    assert answer.status_code == 422 and "colour" in answer.json()["detail"]


async def test_filter_and_count(client: AsyncClient, http: httpx.AsyncClient) -> None:
    a = await client.create_flow_run(FlowRunCreate(flow_name="etl"))
    b = await client.create_flow_run(FlowRunCreate(flow_name="etl"))
    reports = [
        _report(uuid.uuid4(), a.id, S.Running(), S.Completed(), name="load-0", task_name="load"),
        _report(uuid.uuid4(), a.id, S.Running(), S.Failed("x"), name="load-1", task_name="load"),
        _report(uuid.uuid4(), b.id, S.Pending(), name="save-0", task_name="save", tags=["db"]),
    ]
    assert (await http.post("/task_runs/report", json=reports)).json()["accepted"] == 5
    of_a = await client.read_task_runs(TaskRunFilter(flow_run_id=[a.id], sort="CREATED_ASC"))
    assert sorted(r.name for r in of_a) == ["load-0", "load-1"]
    failed = await client.read_task_runs(TaskRunFilter(state_type=["FAILED"]))
    assert [r.name for r in failed] == ["load-1"]
    assert await client.count_task_runs(TaskRunFilter(task_name=["load"])) == 2
    assert await client.count_task_runs(TaskRunFilter(tags_all=["db"])) == 1
    assert await client.count_task_runs(TaskRunFilter(name_like="ave-")) == 1
    # deleting the flow run deletes its task runs
    await client.delete_flow_run(a.id)
    assert await client.count_task_runs(TaskRunFilter(task_name=["load"])) == 0


async def test_a_cache_hit_goes_from_pending_to_cached(
    client: AsyncClient, http: httpx.AsyncClient
) -> None:
    flow_run = await client.create_flow_run(FlowRunCreate(flow_name="etl"))
    run_id = uuid.uuid4()
    cached = S.Completed(name="Cached", message="Result from /tmp/x")
    answer = await http.post(
        "/task_runs/report", json=[_report(run_id, flow_run.id, S.Pending(), cached)]
    )
    assert answer.json() == {"accepted": 2, "duplicates": 0, "refused": []}
    assert (await client.read_task_run(run_id)).state_name == "Cached"
    # only a Cached completion may skip Running
    other = uuid.uuid4()
    answer = await http.post(
        "/task_runs/report", json=[_report(other, flow_run.id, S.Pending(), S.Completed())]
    )
    assert answer.json()["refused"][0]["state"] == "Completed"
