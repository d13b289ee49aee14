"""The UI's pure helpers: chart geometry, durations, query strings, trigger summaries, resource
links, the Run form fields from a parameter schema, the chain graph and its layout, and the
automation draft made from an event."""

from __future__ import annotations

import datetime as dt
import uuid
from types import SimpleNamespace
from typing import Literal

import yaml

from tideflow.parameters import parameter_schema
from tideflow.schemas.automations import AutomationCreate
from tideflow.schemas.events import ReceivedEvent
from tideflow.server.ui.automations import draft_from_event
from tideflow.server.ui.forms import parameter_fields
from tideflow.server.ui.graph import chain_edges, layered_layout
from tideflow.server.ui.views import (
    hourly_chart,
    query_string,
    resource_link,
    seconds,
    state_class,
    trigger_summary,
)

NOW = dt.datetime(2026, 1, 2, 10, 30, tzinfo=dt.UTC)


def test_hourly_chart_stacks_states_per_hour_and_ignores_older_runs() -> None:
    runs = [
        (NOW - dt.timedelta(minutes=5), "COMPLETED"),
        (NOW - dt.timedelta(minutes=10), "FAILED"),
        (NOW - dt.timedelta(minutes=20), "RUNNING"),
        (NOW - dt.timedelta(hours=3), "COMPLETED"),
        (NOW - dt.timedelta(hours=30), "COMPLETED"),  # outside the window
    ]
    bars = hourly_chart(runs, NOW)
    assert len(bars) == 24
    assert bars[-1].start == dt.datetime(2026, 1, 2, 10, tzinfo=dt.UTC)
    assert [s.kind for s in bars[-1].segments] == ["completed", "failed", "other"]
    assert bars[-1].total == 3 and bars[-4].total == 1
    assert sum(b.total for b in bars) == 4
    tallest = bars[-1]
    assert tallest.segments[-1].y == 0.0  # the peak bar reaches the top
    assert all(not b.segments for b in bars[:-4])


def test_small_formatters() -> None:
    assert [seconds(v) for v in (None, 0.04, 2.44, 42, 185, 7500)] == [
        "\u2013", "40 ms", "2.4 s", "42 s", "3 m 05 s", "2 h 05 m",
    ]  # fmt: skip
    assert (
        query_string({"state": "FAILED", "flow": "", "tag": None}, page=2) == "?state=FAILED&page=2"
    )
    assert query_string({}) == ""
    assert state_class("SCHEDULED", "Late") == "late"
    assert state_class("COMPLETED", "Completed") == "completed"


def test_trigger_summary_reads_like_a_sentence() -> None:
    trigger = {
        "type": "event", "expect": ["tideflow.flow-run.Completed"],
        "match_related": [{"tideflow.resource.role": "deployment", "tideflow.resource.name": "up"}],
        "threshold": 3, "within": 60,
    }  # fmt: skip
    assert trigger_summary(trigger) == (
        "when tideflow.flow-run.Completed 3 times within 1 m 00 s, related to role = deployment, name = up"
    )
    compound = {"type": "compound", "require": "all", "triggers": [trigger, {"expect": ["a.b"]}]}
    assert trigger_summary(compound).startswith("all of: when tideflow.flow-run.Completed")
    assert trigger_summary({"posture": "Proactive", "expect": ["x.y"], "within": 30}) == (
        "when no x.y within 30 s"
    )


def test_resource_links() -> None:
    run_id = uuid.uuid4()
    assert (
        resource_link({"tideflow.resource.id": f"tideflow.flow-run.{run_id}"}) == f"/runs/{run_id}"
    )
    assert resource_link({"tideflow.resource.id": f"tideflow.deployment.{run_id}"}) == (
        f"/deployments/{run_id}"
    )
    assert (
        resource_link(
            {"tideflow.resource.id": f"tideflow.flow.{run_id}", "tideflow.resource.name": "etl"}
        )
        == "/runs?flow=etl"
    )
    assert resource_link({"tideflow.resource.id": "tideflow.tag.nightly"}) is None
    assert resource_link({"tideflow.resource.id": "tideflow.flow-run.not-a-uuid"}) is None


