"""Flow runs: create (initial state, generated name, idempotency), read, history, delete."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import uuid

import httpx
import pytest

from tideflow.client import AsyncClient
from tideflow.exceptions import ObjectNotFound
from tideflow.schemas import Creator, FlowRunCreate, LogCreate, LogFilter, StateType
from tideflow.schemas.states import Completed, Running, Scheduled

pytestmark = pytest.mark.anyio


async def test_create_by_flow_name_creates_the_flow(client: AsyncClient) -> None:
    run = await client.create_flow_run(
        FlowRunCreate(
            flow_name="nightly",
            parameters={"x": 1, "nested": {"y": [1, 2]}},
            tags=["a", "b"],
            created_by=Creator(type="user", id="tideflow.user.alice", name="alice"),
        )
    )
    flow = await client.read_flow_by_name("nightly")
    assert run.flow_id == flow.id and run.flow_name == "nightly"
    assert re.fullmatch(r"[a-z]+-[a-z]+", run.name)
    assert run.parameters == {"x": 1, "nested": {"y": [1, 2]}}
    assert run.tags == ["a", "b"]
    assert run.created_by == Creator(type="user", id="tideflow.user.alice", name="alice")
    assert run.state is not None and run.state.type is StateType.PENDING
    assert run.state_type is StateType.PENDING and run.state_name == "Pending"
    assert run.expected_start_time == run.state.timestamp
    assert run.run_count == 0 and run.start_time is None
    assert await client.read_flow_run(run.id) == run
    history = await client.read_flow_run_states(run.id)
    assert [s.id for s in history] == [run.state.id]


async def test_create_by_flow_id_and_given_name_and_scheduled_state(client: AsyncClient) -> None:
    flow = await client.create_flow("f")
    when = dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    parent = uuid.uuid4()
    run = await client.create_flow_run(
        FlowRunCreate(flow_id=flow.id, name="my-run", state=Scheduled(scheduled_time=when),
                      parent_flow_run_id=parent)
    )  # fmt: skip
    assert run.name == "my-run" and run.flow_name == "f"
    assert run.state_type is StateType.SCHEDULED
    assert run.expected_start_time == when
    assert run.parent_flow_run_id == parent


async def test_create_with_unknown_flow_id_is_404(http: httpx.AsyncClient) -> None:
    missing = uuid.uuid4()
    response = await http.post("/flow_runs/", json={"flow_id": str(missing)})
    assert response.status_code == 404
    assert response.json() == {"detail": f"flow {missing} not found"}


async def test_create_in_a_final_state_is_refused(http: httpx.AsyncClient) -> None:
    response = await http.post(
        "/flow_runs/", json={"flow_name": "f", "state": {"type": "COMPLETED"}}
    )
    assert response.status_code == 409
    assert "COMPLETED" in response.json()["detail"]
    assert (await http.post("/flow_runs/count", json={})).json() == 0


async def test_malformed_create_bodies_are_422(http: httpx.AsyncClient) -> None:
    response = await http.post("/flow_runs/", json={"flow_name": "f", "parameters": [1]})
    assert response.status_code == 422
    body = response.json()
    assert body["detail"] == "body.parameters: Input should be a valid dictionary"
    assert body["errors"][0]["loc"] == ["body", "parameters"]
    response = await http.post("/flow_runs/", json={})
    assert response.status_code == 422
    assert "flow_id or flow_name is required" in response.json()["detail"]
    response = await http.post(
        "/flow_runs/", json={"flow_name": "f", "tags": "x", "state": {"type": "NOPE"}}
    )
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert "body.tags:" in detail and "body.state.type:" in detail and "; " in detail


async def test_idempotency_key_returns_the_existing_run(http: httpx.AsyncClient) -> None:
    body = {"flow_name": "f", "idempotency_key": "firing-1"}
    first = await http.post("/flow_runs/", json=body)
    again = await http.post("/flow_runs/", json=body)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    other_flow = await http.post(
        "/flow_runs/", json={"flow_name": "g", "idempotency_key": "firing-1"}
    )
    assert other_flow.status_code == 201 and other_flow.json()["id"] != first.json()["id"]


async def test_concurrent_creates_with_one_key_make_one_run(http: httpx.AsyncClient) -> None:
    body = {"flow_name": "f", "idempotency_key": "k"}
    responses = await asyncio.gather(*(http.post("/flow_runs/", json=body) for _ in range(12)))
    assert sorted(r.status_code for r in responses) == [200] * 11 + [201]
    assert len({r.json()["id"] for r in responses}) == 1
    assert (await http.post("/flow_runs/count", json={})).json() == 1


async def test_many_concurrent_writes_never_fail(http: httpx.AsyncClient) -> None:
    responses = await asyncio.gather(
        *(http.post("/flow_runs/", json={"flow_name": f"flow-{i % 3}"}) for i in range(40))
    )
    assert all(r.status_code == 201 for r in responses), [
        r.text for r in responses if r.status_code != 201
    ]
    assert (await http.post("/flow_runs/count", json={})).json() == 40
    assert len((await http.post("/flows/filter", json={})).json()) == 3


async def test_missing_run_is_404_everywhere(client: AsyncClient, http: httpx.AsyncClient) -> None:
    missing = uuid.uuid4()
    detail = {"detail": f"flow run {missing} not found"}
    for method, path, body in (
        ("GET", f"/flow_runs/{missing}", None),
        ("GET", f"/flow_runs/{missing}/states", None),
        ("POST", f"/flow_runs/{missing}/set_state", {"state": {"type": "RUNNING"}}),
        ("DELETE", f"/flow_runs/{missing}", None),
    ):
        response = await http.request(method, path, json=body)
        assert (response.status_code, response.json()) == (404, detail), (method, path)
    with pytest.raises(ObjectNotFound):
        await client.read_flow_run(missing)


async def test_bad_uuid_in_path_is_422(http: httpx.AsyncClient) -> None:
    for method, path in (("GET", "/flow_runs/abc"), ("GET", "/flow_runs/abc/states"),
                         ("DELETE", "/flow_runs/abc"), ("POST", "/flow_runs/abc/set_state")):  # fmt: skip
        response = await http.request(method, path, json={"state": {"type": "RUNNING"}})
        assert response.status_code == 422, (method, path)
        assert response.json()["detail"].startswith("path.run_id: Input should be a valid UUID")


async def test_delete_cascades_states_and_logs(
    client: AsyncClient, http: httpx.AsyncClient
) -> None:
    run = await client.create_flow_run(FlowRunCreate(flow_name="f"))
    keep = await client.create_flow_run(FlowRunCreate(flow_name="f"))
    await client.set_flow_run_state(run.id, Running())
    await client.set_flow_run_state(run.id, Completed())
    now = dt.datetime.now(dt.UTC)
    await client.create_logs(
        [
            LogCreate(flow_run_id=r.id, name="x", level=20, message="m", timestamp=now)
            for r in (run, keep)
        ]
    )
    response = await http.delete(f"/flow_runs/{run.id}")
    assert response.status_code == 204 and response.content == b""
    with pytest.raises(ObjectNotFound):
        await client.read_flow_run(run.id)
    logs = await client.read_logs(LogFilter())
    assert [log.flow_run_id for log in logs] == [keep.id]
    # The state rows went too: a new run never sees them, and the kept run's history is intact.
    assert len(await client.read_flow_run_states(keep.id)) == 1
    with pytest.raises(ObjectNotFound):
        await client.read_flow_run_states(run.id)


async def test_set_state_on_deleted_run_is_404_not_409(client: AsyncClient) -> None:
    run = await client.create_flow_run(FlowRunCreate(flow_name="f"))
    await client.delete_flow_run(run.id)
    with pytest.raises(ObjectNotFound):
        await client.set_flow_run_state(run.id, Running())


async def test_filter_and_count_without_a_body_use_defaults(http: httpx.AsyncClient) -> None:
    await http.post("/flow_runs/", json={"flow_name": "f"})
    assert len((await http.post("/flow_runs/filter")).json()) == 1
    assert (await http.post("/flow_runs/count")).json() == 1
    assert [f["name"] for f in (await http.post("/flows/filter")).json()] == ["f"]
