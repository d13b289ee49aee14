"""`POST /api/flow_runs/filter` (and `FlowRunFilter`) by work pool and work queue, on SQLite and
PostgreSQL, and `tideflow flow-run ls --pool/--queue` against a real server."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from serve_helpers import run_cli

from tideflow.client import AsyncClient, SyncClient
from tideflow.testing import in_process_client


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def http(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    client: AsyncClient
    async with in_process_client(database_url) as client:
        yield client._http


async def _setup(http: httpx.AsyncClient) -> dict[str, list[str]]:
    """Runs in pool a (queues default and fast), pool b (default), and a serve() deployment."""
    for pool in ("a", "b"):
        assert (await http.post("/work_pools/", json={"name": pool})).status_code == 201
    r = await http.post("/work_pools/a/queues/", json={"name": "fast"})
    assert r.status_code == 201, r.text
    placements = {"a-default": ("a", None), "a-fast": ("a", "fast"), "b-default": ("b", None),
                  "served": (None, None)}  # fmt: skip
    runs: dict[str, list[str]] = {}
    for name, (pool, queue) in placements.items():
        body: dict[str, Any] = {"flow_name": "etl", "name": name}
        if pool:
            body |= {"work_pool_name": pool, "work_queue_name": queue}
        d = (await http.post("/deployments/", json=body)).json()
        runs[name] = []
        for _ in range(2):
            r = await http.post(f"/deployments/{d['id']}/create_flow_run", json={})
            assert r.status_code == 201, r.text
            runs[name].append(r.json()["id"])
    return runs


async def _ids(http: httpx.AsyncClient, **flt: Any) -> set[str]:
    r = await http.post("/flow_runs/filter", json=flt)
    assert r.status_code == 200, r.text
    return {run["id"] for run in r.json()}


@pytest.mark.anyio
async def test_filter_by_pool_and_queue(http: httpx.AsyncClient) -> None:
    runs = await _setup(http)
    assert await _ids(http, work_pool_name=["a"]) == {*runs["a-default"], *runs["a-fast"]}
    assert await _ids(http, work_pool_name=["a", "b"]) == {
        *runs["a-default"], *runs["a-fast"], *runs["b-default"]
    }  # fmt: skip
    assert await _ids(http, work_queue_name=["default"]) == {*runs["a-default"], *runs["b-default"]}
    assert await _ids(http, work_pool_name=["b"], work_queue_name=["default"]) == set(
        runs["b-default"]
    )
    assert await _ids(http, work_pool_name=["b"], work_queue_name=["fast"]) == set()
    assert await _ids(http, work_pool_name=["nowhere"]) == set()
    r = await http.post("/flow_runs/count", json={"work_pool_name": ["a"]})
    assert r.status_code == 200 and r.json() == 4
    r = await http.post("/flow_runs/filter", json={"work_pool_name": "a"})
    assert r.status_code == 422 and "work_pool_name" in r.text
    r = await http.post("/flow_runs/filter", json={"work_pool_name": ["x"] * 101})
    assert r.status_code == 422


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from tideflow.testing import ServerProcess

    with ServerProcess(home=tmp_path_factory.mktemp("server"), startup_timeout=90) as proc:
        yield proc


def test_cli_flow_run_ls_by_pool_and_queue(server: Any) -> None:
    with SyncClient(server.api_url) as client:
        http = client._http
        for pool in ("cli-a", "cli-b"):
            http.post("/work_pools/", json={"name": pool}).raise_for_status()
        http.post("/work_pools/cli-a/queues/", json={"name": "fast"}).raise_for_status()
        ids = {}
        for name, pool, queue in (
            ("x", "cli-a", "fast"),
            ("y", "cli-a", None),
            ("z", "cli-b", None),
        ):
            body = {
                "flow_name": "etl",
                "name": name,
                "work_pool_name": pool,
                "work_queue_name": queue,
            }
            d = http.post("/deployments/", json=body).json()
            ids[name] = http.post(f"/deployments/{d['id']}/create_flow_run", json={}).json()["id"]

    def listed(*args: str) -> set[str]:
        result = run_cli(server.api_url, "flow-run", "ls", "--json", *args)
        assert result.returncode == 0, result.stderr
        return {run["id"] for run in json.loads(result.stdout)}

    assert listed("--pool", "cli-a") == {ids["x"], ids["y"]}
    assert listed("--pool", "cli-a", "--queue", "fast") == {ids["x"]}
    assert listed("--pool", "cli-a", "--pool", "cli-b", "--queue", "default") == {
        ids["y"],
        ids["z"],
    }
