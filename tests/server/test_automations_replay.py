"""POST /automations/{id}/replay and /automations/replay: a dry run over stored events, on SQLite
and PostgreSQL; nothing stored, nothing run; windows and bodies checked."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.anyio

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


def _event(name: str, minutes_ago: float, **labels: str) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "occurred": (NOW - dt.timedelta(minutes=minutes_ago)).isoformat(),
        "event": name,
        "resource": {"tideflow.resource.id": "acme.file.1", **labels},
        "payload": {"rows": int(minutes_ago)},
    }


AUTOMATION: dict[str, Any] = {
    "name": "on-upload",
    "trigger": {"type": "event", "expect": ["acme.upload"]},
    "actions": [
        {"type": "run-deployment", "deployment_id": str(uuid.uuid4()),
         "parameters": {"file": "{{ event.resource.name }}", "rows": "{{ event.payload.rows }}"}},
        {"type": "do-nothing"},
    ],
}  # fmt: skip


async def test_replay_a_stored_automation(http: httpx.AsyncClient) -> None:
    batch = [_event("acme.upload", m, **{"tideflow.resource.name": f"f{m}.csv"}) for m in (50, 20)]
    batch += [_event("acme.other", 10), _event("acme.upload", 60 * 30)]  # the last: outside
    assert (await http.post("/events", json=batch)).status_code < 300
    auto = (await http.post("/automations/", json=AUTOMATION)).json()
    since = (NOW - dt.timedelta(hours=2)).isoformat()
    answer = await http.post(f"/automations/{auto['id']}/replay", json={"since": since})
    assert answer.status_code == 200, answer.text
    result = answer.json()
    assert result["fired"] == 2 and result["events_considered"] == 2
    assert result["summary"].startswith("would have fired 2 times between ")
    firings = result["firings"]
    assert [f["triggering_event_id"] for f in firings] == [batch[0]["id"], batch[1]["id"]]
    assert firings[0]["actions"][0] == {
        "index": 0, "type": "run-deployment", "values": {"parameters": {"file": "f50.csv", "rows": 50}},
        "error": None,
    }  # fmt: skip
    assert firings[0]["actions"][1]["values"] is None
    # A dry run: no firing, no run.
    history = (await http.get(f"/automations/{auto['id']}/history")).json()
    assert history == []
    assert (await http.post("/flow_runs/count", json={})).json() == 0


async def test_replay_an_unsaved_automation_and_template_errors(http: httpx.AsyncClient) -> None:
    assert (await http.post("/events", json=[_event("acme.upload", 5)])).status_code < 300
    draft = {**AUTOMATION, "actions": [{"type": "call-webhook", "url": "https://example.com/x",
                                        "body": {"who": "{{ event.resource.owner }}"}}]}  # fmt: skip
    since = (NOW - dt.timedelta(hours=1)).isoformat()
    answer = await http.post("/automations/replay", json={"since": since, "automation": draft})
    assert answer.status_code == 200, answer.text
    [firing] = answer.json()["firings"]
    [action] = firing["actions"]
    assert action["values"] is None and "no attribute 'owner'" in action["error"]
    assert (await http.post("/automations/filter", json={})).json() == []  # nothing saved


@pytest.mark.parametrize(
    ("path", "body", "named"),
    [
        ("/automations/replay", {"since": "2025-01-01T00:00:00Z"}, "body.automation"),
        ("/automations/replay", {"since": "2025-01-01T00:00:00Z", "until": "2025-03-01T00:00:00Z",
                                 "automation": AUTOMATION}, "longer than 31 days"),
        ("/automations/replay", {"since": "2025-01-02T00:00:00Z", "until": "2025-01-01T00:00:00Z",
                                 "automation": AUTOMATION}, "must be after since"),
        ("/automations/replay", {"since": "2025-01-01T00:00:00Z",
                                 "automation": {**AUTOMATION, "trigger": {"type": "event",
                                                                          "threshold": 0}}},
         "trigger.threshold"),
        ("/automations/replay", {"since": "yesterday", "automation": AUTOMATION}, "since"),
    ],
)  # fmt: skip
async def test_bad_replays_are_422_naming_the_problem(
    http: httpx.AsyncClient, path: str, body: dict[str, Any], named: str
) -> None:
    answer = await http.post(path, json=body)
    assert answer.status_code == 422 and named in str(answer.json()["detail"]), answer.text


async def test_replay_of_a_missing_automation_is_404(http: httpx.AsyncClient) -> None:
    answer = await http.post(
        f"/automations/{uuid.uuid4()}/replay", json={"since": "2025-01-01T00:00:00Z"}
    )
    assert answer.status_code == 404 and "not found" in answer.json()["detail"]


async def test_many_firings_are_counted_but_at_most_200_rendered(http: httpx.AsyncClient) -> None:
    batch = [_event("acme.burst", m / 10) for m in range(1, 301)]
    assert (await http.post("/events", json=batch)).status_code < 300
    draft = {**AUTOMATION, "trigger": {"type": "event", "expect": ["acme.burst"]}}
    since = (NOW - dt.timedelta(hours=1)).isoformat()
    result = (
        await http.post("/automations/replay", json={"since": since, "automation": draft})
    ).json()
    assert result["fired"] == 300 and len(result["firings"]) == 200
    assert result["firings_truncated"] is True
