"""Work pools API on SQLite and PostgreSQL: pools with their default queue and base job template,
queues (priority, limits, pause), deployments placed in a pool, and job variables validated against
the pool's template wherever they are given (deployment, update, run)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tideflow.client import AsyncClient
from tideflow.schemas.work_pools import render_job
from tideflow.testing import in_process_client

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def http(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    client: AsyncClient
    async with in_process_client(database_url) as client:
        yield client._http


async def _pool(http: httpx.AsyncClient, name: str = "local", **over: Any) -> dict[str, Any]:
    r = await http.post("/work_pools/", json={"name": name, "type": "process", **over})
    assert r.status_code == 201, r.text
    return dict(r.json())


def _deployment(**over: Any) -> dict[str, Any]:
    return {"flow_name": "etl", "name": "nightly", **over}


async def test_pool_is_created_with_a_default_queue_and_the_types_template(
    http: httpx.AsyncClient,
) -> None:
    pool = await _pool(http, concurrency_limit=3)
    assert pool["type"] == "process" and pool["concurrency_limit"] == 3 and not pool["is_paused"]
    props = pool["base_job_template"]["variables"]["properties"]
    assert {"env", "working_dir", "command", "stream_output"} <= set(props)
    queues = (await http.get("/work_pools/local/queues/")).json()
    assert [(q["name"], q["priority"], q["id"]) for q in queues] == [
        ("default", 1, pool["default_queue_id"])
    ]
    r = await http.post("/work_pools/", json={"name": "local"})
    assert r.status_code == 409 and "already exists" in r.json()["detail"]
    for kind in ("docker", "kubernetes"):
        made = await _pool(http, f"p-{kind}", type=kind)
        assert "image" in made["base_job_template"]["variables"]["properties"]
    names = [p["name"] for p in (await http.post("/work_pools/filter", json={})).json()]
    assert names == ["local", "p-docker", "p-kubernetes"]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"name": "a/b"}, "must not contain '/'"),
        ({"name": "x", "type": "lambda"}, "type"),
        ({"name": "x", "concurrency_limit": -1}, "concurrency_limit"),
        ({"name": "x", "nope": 1}, "nope"),
        (
            {"name": "x", "base_job_template": {"job_configuration": {"e": "{{ envv }}"}}},
            "'{{ envv }}' but variables declares no 'envv'",
        ),
        ({"name": "x", "base_job_template": {"jobs": {}}}, "unknown key 'jobs'"),
    ],
)
async def test_bad_pools_are_422_naming_the_problem(
    http: httpx.AsyncClient, body: dict[str, Any], fragment: str
) -> None:
    r = await http.post("/work_pools/", json=body)
    assert r.status_code == 422 and fragment in r.text, r.text


async def test_update_pause_resume_and_delete_a_pool(http: httpx.AsyncClient) -> None:
    await _pool(http)
    r = await http.patch("/work_pools/local", json={"concurrency_limit": 2, "description": "d"})
    assert r.json()["concurrency_limit"] == 2 and r.json()["description"] == "d"
    assert (await http.post("/work_pools/local/pause")).json()["is_paused"] is True
    assert (await http.post("/work_pools/local/resume")).json()["is_paused"] is False
    r = await http.patch("/work_pools/local", json={"concurrency_limit": None})
    assert r.json()["concurrency_limit"] is None
    r = await http.patch("/work_pools/local", json={"type": "docker"})
    assert r.status_code == 422 and "type" in r.text
    r = await http.post("/deployments/", json=_deployment(work_pool_name="local"))
    deployment_id = r.json()["id"]
    assert (await http.delete("/work_pools/local")).status_code == 204
    assert (await http.get("/work_pools/local")).status_code == 404
    detached = (await http.get(f"/deployments/{deployment_id}")).json()
    assert detached["work_pool_name"] is None and detached["work_queue_id"] is None


async def test_queues_priority_limits_pause_and_the_default_queue_stays(
    http: httpx.AsyncClient,
) -> None:
    await _pool(http)
    r = await http.post("/work_pools/local/queues/", json={"name": "high"})
    assert r.status_code == 201 and r.json()["priority"] == 2  # after the others by default
    r = await http.post(
        "/work_pools/local/queues/", json={"name": "urgent", "priority": 1, "concurrency_limit": 4}
    )
    assert r.json()["concurrency_limit"] == 4
    r = await http.post("/work_pools/local/queues/", json={"name": "high"})
    assert r.status_code == 409
    r = await http.patch("/work_pools/local/queues/high", json={"priority": 7, "name": "low"})
    assert (r.json()["name"], r.json()["priority"]) == ("low", 7)
    r = await http.post("/work_pools/local/queues/low/pause")
    assert r.json()["is_paused"] is True
    order = [q["name"] for q in (await http.get("/work_pools/local/queues/")).json()]
    assert order == ["default", "urgent", "low"]  # priority 1, 1 (by name), 7
    r = await http.delete("/work_pools/local/queues/default")
    assert r.status_code == 422 and "default queue" in r.json()["detail"]
    assert (await http.delete("/work_pools/local/queues/low")).status_code == 204
    assert (await http.get("/work_pools/local/queues/low")).status_code == 404
    r = await http.get("/work_pools/nowhere/queues/")
    assert r.status_code == 404 and "work pool 'nowhere' not found" in r.json()["detail"]


async def test_deployment_in_a_pool_names_its_queue_and_validates_job_variables(
    http: httpx.AsyncClient,
) -> None:
    await _pool(http)
    r = await http.post(
        "/deployments/",
        json=_deployment(work_pool_name="local", job_variables={"env": {"MODE": "full"}}),
    )
    assert r.status_code == 201, r.text
    d = r.json()
    assert (d["work_pool_name"], d["work_queue_name"]) == ("local", "default")
    r = await http.post(
        "/deployments/", json=_deployment(work_pool_name="local", work_queue_name="gpu")
    )
    assert r.json()["work_queue_name"] == "gpu"  # a queue the pool lacked is created
    names = [q["name"] for q in (await http.get("/work_pools/local/queues/")).json()]
    assert "gpu" in names
    bad = [
        ({"work_pool_name": "nowhere"}, "work_pool_name", "work pool 'nowhere' not found"),
        (
            {"work_pool_name": "local", "job_variables": {"evn": {}}},
            "job_variables",
            "unknown job variable 'evn'",
        ),
        (
            {"work_pool_name": "local", "job_variables": {"env": {"A": 1}}},
            "job_variables",
            "job variable 'env.A': expected string",
        ),
        (
            {"work_pool_name": "local", "job_variables": {"stream_output": "yes"}},
            "job_variables",
            "job variable 'stream_output': expected boolean",
        ),
        ({"job_variables": {"env": {"A": "1"}}}, "job_variables", "need a work pool"),
    ]
    for over, field, fragment in bad:
        r = await http.post("/deployments/", json=_deployment(name="other", **over))
        assert r.status_code == 422, (over, r.text)
        detail = r.json()["detail"]
        assert fragment in str(detail) and field in str(detail), (over, detail)
    r = await http.patch(f"/deployments/{d['id']}", json={"job_variables": {"cmd": "x"}})
    assert r.status_code == 422 and "unknown job variable 'cmd'" in r.text


async def test_run_job_variables_are_checked_and_stored_with_the_queue(
    http: httpx.AsyncClient,
) -> None:
    pool = await _pool(http)
    d = (
        await http.post(
            "/deployments/",
            json=_deployment(work_pool_name="local", job_variables={"env": {"A": "1"}}),
        )
    ).json()
    r = await http.post(
        f"/deployments/{d['id']}/create_flow_run",
        json={"job_variables": {"env": {"B": "2"}, "working_dir": "/tmp"}},
    )
    assert r.status_code == 201, r.text
    run = r.json()
    assert run["work_queue_id"] == pool["default_queue_id"]
    assert run["job_variables"] == {"env": {"B": "2"}, "working_dir": "/tmp"}
    r = await http.post(
        f"/deployments/{d['id']}/create_flow_run", json={"job_variables": {"image": "x"}}
    )
    assert r.status_code == 422
    assert r.json()["errors"][0]["loc"] == ["body", "job_variables"]
    assert "job_variables: unknown job variable 'image'" in r.json()["detail"]
    served = (await http.post("/deployments/", json=_deployment(name="served"))).json()
    r = await http.post(
        f"/deployments/{served['id']}/create_flow_run", json={"job_variables": {"env": {}}}
    )
    assert r.status_code == 422 and "has no work pool" in r.text


async def test_workers_of_an_unknown_pool_is_404(http: httpx.AsyncClient) -> None:
    assert (await http.get("/work_pools/none/workers")).status_code == 404
    await _pool(http)
    assert (await http.get("/work_pools/local/workers")).json() == []


def test_render_job_fills_placeholders_keeping_types() -> None:
    template = {
        "job_configuration": {"env": "{{ env }}", "cmd": "run {{ name }} now", "out": "{{ so }}"},
        "variables": {
            "properties": {
                "env": {"type": "object", "default": {}},
                "name": {"type": "string"},
                "so": {"type": "boolean", "default": True},
            }
        },
    }
    job = render_job(template, {"env": {"A": "1"}, "name": "etl"})
    assert job == {"env": {"A": "1"}, "cmd": "run etl now", "out": True}
    assert render_job(template, {})["cmd"] == "run  now"
