"""Trigger, action and automation schemas: defaults, coercions and errors that name the field."""

from __future__ import annotations

import datetime as dt
from uuid import uuid4

import pytest
import yaml
from pydantic import ValidationError

from tideflow.schemas.automations import (
    Automation,
    AutomationCreate,
    AutomationUpdate,
    CallWebhook,
    EventTrigger,
    PauseAutomation,
    RunDeployment,
    parse_automation,
    parse_automations,
)

NOW = dt.datetime(2025, 5, 1, tzinfo=dt.UTC)


def base(**overrides: object) -> dict[str, object]:
    data: dict[str, object] = {
        "name": "chain",
        "trigger": {"type": "event", "expect": ["tideflow.flow-run.Completed"]},
        "actions": [{"type": "run-deployment", "deployment_id": str(uuid4())}],
    }
    data.update(overrides)
    return data


def error_of(data: dict[str, object]) -> str:
    with pytest.raises(ValueError) as info:
        parse_automation(data)
    return str(info.value)


def test_yaml_document_loads() -> None:
    doc = yaml.safe_load(
        """
automations:
  - name: downstream after upstream
    trigger:
      type: event
      expect: [tideflow.flow-run.Completed]
      match_related:
        tideflow.resource.role: deployment
        tideflow.resource.name: upstream_deployment
      for_each: [tideflow.resource.id]
    actions:
      - type: run-deployment
        source: inferred
      - type: call-webhook
        url: https://hooks.example.org/x
        body: {run: "{{ event.resource['tideflow.resource.id'] }}"}
  - name: zombie
    trigger:
      type: event
      posture: Proactive
      after: [tideflow.flow-run.heartbeat]
      expect: [tideflow.flow-run.heartbeat, tideflow.flow-run.Completed]
      within: 90
    actions: [{type: change-flow-run-state, state: CRASHED, message: no heartbeat}]
"""
    )
    first, second = parse_automations(doc)
    assert isinstance(first.trigger, EventTrigger)
    assert first.trigger.match_related[0].root == {
        "tideflow.resource.role": "deployment",
        "tideflow.resource.name": "upstream_deployment",
    }
    assert isinstance(first.actions[0], RunDeployment) and first.actions[0].source == "inferred"
    assert isinstance(first.actions[1], CallWebhook) and first.actions[1].timeout == 10
    assert second.trigger.posture == "Proactive" and second.trigger.within == 90  # type: ignore[union-attr]
    assert parse_automations(base())[0].name == "chain"
    assert len(parse_automations([base(), base(name="b")])) == 2


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"name": ""}, "name: String should have at least 1 character"),
        (
            {"trigger": {"type": "cron"}},
            "trigger: Input tag 'cron' found using 'type' does not match any of the expected tags",
        ),
        (
            {"trigger": {"type": "event", "threshold": 0}},
            "trigger.threshold: Input should be greater than or equal to 1",
        ),
        (
            {"trigger": {"type": "event", "expect": ["bad name"]}},
            "trigger.expect: expect: event name 'bad name' contains whitespace",
        ),
        (
            {"trigger": {"type": "event", "match": {"a": 1}}},
            "trigger.match: label 'a': expected a string or a list of strings, got int",
        ),
        (
            {"trigger": {"type": "event", "for_each": ["related:x"]}},
            "trigger.for_each: for_each 'related:x': use 'related:<role>:<label>'",
        ),
        (
            {"trigger": {"type": "event", "posture": "Proactive"}},
            "trigger: a Proactive trigger needs within > 0",
        ),
        (
            {"trigger": {"type": "event", "posture": "Sometimes"}},
            "trigger.posture: Input should be 'Reactive' or 'Proactive'",
        ),
        (
            {"trigger": {"type": "compound", "triggers": []}},
            "trigger.triggers: List should have at least 1 item",
        ),
        (
            {"trigger": {"type": "compound", "triggers": [{"type": "event", "within": -1}]}},
            "trigger.triggers[0].within: Input should be greater than or equal to 0",
        ),
        ({"actions": []}, "an automation needs at least one action"),
        (
            {"actions": [{"type": "run-deployment"}]},
            "actions[0]: deployment_id is required when source is 'selected'",
        ),
        (
            {
                "actions": [
                    {"type": "run-deployment", "source": "inferred", "deployment_id": str(uuid4())}
                ]
            },
            "actions[0]: deployment_id must be empty when source is 'inferred'",
        ),
        (
            {"actions": [{"type": "call-webhook", "url": "ftp://x"}]},
            "actions[0].url: url must be an http:// or https:// URL, got 'ftp://x'",
        ),
        (
            {"actions": [{"type": "call-webhook", "url": "https://x.org", "timeout": 60}]},
            "actions[0].timeout: Input should be less than or equal to 30",
        ),
        (
            {"actions": [{"type": "call-webhook", "url": "https://x.org", "method": "GET"}]},
            "actions[0].method: Input should be 'POST' or 'PUT'",
        ),
        (
            {"actions": [{"type": "change-flow-run-state", "state": "DONE"}]},
            "actions[0].state: Input should be",
        ),
        (
            {"actions": [{"type": "pause-automation", "source": "selected"}]},
            "actions[0]: automation_id is required when source is 'selected'",
        ),
        (
            {"actions": [{"type": "launch-rocket"}]},
            "actions[0]: Input tag 'launch-rocket' found using 'type'",
        ),
        ({"colour": "blue"}, "colour: Extra inputs are not permitted"),
    ],
)
def test_errors_name_the_field(overrides: dict[str, object], expected: str) -> None:
    message = error_of(base(**overrides))
    assert message.startswith("automation ") and "is invalid:" in message
    assert f"\n  {expected}" in message, message


