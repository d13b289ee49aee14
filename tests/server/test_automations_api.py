"""Automations API on SQLite and PostgreSQL: CRUD, 422s naming the field, pause/resume, explain, history."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.anyio

VALID: dict[str, Any] = {
    "name": "notify",
    "description": "when it completes",
    "trigger": {"type": "event", "expect": ["tideflow.flow-run.Completed"],
                "match_related": {"tideflow.resource.name": "upstream"}},
    "actions": [{"type": "do-nothing"}],
}  # fmt: skip


async def test_create_read_filter_update_delete(http: httpx.AsyncClient) -> None:
    created = await http.post("/automations/", json=VALID)
    assert created.status_code == 201, created.text
    auto = created.json()
    assert auto["enabled"] is True and auto["name"] == "notify"
    assert (await http.get(f"/automations/{auto['id']}")).json() == auto
    assert (await http.get("/automations/name/notify")).json()["id"] == auto["id"]
    listed = await http.post("/automations/filter", json={"name_like": "NOT"})
    assert [a["id"] for a in listed.json()] == [auto["id"]]
    assert (await http.post("/automations/filter", json={"enabled": False})).json() == []

    patched = await http.patch(f"/automations/{auto['id']}", json={"description": "changed"})
    assert patched.status_code == 200 and patched.json()["description"] == "changed"
    assert patched.json()["trigger"] == auto["trigger"]

    paused = await http.post(f"/automations/{auto['id']}/pause")
    assert paused.json()["enabled"] is False
    assert (await http.post(f"/automations/{auto['id']}/resume")).json()["enabled"] is True

    assert (await http.delete(f"/automations/{auto['id']}")).status_code == 204
    gone = await http.get(f"/automations/{auto['id']}")
    assert gone.status_code == 404 and "not found" in gone.json()["detail"]
    assert (await http.delete(f"/automations/{auto['id']}")).status_code == 404


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"trigger": {"type": "event", "threshold": 0}}, "trigger.threshold"),
        ({"trigger": {"type": "event", "posture": "Proactive"}}, "within > 0"),
        ({"actions": []}, "at least one action"),
        ({"actions": [{"type": "run-deployment"}]}, "deployment_id is required"),
        ({"actions": [{"type": "call-webhook", "url": "ftp://x"}]}, "actions[0].url"),
        ({"actions": [{"type": "run-deployment", "source": "inferred",
                       "parameters": {"x": "{{ event.payload "}}]}, "actions[0].parameters.x"),
        ({"actions": [{"type": "run-deployment", "source": "inferred",
                       "parameters": {"x": "{{ secrets.token }}"}}]}, "unknown variable 'secrets'"),
        ({"trigger": {"type": "event", "expect": ["has space"]}}, "whitespace"),
        ({"name": ""}, "name"),
    ],
)  # fmt: skip
async def test_invalid_automations_are_422_naming_the_field(
    http: httpx.AsyncClient, change: dict[str, Any], named: str
) -> None:
    answer = await http.post("/automations/", json=VALID | change)
    assert answer.status_code == 422, answer.text
    assert named in answer.json()["detail"]


async def test_patch_that_breaks_the_automation_is_422_and_changes_nothing(
    http: httpx.AsyncClient,
) -> None:
    auto = (await http.post("/automations/", json=VALID)).json()
    bad = await http.patch(f"/automations/{auto['id']}", json={"actions": []})
    assert bad.status_code == 422 and "at least one action" in bad.json()["detail"]
    bad = await http.patch(f"/automations/{auto['id']}", json={"bogus": 1})
    assert bad.status_code == 422 and "bogus" in bad.json()["detail"]
    assert (await http.get(f"/automations/{auto['id']}")).json() == auto


async def test_name_lookup_is_409_when_ambiguous(http: httpx.AsyncClient) -> None:
    await http.post("/automations/", json=VALID)
    await http.post("/automations/", json=VALID)
    answer = await http.get("/automations/name/notify")
    assert answer.status_code == 409 and "use an id" in answer.json()["detail"]
    assert (await http.get("/automations/name/nope")).status_code == 404


async def _history(http: httpx.AsyncClient, auto_id: str, count: int) -> list[dict[str, Any]]:
    for _ in range(200):
        found = (await http.get(f"/automations/{auto_id}/history")).json()
        if len(found) >= count and all(
            a["status"] == "executed" for f in found for a in f["actions"]
        ):
            return list(found)
        await asyncio.sleep(0.02)
    raise AssertionError(f"expected {count} firings, got {found}")


async def test_explain_and_history_of_a_real_firing(http: httpx.AsyncClient) -> None:
    from tideflow.schemas.events import Event

    auto = (await http.post("/automations/", json=VALID)).json()
    related = [{"tideflow.resource.id": "tideflow.deployment.1", "tideflow.resource.role": "deployment",
                "tideflow.resource.name": "upstream"}]  # fmt: skip
    hit = Event(event="tideflow.flow-run.Completed", resource={"tideflow.resource.id": "r1"},  # type: ignore[arg-type]
                related=related)  # type: ignore[arg-type]  # fmt: skip
    miss = Event(event="tideflow.flow-run.Completed", resource={"tideflow.resource.id": "r2"})  # type: ignore[arg-type]
    sent = await http.post("/events", json=[e.model_dump(mode="json") for e in (hit, miss)])
    assert sent.status_code in (200, 201, 202), sent.text
    [firing] = await _history(http, auto["id"], 1)
    assert firing["triggering_event_id"] == str(hit.id)
    assert [(a["action_type"], a["status"]) for a in firing["actions"]] == [
        ("do-nothing", "executed")
    ]

    why = (
        await http.get(f"/automations/{auto['id']}/explain", params={"event_id": str(miss.id)})
    ).json()
    assert why["explanation"]["would_fire"] is False
    assert any("match_related" in line and "✗" in line for line in why["lines"])
    assert why["firings"] == []
    why = (
        await http.get(f"/automations/{auto['id']}/explain", params={"event_id": str(hit.id)})
    ).json()
    assert [f["id"] for f in why["firings"]] == [firing["id"]]
    assert any("this event fired" in line for line in why["lines"])

    missing = await http.get(f"/automations/{auto['id']}/explain",
                             params={"event_id": "00000000-0000-0000-0000-000000000000"})  # fmt: skip
    assert missing.status_code == 404 and "event" in missing.json()["detail"]
