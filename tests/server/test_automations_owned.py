"""Deployment triggers as owned automations: upsert in place, state kept, removed, paused, deleted."""

from __future__ import annotations

import datetime as dt

import pytest
from automation_helpers import T0, Harness, event, harness

from tideflow.events import DeploymentCompoundTrigger, DeploymentEventTrigger
from tideflow.schemas.automations import AutomationFilter, EventTrigger
from tideflow.schemas.deployments import Deployment
from tideflow.server.storage import automations as storage
from tideflow.server.triggers.owned import delete_owned_automations, sync_owned_automations

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def _sync(h: Harness, dep: Deployment, *triggers: object, paused: bool = False) -> list:
    dep = dep.model_copy(
        update={"triggers": [t.model_dump(mode="json") for t in triggers], "paused": paused}  # type: ignore[attr-defined]
    )
    async with h.database.write() as session:
        await sync_owned_automations(session, dep)
        return await storage.read_automations(
            session, AutomationFilter(owner_resource=[f"tideflow.deployment.{dep.id}"])
        )


async def test_reserving_updates_in_place_and_keeps_half_satisfied_state(database_url: str) -> None:
    async with harness(database_url) as h:
        dep = await h.deployment()
        both = DeploymentCompoundTrigger(
            name="both",
            require="all",
            triggers=[EventTrigger(expect={"a.done"}), EventTrigger(expect={"b.done"})],
        )
        [auto] = await _sync(h, dep, both)
        assert auto.owner_key == "name:both" and auto.name == "both"
        await h.engine.run_once()
        await h.emit(event("a.done"))
        await h.engine.run_once()  # half satisfied: waiting for b.done

        # Serving again with the same trigger (fresh objects, fresh random ids) changes nothing.
        again = DeploymentCompoundTrigger(
            name="both",
            require="all",
            triggers=[EventTrigger(expect={"a.done"}), EventTrigger(expect={"b.done"})],
        )
        [same] = await _sync(h, dep, again)
        assert (same.id, same.updated) == (auto.id, auto.updated)
        await h.emit(event("b.done", occurred=T0 + dt.timedelta(seconds=1)))
        await h.engine.run_once()
        assert len(await h.firings(auto.id)) == 1
        assert len(await h.runs(dep.id)) == 1


async def test_changed_removed_paused_and_deleted(database_url: str) -> None:
    async with harness(database_url) as h:
        dep = await h.deployment()
        one = DeploymentEventTrigger(expect={"x.y"})
        two = DeploymentEventTrigger(name="named", expect={"x.z"}, parameters={"a": 1})
        first = await _sync(h, dep, one, two)
        assert sorted(a.owner_key for a in first) == ["name:named", "position:0"]

        changed = DeploymentEventTrigger(expect={"x.changed"})
        [kept] = await _sync(h, dep, changed)
        by_key = {a.owner_key: a for a in first}
        assert kept.id == by_key["position:0"].id
        assert kept.trigger.expect == {"x.changed"}  # type: ignore[union-attr]

        [paused] = await _sync(h, dep, changed, paused=True)
        assert paused.enabled is False and paused.id == kept.id
        [resumed] = await _sync(h, dep, changed)
        assert resumed.enabled is True

        async with h.database.write() as session:
            await delete_owned_automations(session, dep.id)
        assert await _sync_read(h, dep) == []


async def _sync_read(h: Harness, dep: Deployment) -> list:
    async with h.database.read() as session:
        return await storage.read_automations(
            session, AutomationFilter(owner_resource=[f"tideflow.deployment.{dep.id}"])
        )


async def test_deployment_api_keeps_owned_automations_in_step(http) -> None:  # type: ignore[no-untyped-def]
    trigger = {"type": "event", "expect": ["tideflow.flow-run.Completed"],
               "match_related": {"tideflow.resource.name": "up"}, "parameters": {"n": 1}}  # fmt: skip
    body = {"flow_name": "down-flow", "name": "down", "triggers": [trigger]}
    dep = (await http.post("/deployments/", json=body)).json()
    owner = {"owner_resource": [f"tideflow.deployment.{dep['id']}"]}
    [auto] = (await http.post("/automations/filter", json=owner)).json()
    assert auto["actions"][0]["deployment_id"] == dep["id"]
    assert auto["actions"][0]["parameters"] == {"n": 1}

    assert (await http.post("/deployments/", json=body)).status_code == 200
    [same] = (await http.post("/automations/filter", json=owner)).json()
    assert same == auto

    await http.post(f"/deployments/{dep['id']}/pause")
    [paused] = (await http.post("/automations/filter", json=owner)).json()
    assert paused["enabled"] is False and paused["id"] == auto["id"]
    await http.post(f"/deployments/{dep['id']}/resume")
    assert (await http.get(f"/automations/{auto['id']}")).json()["enabled"] is True

    bad = await http.post(
        "/deployments/", json=body | {"triggers": [{"type": "event", "threshold": 0}]}
    )
    assert bad.status_code == 422 and "triggers[0].threshold" in bad.json()["detail"]
    assert (await http.get(f"/automations/{auto['id']}")).status_code == 200  # rolled back

    assert (await http.delete(f"/deployments/{dep['id']}")).status_code == 204
    assert (await http.post("/automations/filter", json=owner)).json() == []
