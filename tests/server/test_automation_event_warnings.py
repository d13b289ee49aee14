"""A trigger naming events no stored event has is saved with a warning and a suggestion (issue 16):
in the API answers for one automation, bounded to a few index probes however many events exist."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from automation_helpers import event, harness

from tideflow.schemas.automations import Automation
from tideflow.schemas.states import utcnow
from tideflow.server.storage.event_names import unknown_event_warnings

pytestmark = pytest.mark.anyio

T0 = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)


def body(*expect: str, after: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "name": "port",
        "trigger": {"type": "event", "expect": list(expect), "after": list(after)},
        "actions": [{"type": "do-nothing"}],
    }


async def _store(http: httpx.AsyncClient, *names: str) -> None:
    batch = [
        {"id": str(uuid.uuid4()), "occurred": T0.isoformat(), "event": name,
         "resource": {"tideflow.resource.id": "acme.thing"}}
        for name in names
    ]  # fmt: skip
    assert (await http.post("/events", json=batch)).status_code < 300


async def test_prefect_names_are_saved_with_a_warning_naming_ours(http: httpx.AsyncClient) -> None:
    created = await http.post("/automations/", json=body("prefect.flow-run.*"))
    assert created.status_code == 201, created.text
    auto = created.json()
    [warning] = auto["event_warnings"]
    assert warning == (
        "trigger.expect: no event named 'prefect.flow-run.*' has been stored; did you mean "
        "tideflow.flow-run.* (e.g. tideflow.flow-run.Completed)? (saved anyway: "
        "the trigger fires once such an event arrives)"
    )
    # The same advice on every read of that automation, and on update.
    again = (await http.get(f"/automations/{auto['id']}")).json()
    assert again["event_warnings"] == [warning]
    assert (await http.get("/automations/name/port")).json()["event_warnings"] == [warning]
    patched = await http.patch(
        f"/automations/{auto['id']}",
        json={"trigger": {"type": "event", "expect": ["prefect.flow-run.Completed"]}},
    )
    assert patched.json()["event_warnings"] == [
        "trigger.expect: no event named 'prefect.flow-run.Completed' has been stored; did you "
        "mean tideflow.flow-run.Completed? (saved anyway: the trigger fires once such an event "
        "arrives)"
    ]
    # Lists stay cheap: no advice there.
    [listed] = (await http.post("/automations/filter", json={})).json()
    assert listed["event_warnings"] == []


async def test_names_the_server_emits_or_has_stored_do_not_warn(http: httpx.AsyncClient) -> None:
    # Before any run, the server's own names are known.
    created = await http.post(
        "/automations/",
        json=body("tideflow.flow-run.Completed", "tideflow.deployment.*", after=("*",)),
    )
    assert created.json()["event_warnings"] == []
    await _store(http, "acme.data.arrived", "acme.batch.42.loaded")
    for names in (["acme.data.arrived"], ["acme.*"], ["acme.*.loaded"], ["*.arrived"]):
        answer = await http.post("/automations/", json=body(*names))
        assert answer.json()["event_warnings"] == [], names


async def test_a_typo_is_answered_with_the_nearest_stored_name(http: httpx.AsyncClient) -> None:
    await _store(http, "acme.data.arrived")
    answer = await http.post(
        "/automations/", json=body("acme.data.arived", "tideflow.flow-run.Complted")
    )
    assert answer.json()["event_warnings"] == [
        "trigger.expect: no event named 'acme.data.arived' has been stored; did you mean "
        "acme.data.arrived? (saved anyway: the trigger fires once such an event arrives)",
        "trigger.expect: no event named 'tideflow.flow-run.Complted' has been stored; did you "
        "mean tideflow.flow-run.Completed? (saved anyway: the trigger fires once such an event "
        "arrives)",
    ]
    nothing_near = await http.post("/automations/", json=body("zzz.q"))
    assert nothing_near.json()["event_warnings"] == [
        "trigger.expect: no event named 'zzz.q' has been stored (saved anyway: the trigger fires "
        "once such an event arrives)"
    ]


async def test_the_lookups_are_few_index_probes_however_many_events(database_url: str) -> None:
    async with harness(database_url) as h:
        # 3,000 events under 600 distinct names sharing the wildcard's prefix, none matching it.
        await h.emit(*[
            event(f"acme.n{i % 600:04d}.x", occurred=T0 + dt.timedelta(seconds=i))
            for i in range(3000)
        ])  # fmt: skip
        auto = await h.create({**body(*[f"acme.*.nomatch{i}" for i in range(100)]), "name": "many"})
        statements: list[str] = []

        def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            statements.append(statement)

        engine = h.database.engine.sync_engine
        sa.event.listen(engine, "before_cursor_execute", count)
        try:
            async with h.database.read() as session:
                warnings = await unknown_event_warnings(session, auto)
        finally:
            sa.event.remove(engine, "before_cursor_execute", count)
        # Each wildcard walks at most 16 names, then gives up (unknown is not "never": no
        # warning); the automation's budget of 64 probes ends the lookups.
        assert warnings == []
        assert 0 < len([s for s in statements if "events" in s]) <= 64
        assert all("count(" not in s.lower() for s in statements)


async def test_the_probe_uses_the_event_name_index(database_url: str) -> None:
    if not database_url.startswith("sqlite"):
        pytest.skip("EXPLAIN QUERY PLAN is SQLite's")
    async with harness(database_url) as h:
        async with h.database.read() as session:
            for sql in (
                "EXPLAIN QUERY PLAN SELECT min(event) FROM events WHERE event > 'a'",
                "EXPLAIN QUERY PLAN SELECT event FROM events WHERE event = 'a' LIMIT 1",
            ):
                plan = " ".join(str(r) for r in (await session.execute(sa.text(sql))).all())
                assert "USING COVERING INDEX" in plan and "SCAN" not in plan, plan


def test_a_parsed_answer_keeps_the_server_advice() -> None:
    now = utcnow()
    answer = {**body("prefect.x"), "id": str(uuid.uuid4()), "created": now.isoformat(),
              "updated": now.isoformat(), "event_warnings": ["advice"]}  # fmt: skip
    assert Automation.model_validate(answer).event_warnings == ["advice"]
