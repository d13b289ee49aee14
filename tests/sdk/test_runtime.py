"""``tideflow.runtime``: every attribute answers outside a run (None or an empty value) and the
right value inside a flow run, a subflow and a task run, against the session's real server."""

from __future__ import annotations

import asyncio
from typing import Any

from tideflow import flow, runtime, task
from tideflow.client import SyncClient

FLOW_RUN_ATTRS = {
    "id": None, "name": None, "flow_name": None, "flow_version": None, "parameters": {},
    "tags": [], "run_count": 0, "scheduled_start_time": None, "deployment_id": None,
    "job_variables": None, "parent_flow_run_id": None, "api_url": None, "ui_url": None,
}  # fmt: skip
DEPLOYMENT_ATTRS = {
    "id": None,
    "flow_run_id": None,
    "name": None,
    "version": None,
    "parameters": {},
}
TASK_RUN_ATTRS = {
    "id": None, "name": None, "task_name": None, "parameters": {}, "run_count": 0, "tags": [],
}  # fmt: skip


def test_outside_a_run_nothing_raises() -> None:
    for info, expected in (
        (runtime.flow_run, FLOW_RUN_ATTRS),
        (runtime.deployment, DEPLOYMENT_ATTRS),
        (runtime.task_run, TASK_RUN_ATTRS),
    ):
        for attr, value in expected.items():
            assert getattr(info, attr) == value, (info, attr)
        assert repr(info)


@task(tags=["t1"])
def task_facts(x: int) -> dict[str, Any]:
    tr = runtime.task_run
    return {
        "id": tr.id, "name": tr.name, "task_name": tr.task_name, "run_count": tr.run_count,
        "tags": tr.tags, "flow_run_id": runtime.flow_run.id,
    }  # fmt: skip


@flow(version="1.2.3")
def facts_flow(n: int = 3) -> dict[str, Any]:
    fr = runtime.flow_run
    facts = {a: getattr(fr, a) for a in FLOW_RUN_ATTRS}
    facts["deployment"] = {a: getattr(runtime.deployment, a) for a in DEPLOYMENT_ATTRS}
    facts["task"] = task_facts(n)
    facts["outside_task"] = runtime.task_run.id
    return facts


def test_inside_a_flow_and_task_run(client: SyncClient, _point_at_server: str) -> None:
    facts = facts_flow.with_options(tags=["blue", "green"])(n=4)
    run = client.read_flow_run(facts["id"])
    assert facts["name"] == run.name
    assert facts["flow_name"] == "facts-flow"
    assert facts["flow_version"] == "1.2.3"
    assert facts["parameters"] == {"n": 4}
    assert sorted(facts["tags"]) == ["blue", "green"]
    assert facts["run_count"] == 1
    assert facts["scheduled_start_time"] == run.expected_start_time is not None
    assert facts["deployment_id"] is None
    assert facts["job_variables"] == {}
    assert facts["api_url"] == _point_at_server
    assert facts["ui_url"] == _point_at_server.removesuffix("/api") + f"/runs/{run.id}"
    assert facts["deployment"] == DEPLOYMENT_ATTRS  # not a deployment's run
    assert facts["outside_task"] is None
    t = facts["task"]
    assert t["flow_run_id"] == run.id and t["task_name"] == "task_facts"
    assert t["run_count"] == 1 and "t1" in t["tags"]
    assert client.read_task_run(t["id"]).name == t["name"]


@flow
def parent_flow() -> tuple[Any, Any]:
    return runtime.flow_run.id, child_flow()


@flow
def child_flow() -> Any:
    return runtime.flow_run.parent_flow_run_id


def test_subflow_knows_its_parent(_point_at_server: str) -> None:
    parent_id, childs_parent = parent_flow()
    assert childs_parent == parent_id


@flow
async def async_facts() -> tuple[Any, Any]:
    await asyncio.sleep(0)
    return runtime.flow_run.id, runtime.flow_run.flow_name


def test_async_flow(_point_at_server: str) -> None:
    run_id, name = asyncio.run(async_facts())
    assert run_id is not None and name == "async-facts"
