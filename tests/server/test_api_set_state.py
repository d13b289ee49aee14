"""set_state: every refused transition, force, retries, idempotent repeats, and the CAS race."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest

from tideflow.client import AsyncClient
from tideflow.exceptions import TransitionRefused
from tideflow.schemas import FlowRunCreate, SetStateStatus, State, StateType
from tideflow.schemas.states import (
    ALLOWED_TRANSITIONS,
    AwaitingRetry,
    Completed,
    Failed,
    Pending,
    Retrying,
    Running,
    Scheduled,
)

pytestmark = pytest.mark.anyio

_RETRY_FROM = (StateType.FAILED, StateType.CRASHED)


def _refused_pairs() -> list[tuple[StateType, StateType]]:
    """(from, to) pairs the table refuses; PENDING out of FAILED/CRASHED is a retry, tested apart."""
    return [
        (src, dst)
        for src in StateType
        for dst in StateType
        if dst not in ALLOWED_TRANSITIONS[src]
        and not (src in _RETRY_FROM and dst is StateType.PENDING)
    ]


async def _run_in(client: AsyncClient, type_: StateType) -> uuid.UUID:
    run = await client.create_flow_run(FlowRunCreate(flow_name="f"))
    if type_ is not StateType.PENDING:
        await client.set_flow_run_state(run.id, State(type=type_), force=True)
    return run.id


async def test_accepted_transition_returns_result_with_run(http: httpx.AsyncClient) -> None:
    run = (await http.post("/flow_runs/", json={"flow_name": "f"})).json()
    response = await http.post(
        f"/flow_runs/{run['id']}/set_state", json={"state": {"type": "RUNNING", "message": "go"}}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ACCEPT"
    assert body["state"]["type"] == "RUNNING" and body["state"]["message"] == "go"
    assert body["run"]["id"] == run["id"]
    assert body["run"]["state"]["id"] == body["state"]["id"]
    assert body["run"]["flow_name"] == "f"
    assert body["run"]["run_count"] == 1 and body["run"]["start_time"] is not None


async def test_every_refused_transition_is_409_naming_both_and_force_allows_it(
    client: AsyncClient, http: httpx.AsyncClient
) -> None:
    pairs = _refused_pairs()
    assert len(pairs) > 20  # the table really has refusals to check
    for src, dst in pairs:
        run_id = await _run_in(client, src)
        # A custom name keeps SCHEDULED/RUNNING proposals from being read as retries.
        proposal = {"state": {"type": dst.value, "name": "Custom"}}
        response = await http.post(f"/flow_runs/{run_id}/set_state", json=proposal)
        assert response.status_code == 409, (src, dst, response.text)
        detail = response.json()["detail"]
        assert src.value in detail and dst.value in detail, (src, dst, detail)
        assert (await client.read_flow_run(run_id)).state_type is src
        assert len(await client.read_flow_run_states(run_id)) == (
            1 if src is StateType.PENDING else 2
        )
        forced = await http.post(f"/flow_runs/{run_id}/set_state", json={**proposal, "force": True})
        assert forced.status_code == 200, (src, dst, forced.text)
        assert (await client.read_flow_run(run_id)).state_type is dst


async def test_client_raises_transition_refused_with_reason(client: AsyncClient) -> None:
    run_id = await _run_in(client, StateType.COMPLETED)
    with pytest.raises(TransitionRefused, match="already COMPLETED, a final state"):
        await client.set_flow_run_state(run_id, Running())


@pytest.mark.parametrize("final", _RETRY_FROM)
async def test_retries_out_of_failed_and_crashed(client: AsyncClient, final: StateType) -> None:
    run = await client.create_flow_run(FlowRunCreate(flow_name="f"))
    await client.set_flow_run_state(run.id, Running())
    await client.set_flow_run_state(run.id, State(type=final), force=final is StateType.CRASHED)
    ended = await client.read_flow_run(run.id)
    assert ended.end_time is not None and ended.run_count == 1
    result = await client.set_flow_run_state(run.id, AwaitingRetry())
    assert result.status is SetStateStatus.ACCEPT
    assert result.state.details.retry is True and result.state.details.scheduled_time is not None
    assert result.run is not None and result.run.end_time is None
    result = await client.set_flow_run_state(run.id, Running())
    assert result.run is not None and result.run.run_count == 2
    await client.set_flow_run_state(run.id, Failed())
    result = await client.set_flow_run_state(run.id, Retrying())
    assert result.state.details.retry is True
    assert result.run is not None and result.run.run_count == 3
    result = await client.set_flow_run_state(run.id, Completed())
    names = [s.name for s in await client.read_flow_run_states(run.id)]
    assert names == ["Pending", "Running", final.value.title(), "AwaitingRetry", "Running", "Failed",
                     "Retrying", "Completed"]  # fmt: skip
    assert result.run is not None and result.run.total_run_time > 0


async def test_retry_to_pending_out_of_failed(client: AsyncClient) -> None:
    run_id = await _run_in(client, StateType.FAILED)
    result = await client.set_flow_run_state(run_id, Pending())
    assert result.status is SetStateStatus.ACCEPT and result.state.details.retry is True


async def test_identical_proposal_is_idempotent(client: AsyncClient) -> None:
    run = await client.create_flow_run(FlowRunCreate(flow_name="f"))
    first = await client.set_flow_run_state(run.id, Running(message="m"))
    again = await client.set_flow_run_state(run.id, Running(message="m"))
    assert again.status is SetStateStatus.ACCEPT
    assert again.state.id == first.state.id
    assert again.reason is not None and "identical" in again.reason
    history = await client.read_flow_run_states(run.id)
    assert [s.type for s in history] == [StateType.PENDING, StateType.RUNNING]
    assert again.run is not None and again.run.run_count == 1


async def test_history_is_oldest_first_and_round_trips(client: AsyncClient) -> None:
    run = await client.create_flow_run(FlowRunCreate(flow_name="f", state=Scheduled()))
    proposals = [Pending(), Running(), Completed(message="done", data={"result": [1, 2]})]
    results = [await client.set_flow_run_state(run.id, s) for s in proposals]
    history = await client.read_flow_run_states(run.id)
    assert [s.type for s in history] == [StateType.SCHEDULED, StateType.PENDING, StateType.RUNNING,
                                         StateType.COMPLETED]  # fmt: skip
    assert history[1:] == [r.state for r in results]
    assert history[-1].data == {"result": [1, 2]} and history[-1].message == "done"
    stamps = [s.timestamp for s in history]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
    assert all(s.timestamp.tzinfo is not None for s in history)


async def test_compare_and_set_with_stale_id_is_refused(client: AsyncClient) -> None:
    run = await client.create_flow_run(FlowRunCreate(flow_name="f", state=Scheduled()))
    assert run.state is not None
    with pytest.raises(TransitionRefused, match="compare-and-set failed"):
        await client.set_flow_run_state(run.id, Pending(), expected_state_id=uuid.uuid4())
    result = await client.set_flow_run_state(run.id, Pending(), expected_state_id=run.state.id)
    assert result.status is SetStateStatus.ACCEPT


async def test_concurrent_claims_exactly_one_wins(
    client: AsyncClient, http: httpx.AsyncClient
) -> None:
    """Many runners claim one Scheduled run at once with the same expected state id."""
    for _ in range(3):
        run = await client.create_flow_run(FlowRunCreate(flow_name="f", state=Scheduled()))
        assert run.state is not None
        body = {"state": {"type": "PENDING", "message": "claimed"},
                "expected_state_id": str(run.state.id)}  # fmt: skip
        responses = await asyncio.gather(
            *(http.post(f"/flow_runs/{run.id}/set_state", json=body) for _ in range(16))
        )
        codes = sorted(r.status_code for r in responses)
        assert codes == [200] + [409] * 15, [r.text for r in responses]
        assert all(
            "compare-and-set" in r.json()["detail"] for r in responses if r.status_code == 409
        )
        history = await client.read_flow_run_states(run.id)
        assert [s.type for s in history] == [StateType.SCHEDULED, StateType.PENDING]


async def test_concurrent_identical_proposals_store_one_state(
    client: AsyncClient, http: httpx.AsyncClient
) -> None:
    run = await client.create_flow_run(FlowRunCreate(flow_name="f"))
    body = {"state": {"type": "RUNNING"}}
    responses = await asyncio.gather(
        *(http.post(f"/flow_runs/{run.id}/set_state", json=body) for _ in range(16))
    )
    assert all(r.status_code == 200 for r in responses)
    history = await client.read_flow_run_states(run.id)
    assert [s.type for s in history] == [StateType.PENDING, StateType.RUNNING]
    assert (await client.read_flow_run(run.id)).run_count == 1


async def test_malformed_proposals_are_422(http: httpx.AsyncClient) -> None:
    run = (await http.post("/flow_runs/", json={"flow_name": "f"})).json()
    response = await http.post(
        f"/flow_runs/{run['id']}/set_state", json={"state": {"type": "DONE"}}
    )
    assert response.status_code == 422
    assert response.json()["detail"].startswith("body.state.type: Input should be")
    response = await http.post(f"/flow_runs/{run['id']}/set_state", json={"force": True})
    assert response.status_code == 422
    assert response.json()["detail"] == "body.state: Field required"
