"""The worker side of the runners' websocket against a real server on SQLite and PostgreSQL: a hello
naming a pool, pushes with the queue's priority, claims checked against the queue's and the pool's
concurrency limits (WAIT) and pause, a re-offer when a slot frees, runs of other pools refused,
`poll`, and a deployment moved to a pool taking its waiting runs along."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect

from tideflow.testing import ServerProcess

pytestmark = pytest.mark.anyio

HEADERS = {"X-Tideflow-Client": "python"}  # a body-less POST needs it (cross-site guard)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def server(database_url: str) -> Iterator[ServerProcess]:
    with ServerProcess(database_url=database_url) as proc:
        yield proc


async def _hello(server: ServerProcess, pool: str, **extra: Any) -> ClientConnection:
    ws = await connect(server.api_url.replace("http://", "ws://") + "/runners/ws")
    frame = {
        "type": "hello",
        "runner_id": str(uuid.uuid4()),
        "name": "test-worker",
        "work_pool_name": pool,
        "worker_type": "process",
        **extra,
    }
    await ws.send(json.dumps(frame))
    return ws


async def _message(ws: ClientConnection, kind: str, timeout: float = 5.0) -> dict[str, Any]:
    while True:
        message = dict(json.loads(await asyncio.wait_for(ws.recv(), timeout)))
        if message["type"] == kind:
            return message


async def _offers(ws: ClientConnection, count: int) -> list[dict[str, Any]]:
    return [await _message(ws, "run") for _ in range(count)]


async def _claim(ws: ClientConnection, claim_id: int, runs: list[dict[str, Any]]) -> list[Any]:
    claims = [{"flow_run_id": r["id"], "expected_state_id": r["state"]["id"]} for r in runs]
    await ws.send(json.dumps({"type": "claim", "id": claim_id, "claims": claims}))
    return list((await _message(ws, "claimed"))["results"])


async def _setup(http: httpx.AsyncClient, pool: str, **pool_options: Any) -> dict[str, Any]:
    r = await http.post("/work_pools/", json={"name": pool, **pool_options})
    assert r.status_code == 201, r.text
    r = await http.post(
        "/deployments/", json={"flow_name": "f", "name": pool, "work_pool_name": pool}
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


async def _run(http: httpx.AsyncClient, deployment: dict[str, Any]) -> dict[str, Any]:
    r = await http.post(f"/deployments/{deployment['id']}/create_flow_run", json={})
    assert r.status_code == 201, r.text
    return dict(r.json())


async def test_pool_limit_waits_and_a_freed_slot_reoffers(server: ServerProcess) -> None:
    async with httpx.AsyncClient(base_url=server.api_url, timeout=10, headers=HEADERS) as http:
        d = await _setup(http, "limited", concurrency_limit=1)
        ws = await _hello(server, "limited")
        try:
            assert (await _message(ws, "welcome"))["claims"] is True
            served = (await http.get(f"/deployments/{d['id']}")).json()
            assert served["status"] == "READY"  # a worker of its pool is connected
            runs = [await _run(http, d) for _ in range(2)]
            offers = await _offers(ws, 2)
            assert {o["flow_run"]["id"] for o in offers} == {r["id"] for r in runs}
            assert all(o["priority"] == 1 for o in offers)
            results = await _claim(ws, 1, runs)
            assert [r["status"] for r in results] == ["ACCEPT", "WAIT"]
            assert "at its concurrency limit (1)" in results[1]["reason"]
            waiting = (await http.get(f"/flow_runs/{runs[1]['id']}")).json()
            assert waiting["state_name"] == "Scheduled"  # a pool WAIT leaves it as it was
            # the first run ends: the waiting one is offered again and can be claimed
            done = {"state": {"type": "COMPLETED", "name": "Completed"}}
            for state in ("RUNNING", "COMPLETED"):
                body = (
                    {"state": {"type": state, "name": state.title()}}
                    if state == "RUNNING"
                    else done
                )
                r = await http.post(f"/flow_runs/{runs[0]['id']}/set_state", json=body)
                assert r.status_code in (200, 201), r.text
            again = await _message(ws, "run")
            assert again["flow_run"]["id"] == runs[1]["id"]
            assert [r["status"] for r in await _claim(ws, 2, [again["flow_run"]])] == ["ACCEPT"]
        finally:
            await ws.close()


async def test_paused_queue_is_not_offered_and_claims_wait(server: ServerProcess) -> None:
    async with httpx.AsyncClient(base_url=server.api_url, timeout=10, headers=HEADERS) as http:
        d = await _setup(http, "paused")
        other = await _setup(http, "other")
        assert (await http.post("/work_pools/paused/queues/default/pause")).status_code == 200
        run = await _run(http, d)
        foreign = await _run(http, other)
        ws = await _hello(server, "paused")
        try:
            await _message(ws, "welcome")
            await ws.send(json.dumps({"type": "poll"}))
            with pytest.raises(TimeoutError):
                await _message(ws, "run", timeout=1.0)
            results = await _claim(ws, 1, [run, foreign])
            assert results[0]["status"] == "WAIT" and "is paused" in results[0]["reason"]
            assert (
                results[1]["status"] == "REJECT"
                and "not in this worker's work pool" in (results[1]["reason"])
            )
            assert (await http.post("/work_pools/paused/queues/default/resume")).status_code == 200
            offered = await _message(ws, "run")  # resuming offers the queue's due runs
            assert offered["flow_run"]["id"] == run["id"]
        finally:
            await ws.close()


async def test_hello_for_an_unknown_pool_or_another_type_is_refused(server: ServerProcess) -> None:
    async with httpx.AsyncClient(base_url=server.api_url, timeout=10, headers=HEADERS) as http:
        await http.post("/work_pools/", json={"name": "k8s", "type": "kubernetes"})
    for pool, fragment in (
        ("ghost", "work pool 'ghost' not found"),
        ("k8s", "of type 'kubernetes'"),
    ):
        ws = await _hello(server, pool)
        error = await _message(ws, "error")
        assert fragment in error["detail"]
        await ws.close()


async def test_moving_a_deployment_into_a_pool_takes_its_waiting_runs(
    server: ServerProcess,
) -> None:
    async with httpx.AsyncClient(base_url=server.api_url, timeout=10, headers=HEADERS) as http:
        await http.post("/work_pools/", json={"name": "later"})
        r = await http.post("/deployments/", json={"flow_name": "f", "name": "moved"})
        d = r.json()
        run = await _run(http, d)
        assert run["work_queue_id"] is None
        r = await http.patch(f"/deployments/{d['id']}", json={"work_pool_name": "later"})
        assert r.status_code == 200 and r.json()["work_pool_name"] == "later"
        moved = (await http.get(f"/flow_runs/{run['id']}")).json()
        assert moved["work_queue_id"] == r.json()["work_queue_id"]
        ws = await _hello(server, "later")
        try:
            offered = await _message(ws, "run")
            assert offered["flow_run"]["id"] == run["id"]
        finally:
            await ws.close()