def test_multi_document_error_names_the_item() -> None:
    with pytest.raises(ValueError, match=r"^automations\[1\]: automation 'b' is invalid:"):
        parse_automations({"automations": [base(), base(name="b", actions=[])]})
    with pytest.raises(ValueError, match=r"automations\[0\]: expected a mapping, got str"):
        parse_automations(["nope"])


def test_action_coercions_and_every_type() -> None:
    run = RunDeployment(
        deployment_id=uuid4(),
        schedule_after=dt.timedelta(minutes=2),
        parameters={"n": "{{ event.payload.n }}"},
    )
    assert run.schedule_after == 120
    assert PauseAutomation().source == "self"
    kinds = [
        {"type": "run-deployment", "source": "inferred"},
        {"type": "pause-deployment", "source": "inferred"},
        {"type": "resume-deployment", "deployment_id": str(uuid4())},
        {"type": "cancel-flow-run"},
        {"type": "suspend-flow-run"},
        {"type": "change-flow-run-state", "state": "CANCELLED", "name": "Skipped"},
        {"type": "pause-automation"},
        {"type": "resume-automation", "source": "selected", "automation_id": str(uuid4())},
        {
            "type": "call-webhook",
            "url": "http://localhost:9/x",
            "method": "PUT",
            "headers": {"X": "{{ labels.k }}"},
        },
        {"type": "do-nothing"},
    ]
    automation = parse_automation(base(actions=kinds))
    assert [a.type for a in automation.actions] == [k["type"] for k in kinds]
    again = AutomationCreate.model_validate_json(automation.model_dump_json())
    assert again == automation


def test_trigger_within_accepts_timedelta_and_sets_serialise_sorted() -> None:
    trigger = EventTrigger(
        expect={"b", "a"}, after="x", within=dt.timedelta(seconds=90), for_each="k"
    )
    assert trigger.within == 90 and trigger.after == {"x"} and trigger.for_each == {"k"}
    assert trigger.model_dump(mode="json")["expect"] == ["a", "b"]


def test_update_is_partial_and_validated() -> None:
    stored = Automation(**parse_automation(base()).model_dump(), created=NOW, updated=NOW)
    later = NOW + dt.timedelta(hours=1)
    changed = AutomationUpdate(enabled=False).apply(stored, later)
    assert not changed.enabled and changed.name == "chain" and changed.trigger == stored.trigger
    assert changed.updated == later and changed.id == stored.id
    with pytest.raises(ValidationError, match="at least one action"):
        AutomationUpdate(actions=[]).apply(stored, later)
    with pytest.raises(ValidationError, match="Extra inputs"):
        AutomationUpdate.model_validate({"owner_resource": "x"})


def test_firing_actions_and_owner_key_needs_owner() -> None:
    automation = parse_automation(base(actions_on_trigger=[{"type": "do-nothing"}]))
    assert [a.type for a in automation.firing_actions()] == ["run-deployment", "do-nothing"]
    assert "owner_key needs owner_resource" in error_of(base(owner_key="k"))
