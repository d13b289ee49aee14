"""Deployment*Trigger: the seed example as written, as_automation identity, and check_wiring."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from uuid import UUID, uuid4

import pytest
from pydantic import ValidationError

from tideflow.events import (
    CompoundTrigger,
    DeploymentCompoundTrigger,
    DeploymentEventTrigger,
    DeploymentSequenceTrigger,
    Event,
    EventTrigger,
    ReceivedEvent,
    ResourceSpecification,
    SequenceTrigger,
)
from tideflow.schemas.automations import AutomationCreate, RunDeployment
from tideflow.server.triggers.evaluate import evaluate_event, initial_state

DEPLOYMENT = UUID("be777bbd-4b15-49f3-bc1f-4d109374cee2")
T0 = dt.datetime(2025, 5, 1, tzinfo=dt.UTC)


def seed_trigger() -> DeploymentEventTrigger:
    return DeploymentEventTrigger(
        expect={"tideflow.flow-run.Completed"},
        match_related={"tideflow.resource.name": "upstream_deployment"},
    )


def test_seed_example_as_automation() -> None:
    automation = seed_trigger().as_automation(DEPLOYMENT, "downstream_deployment", 1)
    assert isinstance(automation, AutomationCreate)
    assert automation.name == "downstream_deployment trigger 1"
    assert automation.owner_resource == f"tideflow.deployment.{DEPLOYMENT}"
    assert automation.owner_key == "position:1"
    assert automation.enabled
    [action] = automation.actions
    assert isinstance(action, RunDeployment)
    assert (
        action.source == "selected"
        and action.deployment_id == DEPLOYMENT
        and action.parameters is None
    )
    trigger = automation.trigger
    assert type(trigger) is EventTrigger
    assert trigger.expect == {"tideflow.flow-run.Completed"}
    assert trigger.match_related == [
        ResourceSpecification({"tideflow.resource.name": "upstream_deployment"})
    ]
    # the automation's trigger fires on the seed page's Completed event
    event = Event(
        event="tideflow.flow-run.Completed",
        resource={
            "tideflow.resource.id": f"tideflow.flow-run.{uuid4()}",
            "tideflow.resource.name": "able-otter",
        },
        related=[
            {
                "tideflow.resource.id": f"tideflow.flow.{uuid4()}",
                "tideflow.resource.role": "flow",
                "tideflow.resource.name": "upstream-flow",
            },
            {
                "tideflow.resource.id": f"tideflow.deployment.{uuid4()}",
                "tideflow.resource.role": "deployment",
                "tideflow.resource.name": "upstream_deployment",
            },
            {
                "tideflow.resource.id": "tideflow.user.stoat",
                "tideflow.resource.role": "creator",
                "tideflow.resource.name": "stoat",
            },
        ],
    )
    assert len(evaluate_event(trigger, initial_state(trigger, T0), event, T0).firings) == 1


def test_identity_is_stable_across_serves() -> None:
    one = seed_trigger().as_automation(DEPLOYMENT, "d", 1)
    two = seed_trigger().as_automation(DEPLOYMENT, "d", 1)
    assert one.trigger.id == two.trigger.id and one.owner_key == two.owner_key
    assert seed_trigger().as_automation(DEPLOYMENT, "d", 2).trigger.id != one.trigger.id
    assert seed_trigger().as_automation(uuid4(), "d", 1).trigger.id != one.trigger.id
    named = DeploymentEventTrigger(name="after upstream", expect={"a"})
    assert named.as_automation(DEPLOYMENT, "d", 1).owner_key == "name:after upstream"
    assert (
        named.as_automation(DEPLOYMENT, "d", 7).trigger.id
        == named.as_automation(DEPLOYMENT, "d", 1).trigger.id
    )
    assert named.as_automation(DEPLOYMENT, "d", 1).name == "after upstream"
    explicit = UUID(int=42)
    assert (
        DeploymentEventTrigger(id=explicit).as_automation(DEPLOYMENT, "d", 1).trigger.id == explicit
    )


def test_run_options_flow_into_the_action() -> None:
    trigger = DeploymentEventTrigger(
        expect={"a"},
        description="why",
        enabled=False,
        parameters={"rows": "{{ event.payload.rows }}"},
        job_variables={"env": {"X": "1"}},
        schedule_after=dt.timedelta(seconds=30),
    )
    automation = trigger.as_automation(DEPLOYMENT, "d", 1)
    action = automation.actions[0]
    assert isinstance(action, RunDeployment)
    assert action.parameters == {"rows": "{{ event.payload.rows }}"} and action.job_variables == {
        "env": {"X": "1"}
    }
    assert (
        action.schedule_after == 30 and not automation.enabled and automation.description == "why"
    )


def test_composite_deployment_triggers_get_stable_child_ids() -> None:
    def build() -> DeploymentCompoundTrigger:
        return DeploymentCompoundTrigger(
            triggers=[EventTrigger(expect={"a"}), EventTrigger(expect={"b"})],
            require="all",
            within=60,
        )

    one, two = build().as_automation(DEPLOYMENT, "d", 1), build().as_automation(DEPLOYMENT, "d", 1)
    assert isinstance(one.trigger, CompoundTrigger) and isinstance(two.trigger, CompoundTrigger)
    assert [t.id for t in one.trigger.triggers] == [t.id for t in two.trigger.triggers]
    assert len({one.trigger.id, *(t.id for t in one.trigger.triggers)}) == 3
    seq = DeploymentSequenceTrigger(
        triggers=[EventTrigger(expect={"a"}), EventTrigger(expect={"b"})]
    ).as_automation(DEPLOYMENT, "d", 2)
    assert isinstance(seq.trigger, SequenceTrigger)


def test_check_wiring() -> None:
    assert seed_trigger().check_wiring(set()) == []
    trigger = DeploymentEventTrigger(
        name="t",
        expect={"a"},
        parameters={
            "rows": "{{ event.payload.rows }}",
            "colour": "red",
            "bad": "{{ event.payload. }}",
        },
        job_variables={"env": {"X": "{{ evnt.id }}"}},
    )
    assert trigger.check_wiring({"rows", "bad"}) == [
        "trigger 't': 'colour' is not a parameter of the flow (its parameters: bad, rows)",
        "trigger 't': parameters.bad: template does not parse: expected name or number ('{{ event.payload. }}')",
        "trigger 't': job_variables.env.X: template uses unknown variable 'evnt' (templates can use automation, deployment, event, events, firing, flow, flow_run, labels, variables)",
    ]


def test_deployment_trigger_validation_errors() -> None:
    with pytest.raises(ValidationError, match="schedule_after"):
        DeploymentEventTrigger(schedule_after=-1)
    with pytest.raises(ValidationError, match="Extra inputs"):
        DeploymentEventTrigger(expects={"a"})


def test_public_names_and_cheap_import() -> None:
    assert ReceivedEvent.__mro__[1] is Event
    code = (
        "import sys, tideflow.events as e; "
        "bad = [m for m in ('jinja2', 'fastapi', 'sqlalchemy', 'uvicorn', 'tideflow.server') if m in sys.modules]; "
        "print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
