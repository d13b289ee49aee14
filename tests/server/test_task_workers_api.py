"""``POST /api/task_runs/`` (what ``Task.delay`` sends), in process on SQLite and PostgreSQL: 201 with
the run Scheduled, 200 with the same run for a resent id, 422 naming a bad field; the created run is
read and filtered like any task run."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tideflow.client import AsyncClient
from tideflow.schemas.task_runs import TaskRunFilter
from tideflow.schemas.task_workers import TaskRunCreate

pytestmark = pytest.mark.anyio


async def test_create_is_201_then_200_for_the_same_id(http: httpx.AsyncClient) -> None:
    body = {"id": str(uuid.uuid4()), "name": "add-1", "task_name": "add", "parameters": {"x": 1}}
    first = await http.post("/task_runs/", json=body)
    assert first.status_code == 201, first.text
    assert first.json()["state"]["name"] == "Scheduled"
    assert first.json()["flow_run_id"] is None
    again = await http.post("/task_runs/", json={**body, "parameters": {"x": 2}})
    assert again.status_code == 200
    assert again.json()["state"]["id"] == first.json()["state"]["id"]
    assert again.json()["parameters"] == {"x": 1}  # the stored run, not a second one


async def test_bad_creates_are_422_naming_the_field(http: httpx.AsyncClient) -> None:
    answer = await http.post("/task_runs/", json={"id": str(uuid.uuid4()), "name": "x"})
    assert answer.status_code == 422
    assert "task_name" in answer.json()["detail"]
    extra = {"id": str(uuid.uuid4()), "name": "x", "task_name": "x", "state": "Running"}
    answer = await http.post("/task_runs/", json=extra)
    assert answer.status_code == 422
    assert "state" in answer.json()["detail"]


async def test_the_client_creates_and_filters_background_runs(client: AsyncClient) -> None:
    body = TaskRunCreate(id=uuid.uuid4(), name="mul-1", task_name="mul", tags=["bg"])
    run = await client.create_task_run(body)
    assert run.id == body.id and run.tags == ["bg"]
    found = await client.read_task_runs(TaskRunFilter(task_name=["mul"], state_name=["Scheduled"]))
    assert [r.id for r in found] == [body.id]


async def test_cancel_is_the_run_after_404_unknown_409_final(http: httpx.AsyncClient) -> None:
    body = {"id": str(uuid.uuid4()), "name": "add-2", "task_name": "add", "parameters": {}}
    assert (await http.post("/task_runs/", json=body)).status_code == 201
    cancelled = await http.post(f"/task_runs/{body['id']}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["state"]["name"] == "Cancelled"
    again = await http.post(f"/task_runs/{body['id']}/cancel")
    assert again.status_code == 409
    assert "already Cancelled" in again.json()["detail"]
    missing = await http.post(f"/task_runs/{uuid.uuid4()}/cancel")
    assert missing.status_code == 404 and "not found" in missing.json()["detail"]
    bad = await http.post("/task_runs/not-a-uuid/cancel")
    assert bad.status_code == 422 and "task_run_id" in bad.json()["detail"]
