"""Logs: batches (unknown runs dropped and counted) and filters by run, level and time."""

from __future__ import annotations

import datetime as dt
import uuid

import httpx
import pytest

from tideflow.client import AsyncClient
from tideflow.schemas import FlowRunCreate, LogCreate, LogFilter

pytestmark = pytest.mark.anyio

T0 = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)


def _log(run_id: uuid.UUID, i: int, level: int = 20) -> dict[str, object]:
    return LogCreate(flow_run_id=run_id, name="tideflow.flow_runs", level=level, message=f"m{i}",
                     timestamp=T0 + dt.timedelta(seconds=i)).model_dump(mode="json")  # fmt: skip


async def test_batch_counts_accepted_and_dropped(
    client: AsyncClient, http: httpx.AsyncClient
) -> None:
    run = await client.create_flow_run(FlowRunCreate(flow_name="f"))
    ghost = uuid.uuid4()
    response = await http.post("/logs/", json=[_log(run.id, 0), _log(ghost, 1), _log(run.id, 2)])
    assert response.status_code == 201
    assert response.json() == {"accepted": 2, "dropped": 1}
    assert (await http.post("/logs/", json=[])).json() == {"accepted": 0, "dropped": 0}
    logs = await client.read_logs(LogFilter())
    assert [(log.message, log.flow_run_id) for log in logs] == [("m0", run.id), ("m2", run.id)]
    assert all(isinstance(log.id, int) for log in logs)
    assert logs[0].timestamp == T0


async def test_filter_by_run_level_time_and_order(client: AsyncClient) -> None:
    r1 = await client.create_flow_run(FlowRunCreate(flow_name="f"))
    r2 = await client.create_flow_run(FlowRunCreate(flow_name="f"))
    records = [LogCreate.model_validate(_log(r1.id, i, level=10 * (i % 5 + 1))) for i in range(10)]
    records += [LogCreate.model_validate(_log(r2.id, i)) for i in range(10, 13)]
    await client.create_logs(records)
    by_run = await client.read_logs(LogFilter(flow_run_id=[r2.id]))
    assert [log.message for log in by_run] == ["m10", "m11", "m12"]
    errors = await client.read_logs(LogFilter(flow_run_id=[r1.id], level_ge=40))
    assert [log.message for log in errors] == ["m3", "m4", "m8", "m9"]
    window = await client.read_logs(
        LogFilter(
            timestamp_after=T0 + dt.timedelta(seconds=2),
            timestamp_before=T0 + dt.timedelta(seconds=4),
        )
    )
    assert [log.message for log in window] == ["m2", "m3", "m4"]
    newest = await client.read_logs(LogFilter(sort_desc=True, limit=2))
    assert [log.message for log in newest] == ["m12", "m11"]
    page = await client.read_logs(LogFilter(limit=3, offset=3))
    assert [log.message for log in page] == ["m3", "m4", "m5"]


async def test_same_timestamp_keeps_insertion_order(client: AsyncClient) -> None:
    run = await client.create_flow_run(FlowRunCreate(flow_name="f"))
    await client.create_logs(
        [
            LogCreate(flow_run_id=run.id, name="n", level=20, message=str(i), timestamp=T0)
            for i in range(20)
        ]
    )
    assert [log.message for log in await client.read_logs(LogFilter())] == [
        str(i) for i in range(20)
    ]


async def test_malformed_batch_is_422(http: httpx.AsyncClient) -> None:
    response = await http.post("/logs/", json=[{"flow_run_id": "x", "level": 500}])
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert (
        "body.0.flow_run_id:" in detail
        and "body.0.level:" in detail
        and "body.0.message: Field required" in detail
    )
    response = await http.post("/logs/filter", json={"level_ge": -1})
    assert response.status_code == 422


async def test_a_background_task_runs_records_need_the_task_run(
    client: AsyncClient, http: httpx.AsyncClient
) -> None:
    from tideflow.schemas.task_workers import TaskRunCreate

    run = await client.create_task_run(TaskRunCreate(id=uuid.uuid4(), name="bg", task_name="bg"))

    def record(task_run_id: uuid.UUID | None, message: str) -> dict[str, object]:
        body: dict[str, object] = {"name": "tideflow.flow_runs", "level": 20, "message": message,
                                   "timestamp": T0.isoformat()}  # fmt: skip
        if task_run_id is not None:
            body["task_run_id"] = str(task_run_id)
        return body

    answer = await http.post("/logs/", json=[record(run.id, "mine"), record(uuid.uuid4(), "ghost")])
    assert answer.json() == {"accepted": 1, "dropped": 1}
    logs = await client.read_logs(LogFilter(task_run_id=[run.id]))
    assert [(log.message, log.flow_run_id) for log in logs] == [("mine", None)]
    orphan = await http.post("/logs/", json=[record(None, "whose?")])
    assert orphan.status_code == 422
    assert "flow_run_id or task_run_id" in orphan.json()["detail"]
