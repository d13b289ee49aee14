"""A client may send its own state ids; one already stored was a 500 with the raw IntegrityError
(SQL and parameters included). Now it is a 409 naming the state id, on run creation and on set_state,
on SQLite and PostgreSQL, and nothing of the refused request is stored."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from tideflow.testing import ServerProcess


@pytest.fixture
def api(database_url: str) -> Iterator[httpx.Client]:
    with (
        ServerProcess(database_url) as server,
        httpx.Client(base_url=server.api_url, timeout=10) as client,
    ):
        yield client


def _refused_for(response: httpx.Response, state_id: str) -> None:
    assert response.status_code == 409, response.text
    detail = response.json()["detail"]
    assert f"state id {state_id} is already used" in detail
    assert "INSERT" not in detail and "IntegrityError" not in detail


def _run_count(api: httpx.Client) -> int:
    response = api.post("/flow_runs/count", json={})
    assert response.status_code == 200
    return int(response.json())


def test_create_with_a_used_state_id_is_a_409(api: httpx.Client) -> None:
    state_id = str(uuid.uuid4())
    first = api.post(
        "/flow_runs/", json={"flow_name": "f", "state": {"type": "SCHEDULED", "id": state_id}}
    )
    assert first.status_code == 201, first.text
    assert first.json()["state"]["id"] == state_id

    again = api.post(
        "/flow_runs/", json={"flow_name": "f", "state": {"type": "SCHEDULED", "id": state_id}}
    )
    _refused_for(again, state_id)
    # A run created straight into Running passes through a server-made Pending first.
    running = api.post(
        "/flow_runs/", json={"flow_name": "g", "state": {"type": "RUNNING", "id": state_id}}
    )
    _refused_for(running, state_id)

    assert _run_count(api) == 1  # neither refused run was stored
    assert api.post("/flows/filter", json={}).json()[0]["name"] == "f"  # flow g rolled back too
    assert api.get("/health").status_code == 200


def test_set_state_with_a_used_state_id_is_a_409(api: httpx.Client) -> None:
    run = api.post("/flow_runs/", json={"flow_name": "f"}).json()
    other = api.post("/flow_runs/", json={"flow_name": "f"}).json()
    pending_id = run["state"]["id"]

    # The run's own current state id, and another run's state id.
    for used in (pending_id, other["state"]["id"]):
        response = api.post(
            f"/flow_runs/{run['id']}/set_state", json={"state": {"type": "RUNNING", "id": used}}
        )
        _refused_for(response, used)

    stored = api.get(f"/flow_runs/{run['id']}").json()
    assert stored["state"]["id"] == pending_id and stored["state"]["type"] == "PENDING"
    assert [s["id"] for s in api.get(f"/flow_runs/{run['id']}/states").json()] == [pending_id]

    fresh = str(uuid.uuid4())
    accepted = api.post(
        f"/flow_runs/{run['id']}/set_state", json={"state": {"type": "RUNNING", "id": fresh}}
    )
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["state"]["id"] == fresh
