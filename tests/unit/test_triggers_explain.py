"""explain(): each criterion with the values compared, verdicts that agree with evaluation, JSON, lines."""

from __future__ import annotations

import datetime as dt

from tideflow.schemas.automations import CompoundTrigger, EventTrigger
from tideflow.schemas.events import Event
from tideflow.server.triggers.evaluate import evaluate_event, initial_state
from tideflow.server.triggers.explain import Explanation, explain

T0 = dt.datetime(2025, 5, 1, 12, 0, tzinfo=dt.UTC)


def completed(deployment: str) -> Event:
    return Event(
        event="tideflow.flow-run.Completed",
        occurred=T0,
        resource={
            "tideflow.resource.id": "tideflow.flow-run.1",
            "tideflow.resource.name": "able-otter",
        },
        related=[
            {
                "tideflow.resource.id": "tideflow.flow.1",
                "tideflow.resource.role": "flow",
                "tideflow.resource.name": "upstream-flow",
            },
            {
                "tideflow.resource.id": "tideflow.deployment.1",
                "tideflow.resource.role": "deployment",
                "tideflow.resource.name": deployment,
            },
        ],
    )


SEED = EventTrigger(
    expect={"tideflow.flow-run.Completed"},
    match_related={"tideflow.resource.name": "upstream_deployment"},
)


def test_seed_trigger_would_fire() -> None:
    out = explain(
        SEED, initial_state(SEED, T0), completed("upstream_deployment"), enabled=True, now=T0
    )
    assert out.verdict == "would fire" and out.would_fire
    by_name = {c.name: c for c in out.criteria}
    assert by_name["expect"].matched and by_name["enabled"].matched
    assert by_name["match_related[0] tideflow.resource.name"].detail == (
        "expected 'upstream_deployment', related resources had ['upstream-flow', 'upstream_deployment']"
    )


def test_related_mismatch_names_the_values_compared() -> None:
    out = explain(SEED, initial_state(SEED, T0), completed("other"), enabled=True, now=T0)
    assert not out.would_fire
    assert out.verdict == "did not match: match_related[0]"
    text = "\n".join(out.lines())
    assert (
        "✗ match_related[0] tideflow.resource.name: expected 'upstream_deployment', related resources had ['upstream-flow', 'other']"
        in text
    )


def test_expect_mismatch_and_disabled() -> None:
    event = completed("upstream_deployment").model_copy(
        update={"event": "tideflow.flow-run.Failed"}
    )
    out = explain(SEED, initial_state(SEED, T0), event, enabled=True, now=T0)
    assert out.verdict == "did not match: expect"
    assert (
        "is not in {'tideflow.flow-run.Completed'}"
        in {c.name: c for c in out.criteria}["expect"].detail
    )
    off = explain(
        SEED, initial_state(SEED, T0), completed("upstream_deployment"), enabled=False, now=T0
    )
    assert off.verdict == "disabled (otherwise: would fire)" and not off.would_fire


def test_counting_verdicts_and_duplicates() -> None:
    trigger = EventTrigger(expect={"tideflow.flow-run.Completed"}, threshold=3, within=60)
    state = initial_state(trigger, T0)
    first = completed("x")
    assert explain(trigger, state, first, enabled=True, now=T0).verdict == "would count 1 of 3"
    state = evaluate_event(trigger, state, first, T0).state
    again = explain(trigger, state, first, enabled=True, now=T0)
    assert again.verdict == "ignored: this event was already counted"
    threshold = {c.name: c for c in again.criteria}["threshold"]
    assert threshold.detail == "Reactive: 1 of 3 counted so far, within 60s"


def test_every_event_trigger_counted_by_its_firing_history() -> None:
    # The engine stores no bucket for an every-event trigger (its state stays initial after it
    # fired), so the firing history is what says the event was counted.
    event = completed("upstream_deployment")
    state = initial_state(SEED, T0)
    fresh = explain(SEED, state, event, enabled=True, now=T0)
    assert fresh.verdict == "would fire" and fresh.would_fire
    seen = explain(SEED, state, event, enabled=True, now=T0, counted=True)
    assert seen.verdict == "ignored: this event was already counted" and not seen.would_fire
    duplicate = {c.name: c for c in seen.criteria}["duplicate"]
    assert duplicate.matched is False and str(event.id) in duplicate.detail
    compound = CompoundTrigger(triggers=[SEED], require="all")
    again = explain(
        compound, initial_state(compound, T0), event, enabled=True, now=T0, counted=True
    )
    assert again.verdict == "ignored: this event was already counted" and not again.would_fire


def test_after_waiting_and_match_labels() -> None:
    trigger = EventTrigger(
        after={"go"},
        expect={"tideflow.flow-run.Completed"},
        match={"tideflow.resource.name": "able-*"},
    )
    out = explain(trigger, initial_state(trigger, T0), completed("x"), enabled=True, now=T0)
    assert out.verdict.startswith("not counted: no bucket open")
    match = {c.name: c for c in out.criteria}["match tideflow.resource.name"]
    assert match.matched and match.detail == "expected 'able-*', resource had 'able-otter'"
    missing = EventTrigger(expect={"tideflow.flow-run.Completed"}, match={"team": "data"})
    detail = {
        c.name: c
        for c in explain(
            missing, initial_state(missing, T0), completed("x"), enabled=True, now=T0
        ).criteria
    }
    assert detail["match team"].detail == "expected 'data', resource had no such label"


def test_composite_nests_children_and_round_trips() -> None:
    trigger = CompoundTrigger(triggers=[SEED, EventTrigger(expect={"other"})], require="all")
    out = explain(
        trigger, initial_state(trigger, T0), completed("upstream_deployment"), enabled=True, now=T0
    )
    assert out.verdict == "would not fire (1 of 2 children)"
    assert [c.verdict for c in out.children] == ["would fire", "did not match: expect"]
    lines = out.lines()
    assert lines[0].startswith("compound trigger") and any(
        line.startswith("  event trigger") for line in lines
    )
    assert Explanation.model_validate_json(out.model_dump_json()) == out