def test_run_form_fields_follow_the_parameter_schema() -> None:
    def report(
        rows: int, source: str = "s3://x", ratio: float = 0.5, dry_run: bool = True,
        mode: Literal["fast", "full"] = "fast", columns: list[str] | None = None,
        limit: int | None = None,
    ) -> None: ...  # fmt: skip

    fields = {f.name: f for f in parameter_fields(parameter_schema(report), {"source": "s3://y"})}
    assert list(fields) == ["rows", "source", "ratio", "dry_run", "mode", "columns", "limit"]
    assert (fields["rows"].kind, fields["rows"].required, fields["rows"].value) == (
        "integer",
        True,
        "",
    )
    assert fields["source"].value == "s3://y"  # the deployment's default wins
    assert (fields["ratio"].kind, fields["ratio"].value) == ("number", "0.5")
    assert (fields["dry_run"].kind, fields["dry_run"].checked) == ("boolean", True)
    assert (fields["mode"].kind, fields["mode"].options) == ("enum", ["fast", "full"])
    assert (fields["columns"].kind, fields["columns"].value) == ("json", "")
    assert (fields["limit"].kind, fields["limit"].nullable) == ("integer", True)
    assert parameter_fields({}, {}) == []


def _deployment(name: str, flow: str = "f") -> SimpleNamespace:
    return SimpleNamespace(id=uuid.uuid4(), name=name, full_name=f"{flow}/{name}")


def _automation(name: str, trigger: dict, target: uuid.UUID) -> SimpleNamespace:  # type: ignore[type-arg]
    body = AutomationCreate.model_validate(
        {
            "name": name,
            "trigger": trigger,
            "actions": [{"type": "run-deployment", "deployment_id": str(target)}],
        }
    )
    return SimpleNamespace(
        id=uuid.uuid4(), name=name, enabled=True, trigger=body.trigger, actions=body.actions
    )


def test_chain_edges_and_a_layered_layout_with_a_cycle() -> None:
    a, b, c = _deployment("a"), _deployment("b"), _deployment("c")
    on = lambda name: {"type": "event", "expect": ["tideflow.flow-run.Completed"],  # noqa: E731
                       "match_related": {"tideflow.resource.name": name}}  # fmt: skip
    automations = [
        _automation("a->b", on("a"), b.id),
        _automation("b->c", {"type": "compound", "triggers": [on("b")]}, c.id),
        _automation("c->a", on("f/c"), a.id),  # full name; closes a cycle
        _automation("x->b", on("unknown"), b.id),  # watches no known deployment: no edge
    ]
    edges = chain_edges(automations, [a, b, c])
    assert {(e.upstream, e.downstream, e.automation_name) for e in edges} == {
        (a.id, b.id, "a->b"), (b.id, c.id, "b->c"), (c.id, a.id, "c->a"),
    }  # fmt: skip
    layout = layered_layout([a.id, b.id, c.id], edges, {a.id: "a", b.id: "b", c.id: "c"})
    layers = {n.id: n.layer for n in layout.nodes}
    assert len(set(layers.values())) >= 2  # the cycle does not collapse or loop forever
    assert len(layout.paths) == 3 and all(p.d.startswith("M ") for p in layout.paths)
    assert layout.width > 0 and layout.height > 0


def test_draft_from_an_event_matches_its_name_and_deployment() -> None:
    event = ReceivedEvent.model_validate({
        "event": "tideflow.flow-run.Completed",
        "resource": {"tideflow.resource.id": f"tideflow.flow-run.{uuid.uuid4()}", "tideflow.resource.name": "r"},
        "related": [{"tideflow.resource.id": f"tideflow.deployment.{uuid.uuid4()}",
                     "tideflow.resource.role": "deployment", "tideflow.resource.name": "extract"}],
    })  # fmt: skip
    draft = yaml.safe_load(draft_from_event(event))
    assert draft["trigger"]["expect"] == ["tideflow.flow-run.Completed"]
    assert draft["trigger"]["match_related"] == {
        "tideflow.resource.role": "deployment", "tideflow.resource.name": "extract",
    }  # fmt: skip
    assert draft["actions"] == [{"type": "run-deployment", "deployment_id": None}]
    # With a deployment chosen, the draft is a valid automation.
    draft["actions"][0]["deployment_id"] = str(uuid.uuid4())
    AutomationCreate.model_validate(draft)
