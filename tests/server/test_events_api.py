"""Events over HTTP on both databases: batches with refusals, filter pages, count-by, read one."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import httpx
import pytest

from tideflow.client import AsyncClient
from tideflow.schemas import Creator, FlowRunCreate
from tideflow.schemas.events import EventFilter
from tideflow.schemas.states import Completed, Running

pytestmark = pytest.mark.anyio

T0 = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)


def raw(i: int, **kw: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": str(uuid.UUID(int=i + 1)),
        "occurred": (T0 + dt.timedelta(seconds=i)).isoformat(),
        "event": "demo.thing.happened",
        "resource": {"tideflow.resource.id": f"demo.{i % 3}"},
        "payload": {"i": i},
    }
    out.update(kw)
    return out


async def test_bad_events_are_refused_with_reasons_and_the_rest_stored(
    http: httpx.AsyncClient,
) -> None:
    batch = [
        raw(0),
        raw(1, event="has a space"),
        raw(2, resource={"tideflow.resource.name": "no id"}),
        raw(3, payload={"blob": "x" * 2_000_000}),
        raw(4, payload=[1, 2]),
        "not an object",
        raw(6, related=[{"tideflow.resource.id": "x"}]),
        raw(7),
        raw(0),  # a repeat of an accepted id: accepted again, stored once
    ]
    response = await http.post("/events", json=batch)
    assert response.status_code == 200
    body = response.json()
    assert body["accepted"] == [batch[0]["id"], batch[7]["id"], batch[0]["id"]]
    refused = {r["index"]: r for r in body["refused"]}
    assert sorted(refused) == [1, 2, 3, 4, 5, 6]
    assert refused[1]["id"] == batch[1]["id"]
    assert "contains whitespace" in refused[1]["reason"]
    assert "tideflow.resource.id" in refused[2]["reason"]
    assert "above the limit of 1000000 bytes" in refused[3]["reason"]
    assert "payload must be a JSON object" in refused[4]["reason"]
    assert refused[5]["id"] is None and "JSON object" in refused[5]["reason"]
    assert "tideflow.resource.role" in refused[6]["reason"]
    page = (await http.post("/events/filter", json={})).json()
    assert [e["id"] for e in page["events"]] == [batch[7]["id"], batch[0]["id"]]
    assert page["total"] == 2 and page["next_cursor"] is None
    # Sent again later: the server still answers accepted and keeps one copy.
    again = (await http.post("/events", json=[raw(0), raw(8)])).json()
    assert again == {"accepted": [batch[0]["id"], raw(8)["id"]], "refused": []}
    assert (await http.post("/events/filter", json={})).json()["total"] == 3
    assert (await http.post("/events", json=[])).json() == {"accepted": [], "refused": []}


async def test_body_must_be_a_list(http: httpx.AsyncClient) -> None:
    response = await http.post("/events", json=raw(0))
    assert response.status_code == 422
    assert "list" in response.json()["detail"]


async def test_filter_pages_count_by_and_read_one(http: httpx.AsyncClient) -> None:
    related = [{"tideflow.resource.id": "demo.flow", "tideflow.resource.role": "flow"}]
    batch = [
        raw(i, event=f"demo.kind{i % 2}", related=related if i % 4 == 0 else []) for i in range(10)
    ]
    assert len((await http.post("/events", json=batch)).json()["accepted"]) == 10
    flt = EventFilter(event_prefixes=["demo.kind1"], limit=2).model_dump(mode="json")
    seen = []
    while True:
        page = (await http.post("/events/filter", json=flt)).json()
        assert page["total"] == 5
        seen += [e["payload"]["i"] for e in page["events"]]
        if page["next_cursor"] is None:
            break
        flt["cursor"] = page["next_cursor"]
    assert seen == [9, 7, 5, 3, 1]
    by_related = (await http.post("/events/filter", json={"related_ids": ["demo.flow"]})).json()
    assert [e["payload"]["i"] for e in by_related["events"]] == [8, 4, 0]
    by_resource = (
        await http.post("/events/filter", json={"resource_ids": ["demo.1"], "order": "oldest"})
    ).json()
    assert [e["payload"]["i"] for e in by_resource["events"]] == [1, 4, 7]
    counts = (await http.post("/events/count-by/event", json={})).json()
    assert counts == [{"value": "demo.kind0", "count": 5}, {"value": "demo.kind1", "count": 5}]
    days = (await http.post("/events/count-by/day")).json()
    assert days == [{"value": "2030-01-01T00:00:00+00:00", "count": 10}]
    bad = await http.post("/events/count-by/week", json={})
    assert bad.status_code == 422 and "by" in bad.json()["detail"]
    one = await http.get(f"/events/{batch[3]['id']}")
    assert one.status_code == 200 and one.json()["payload"] == {"i": 3} and "received" in one.json()
    missing = await http.get(f"/events/{uuid.uuid4()}")
    assert missing.status_code == 404 and "not found" in missing.json()["detail"]
    bad_cursor = await http.post("/events/filter", json={"cursor": "nope"})
    assert bad_cursor.status_code == 422 and "invalid cursor" in bad_cursor.json()["detail"]


async def test_state_changes_write_their_events_in_a_chain(
    client: AsyncClient, http: httpx.AsyncClient
) -> None:
    alice = Creator(type="user", id="tideflow.user.alice", name="alice")
    run = await client.create_flow_run(
        FlowRunCreate(flow_name="etl", tags=["nightly"], created_by=alice)
    )
    await client.set_flow_run_state(run.id, Running())
    await client.set_flow_run_state(run.id, Completed())
    flt = {"resource_ids": [f"tideflow.flow-run.{run.id}"], "order": "oldest"}
    events = (await http.post("/events/filter", json=flt)).json()["events"]
    assert [e["event"] for e in events] == [
        "tideflow.flow-run.Pending",
        "tideflow.flow-run.Running",
        "tideflow.flow-run.Completed",
    ]
    assert events[0]["follows"] is None
    assert [e["follows"] for e in events[1:]] == [events[0]["id"], events[1]["id"]]
    roles = {r["tideflow.resource.role"]: r for r in events[2]["related"]}
    assert roles["flow"]["tideflow.resource.name"] == "etl"
    assert roles["tag"]["tideflow.resource.id"] == "tideflow.tag.nightly"
    assert roles["creator"] == {"tideflow.resource.id": "tideflow.user.alice",
                                "tideflow.resource.role": "creator", "tideflow.resource.name": "alice"}  # fmt: skip
    assert events[2]["payload"]["previous"]["type"] == "RUNNING"
    # A refused transition writes no event.
    with pytest.raises(Exception, match="final state"):
        await client.set_flow_run_state(run.id, Running())
    assert (await http.post("/events/filter", json=flt)).json()["total"] == 3
