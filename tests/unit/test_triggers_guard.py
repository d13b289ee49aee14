"""The loop guards' pure core: an event's causal lineage and the per-automation firing rate."""

from __future__ import annotations

import uuid
from typing import Any

from tideflow.schemas.automations import Automation, automation_warnings, parse_automation
from tideflow.schemas.events import Event
from tideflow.schemas.states import utcnow
from tideflow.server.triggers.guard import (
    LINEAGE_KEY,
    RATE_WINDOW,
    FiringRate,
    RunLineage,
    child_lineage,
    event_lineage,
    lineage_from_payload,
)

A, B = uuid.uuid4(), uuid.uuid4()


def _event(name: str, resource: str, related: list[dict[str, str]] | None = None,
           payload: dict[str, Any] | None = None) -> Event:  # fmt: skip
    return Event(event=name, resource={"tideflow.resource.id": resource},
                 related=related or [], payload=payload or {})  # fmt: skip


def test_an_outside_event_has_no_lineage() -> None:
    assert event_lineage(_event("x.done", "x.1"), {}) == {}


def test_a_run_event_inherits_the_lineage_of_the_firing_that_created_the_run() -> None:
    run = uuid.uuid4()
    runs = RunLineage()
    runs.record(run, {A: 2, B: 1})
    event = _event("tideflow.flow-run.Completed", f"tideflow.flow-run.{run}")
    assert event_lineage(event, runs.as_mapping()) == {A: 2, B: 1}
    # An event emitted in the run, relating it, inherits it too.
    custom = _event("app.done", "app.1", [{"tideflow.resource.id": f"tideflow.flow-run.{run}",
                                           "tideflow.resource.role": "flow-run"}])  # fmt: skip
    assert event_lineage(custom, runs.as_mapping()) == {A: 2, B: 1}


def test_a_forgotten_run_counts_as_depth_one_for_its_creator_automation() -> None:
    creator = {"tideflow.resource.id": f"tideflow.automation.{A}",
               "tideflow.resource.role": "creator"}  # fmt: skip
    event = _event("tideflow.flow-run.Scheduled", f"tideflow.flow-run.{uuid.uuid4()}", [creator])
    assert event_lineage(event, {}) == {A: 1}


def test_an_automation_event_carries_its_firing_lineage() -> None:
    payload = {LINEAGE_KEY: {str(A): 3, "not-a-uuid": 1, str(B): "x"}}
    event = _event("tideflow.automation.action.executed", f"tideflow.automation.{A}",
                   payload=payload)  # fmt: skip
    assert event_lineage(event, {}) == {A: 3}
    # The same payload on a user's event about something else is not trusted.
    assert event_lineage(_event("app.x", "app.1", payload=payload), {}) == {}
    assert lineage_from_payload({LINEAGE_KEY: [1, 2]}) == {}


def test_child_lineage_counts_only_the_firing_automation() -> None:
    assert child_lineage({}, A) == {A: 1}
    assert child_lineage({A: 1, B: 2}, A) == {A: 2, B: 2}
    assert child_lineage({A: 1}, B) == {A: 1, B: 1}  # a chain of different automations: depth 1


def test_run_lineage_is_bounded() -> None:
    runs = RunLineage(capacity=3)
    ids = [uuid.uuid4() for _ in range(5)]
    for i, run in enumerate(ids):
        runs.record(run, {A: i + 1})
    assert len(runs) == 3 and ids[0] not in runs and runs[ids[4]] == {A: 5}


def test_the_firing_rate_allows_the_limit_per_window_then_refuses() -> None:
    rate = FiringRate(3)
    assert [rate.allow(A, 0.0) for _ in range(4)] == [True, True, True, False]
    assert rate.allow(B, 0.0)  # per automation
    assert not rate.allow(A, RATE_WINDOW - 0.1)
    assert rate.allow(A, RATE_WINDOW + 0.1)  # the first three left the window
    rate.forget(A)
    assert all(rate.allow(A, RATE_WINDOW + 0.2) for _ in range(3))


def _automation(trigger: dict[str, Any], action: dict[str, Any]) -> Automation:
    body = parse_automation({"name": "a", "trigger": trigger, "actions": [action]})
    now = utcnow()
    return Automation(**body.model_dump(), created=now, updated=now)


def test_warnings_name_every_empty_expect_of_a_run_creating_automation() -> None:
    run = {"type": "run-deployment", "deployment_id": str(A)}
    assert _automation({"type": "event"}, run).warnings[0].startswith("trigger.expect is empty")
    assert _automation({"type": "event", "expect": ["x.done"]}, run).warnings == []
    assert _automation({"type": "event"}, {"type": "do-nothing"}).warnings == []
    nested = {
        "type": "sequence",
        "triggers": [{"type": "event", "expect": ["x"]}, {"type": "event"}],
    }
    [warning] = automation_warnings(_automation(nested, run))
    assert warning.startswith("trigger.triggers[1].expect is empty")
    # A warning sent back is recomputed, never trusted.
    stored = _automation({"type": "event", "expect": ["x.done"]}, run)
    again = Automation.model_validate({**stored.model_dump(), "warnings": ["forged"]})
    assert again.warnings == []
