"""Flow run inputs and resume over the API (SQLite and PostgreSQL): keyed inputs in order, prefix and
exclude filters, acknowledgement, size limit; resume checks the input against the schema the pause
stored (422 naming the field, run still paused), pause vs suspend, expired pauses fail the run."""

from __future__ import annotations

import datetime as dt
import uuid

import httpx
import pytest

from tideflow.client import AsyncClient
from tideflow.schemas import FlowRunCreate, StateType
from tideflow.schemas.run_inputs import MAX_INPUT_VALUE_BYTES, FlowRunInputFilter, keyset_for
from tideflow.schemas.states import Paused, Running, utcnow
from tideflow.server.services.late_runs import LateRunsService
from tideflow.server.storage import Database
from tideflow.settings import get_settings
from tideflow.testing import in_process_client

pytestmark = pytest.mark.anyio

SCHEMA = {
    "title": "Approval",
    "type": "object",
    "properties": {
        "approved": {"type": "boolean", "description": "Go ahead?"},
        "reviewer": {"type": "string", "minLength": 1},
        "priority": {"enum": ["low", "high"], "default": "low"},
    },
    "required": ["approved", "reviewer"],
}


async def _running(client: AsyncClient) -> uuid.UUID:
    run = await client.create_flow_run(FlowRunCreate(flow_name="f", state=Running()))
    return run.id


async def _pause(
    client: AsyncClient, run_id: uuid.UUID, *, key: str = "pause-1", schema: bool = True,
    suspend: bool = False, timeout: float = 3600,
) -> None:  # fmt: skip
    keyset = keyset_for(key)
    if schema:
        await client.create_flow_run_input(run_id, keyset["schema"], SCHEMA)
    state = Paused(
        name="Suspended" if suspend else None,
        pause_timeout=utcnow() + dt.timedelta(seconds=timeout),
        pause_key=key,
        pause_reschedule=suspend,
        run_input_keyset=keyset,
    )
    await client.set_flow_run_state(run_id, state)


async def test_inputs_are_keyed_ordered_filtered_and_acknowledged(
    client: AsyncClient, http: httpx.AsyncClient
) -> None:
    run_id = await _running(client)
    for i in range(3):
        await client.create_flow_run_input(run_id, f"num-{i}", {"n": i}, sender="someone")
    await client.create_flow_run_input(run_id, "other-1", "x")
    again = await http.post(f"/flow_runs/{run_id}/input", json={"key": "num-0", "value": 1})
    assert again.status_code == 409 and "num-0" in again.json()["detail"]
    nums = await client.filter_flow_run_inputs(run_id, FlowRunInputFilter(prefix="num-"))
    assert [i.key for i in nums] == ["num-0", "num-1", "num-2"]
    assert [i.value for i in nums] == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert nums[0].sender == "someone"
    rest = FlowRunInputFilter(prefix="num-", exclude_keys=["num-1"])
    assert [i.key for i in await client.filter_flow_run_inputs(run_id, rest)] == ["num-0", "num-2"]
    acked = await client.ack_flow_run_input(run_id, "num-0")
    assert acked.acked is not None
    assert (await client.ack_flow_run_input(run_id, "num-0")).acked == acked.acked  # kept
    unacked = FlowRunInputFilter(prefix="num-", unacked_only=True)
    assert [i.key for i in await client.filter_flow_run_inputs(run_id, unacked)] == [
        "num-1", "num-2",
    ]  # fmt: skip
    like = FlowRunInputFilter(prefix="num_")  # "_" is a literal, not a LIKE wildcard
    assert await client.filter_flow_run_inputs(run_id, like) == []
    assert (await client.read_flow_run_input(run_id, "other-1")).value == "x"
    await client.delete_flow_run_input(run_id, "other-1")
    gone = await http.get(f"/flow_runs/{run_id}/input/other-1")
    assert gone.status_code == 404 and "other-1" in gone.json()["detail"]


async def test_bad_inputs_are_refused_with_the_reason(
    client: AsyncClient, http: httpx.AsyncClient
) -> None:
    run_id = await _running(client)
    big = "x" * MAX_INPUT_VALUE_BYTES
    too_big = await http.post(f"/flow_runs/{run_id}/input", json={"key": "k", "value": big})
    assert too_big.status_code == 422 and "above the limit" in too_big.json()["detail"]
    bad_key = await http.post(f"/flow_runs/{run_id}/input", json={"key": "a/b", "value": 1})
    assert bad_key.status_code == 422 and "key" in bad_key.json()["detail"]
    nul = await http.post(f"/flow_runs/{run_id}/input", json={"key": "k", "value": "a\x00"})
    assert nul.status_code == 422 and "NUL" in nul.json()["detail"]
    missing = await http.post(f"/flow_runs/{uuid.uuid4()}/input", json={"key": "k", "value": 1})
    assert missing.status_code == 404


