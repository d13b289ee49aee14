"""The chains graph's edges, pure: links through custom events their runs emit, inside compound
and sequence triggers, and proactive triggers as alarms (to the deployment they run, or to the
automation itself when they run none)."""

from __future__ import annotations

import uuid
from types import SimpleNamespace
from typing import Any

from tideflow.schemas.automations import AutomationCreate
from tideflow.server.ui.graph import chain_edges, custom_names


def _deployment(name: str) -> SimpleNamespace:
    return SimpleNamespace(id=uuid.uuid4(), name=name, full_name=f"f/{name}")


def _automation(name: str, trigger: dict[str, Any], actions: list[dict[str, Any]]) -> Any:
    body = AutomationCreate.model_validate({"name": name, "trigger": trigger, "actions": actions})
    return SimpleNamespace(
        id=uuid.uuid4(), name=name, enabled=True, trigger=body.trigger, actions=body.actions
    )


def _run(target: Any) -> list[dict[str, Any]]:
    return [{"type": "run-deployment", "deployment_id": str(target.id)}]


def _on(name: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "event",
        "expect": ["tideflow.flow-run.Completed"],
        "match_related": {"tideflow.resource.name": name},
        **extra,
    }


def test_custom_events_compound_sequence_and_alarms() -> None:
    a, b, c, d = (_deployment(n) for n in "abcd")
    custom = {"type": "event", "expect": ["acme.order.shipped"]}
    via_event = _automation("shipped", custom, _run(b))
    compound = _automation(
        "both", {"type": "compound", "require": "all", "triggers": [_on("a"), custom]}, _run(c)
    )
    sequence = _automation("seq", {"type": "sequence", "triggers": [_on("b"), _on("c")]}, _run(d))
    alarm_run = _automation("late", _on("a", posture="Proactive", within=3600), _run(d))
    alarm_only = _automation(
        "watch", _on("d", posture="Proactive", within=60), [{"type": "do-nothing"}]
    )
    assert custom_names(compound.trigger.model_dump(mode="json")) == {"acme.order.shipped"}
    edges = chain_edges(
        [via_event, compound, sequence, alarm_run, alarm_only],
        [a, b, c, d],
        {"acme.order.shipped": {a.id, uuid.uuid4()}},  # an emitter that is no deployment: ignored
    )
    got = {(e.upstream, e.downstream, e.automation_name, e.kind, e.via) for e in edges}
    assert got == {
        (a.id, b.id, "shipped", "trigger", "acme.order.shipped"),
        # Both leaves of the compound link a to c: one edge, naming the custom event it goes through.
        (a.id, c.id, "both", "trigger", "acme.order.shipped"),
        (b.id, d.id, "seq", "trigger", ""),
        (c.id, d.id, "seq", "trigger", ""),
        (a.id, d.id, "late", "alarm", ""),
        (d.id, alarm_only.id, "watch", "alarm", ""),
    }