async def test_resume_validates_the_input_before_the_run_moves(
    client: AsyncClient, http: httpx.AsyncClient
) -> None:
    run_id = await _running(client)
    await _pause(client, run_id)
    assert (await client.read_flow_run(run_id)).state_name == "Paused"
    bad = await http.post(
        f"/flow_runs/{run_id}/resume", json={"run_input": {"approved": "yes", "reviewer": "ada"}}
    )
    assert bad.status_code == 422, bad.text
    assert "run_input.approved" in bad.json()["detail"] and "boolean" in bad.json()["detail"]
    missing = await http.post(f"/flow_runs/{run_id}/resume", json={"run_input": {"approved": True}})
    assert missing.status_code == 422 and "'reviewer' is a required" in missing.json()["detail"]
    none = await http.post(f"/flow_runs/{run_id}/resume", json={})
    assert none.status_code == 422 and "waits for input" in none.json()["detail"]
    enum = {"approved": True, "reviewer": "ada", "priority": "urgent"}
    wrong = await http.post(f"/flow_runs/{run_id}/resume", json={"run_input": enum})
    assert wrong.status_code == 422 and "run_input.priority" in wrong.json()["detail"]
    run = await client.read_flow_run(run_id)
    assert run.state_type is StateType.PAUSED  # nothing moved
    good = {"approved": True, "reviewer": "ada"}
    resumed = await client.resume_flow_run(run_id, good)
    assert resumed.state_type is StateType.RUNNING and resumed.state_name == "Resuming"
    assert resumed.run_count == 1  # the same attempt goes on
    response = await client.read_flow_run_input(run_id, keyset_for("pause-1")["response"])
    assert response.value == good
    twice = await http.post(f"/flow_runs/{run_id}/resume", json={"run_input": good})
    assert twice.status_code == 409 and "is not paused" in twice.json()["detail"]


async def test_pause_without_input_and_suspend(
    client: AsyncClient, http: httpx.AsyncClient
) -> None:
    run_id = await _running(client)
    await _pause(client, run_id, schema=False)
    extra = await http.post(f"/flow_runs/{run_id}/resume", json={"run_input": {"a": 1}})
    assert extra.status_code == 422 and "does not wait for input" in extra.json()["detail"]
    assert (await client.resume_flow_run(run_id)).state_type is StateType.RUNNING

    suspended = await _running(client)
    await _pause(client, suspended, key="suspend-1", suspend=True)
    assert (await client.read_flow_run(suspended)).state_name == "Suspended"
    run = await client.resume_flow_run(suspended, {"approved": False, "reviewer": "bo"})
    assert run.state_type is StateType.SCHEDULED and run.state_name == "Resuming"
    names = [s.name for s in await client.read_flow_run_states(suspended)]
    assert names[-3:] == ["Running", "Suspended", "Resuming"]


async def test_an_expired_pause_fails_the_run(client: AsyncClient, http: httpx.AsyncClient) -> None:
    run_id = await _running(client)
    await _pause(client, run_id, timeout=-1)
    late = await http.post(
        f"/flow_runs/{run_id}/resume", json={"run_input": {"approved": True, "reviewer": "a"}}
    )
    assert (
        late.status_code == 409 and "nobody resumed it before its timeout" in late.json()["detail"]
    )
    run = await client.read_flow_run(run_id)
    assert run.state_type is StateType.FAILED and "pause 'pause-1'" in (run.state.message or "")


async def test_the_late_runs_service_fails_expired_pauses(database_url: str) -> None:
    async with in_process_client(database_url) as client:
        expired, waiting = await _running(client), await _running(client)
        await _pause(client, expired, key="suspend-1", suspend=True, timeout=-1)
        await _pause(client, waiting)
        database = Database(database_url)
        try:
            service = LateRunsService(database, get_settings())
            await service.run_once()
        finally:
            await database.dispose()
        assert service.expired == 1
        failed = await client.read_flow_run(expired)
        assert failed.state_type is StateType.FAILED
        assert "suspended (pause 'suspend-1')" in (failed.state.message or "")
        assert (await client.read_flow_run(waiting)).state_type is StateType.PAUSED
