"""Proactive event triggers: firing when events do not arrive, resolving when they do, deadlines."""

from __future__ import annotations

import datetime as dt

import pytest
from pydantic import ValidationError

from tideflow.schemas.automations import EventTrigger
from tideflow.schemas.events import Event
from tideflow.server.triggers.evaluate import (
    Evaluation,
    TriggerState,
    evaluate_deadlines,
    evaluate_event,
    initial_state,
    next_deadline,
)

T0 = dt.datetime(2025, 5, 1, 12, 0, tzinfo=dt.UTC)


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def ev(name: str, seconds: float, rid: str = "tideflow.flow-run.1") -> Event:
    return Event(event=name, occurred=at(seconds), resource={"tideflow.resource.id": rid})


def step(trigger: EventTrigger, state: TriggerState, event: Event) -> Evaluation:
    return evaluate_event(trigger, state, event, event.occurred)


def test_proactive_needs_a_window() -> None:
    with pytest.raises(ValidationError, match="Proactive trigger needs within > 0"):
        EventTrigger(posture="Proactive", expect={"a"})


def test_fires_when_nothing_arrives_from_the_start_and_resolves_later() -> None:
    trigger = EventTrigger(posture="Proactive", expect={"backup.done"}, within=3600)
    state = initial_state(trigger, T0)
    assert next_deadline(trigger, state) == at(3600)
    early = evaluate_deadlines(trigger, state, at(3599))
    assert early.firings == [] and early.state == state
    fired = evaluate_deadlines(trigger, state, at(3600))
    assert len(fired.firings) == 1
    firing = fired.firings[0]
    assert (
        firing.posture == "Proactive"
        and firing.occurred == at(3600)
        and firing.triggering_event is None
    )
    # it fires once per outage: no deadline while it waits for resolution
    assert next_deadline(trigger, fired.state) is None
    assert evaluate_deadlines(trigger, fired.state, at(99999)).firings == []
    done = ev("backup.done", 4000)
    resolved = step(trigger, fired.state, done)
    assert resolved.firings == [] and len(resolved.resolutions) == 1
    resolution = resolved.resolutions[0]
    assert resolution.firing_id == firing.id and resolution.triggering_event == done
    # the next window starts at the event that resolved it
    assert next_deadline(trigger, resolved.state) == at(4000 + 3600)


def test_events_in_time_restart_the_window_and_never_fire() -> None:
    trigger = EventTrigger(posture="Proactive", expect={"hb"}, within=60)
    state = initial_state(trigger, T0)
    for t in (30, 80, 130):
        result = step(trigger, state, ev("hb", t))
        assert result.firings == [] and result.resolutions == []
        state = evaluate_deadlines(trigger, result.state, at(t + 1)).state
        assert next_deadline(trigger, state) == at(t + 60)


def test_threshold_counts_within_the_window() -> None:
    trigger = EventTrigger(posture="Proactive", expect={"a"}, threshold=3, within=60)
    state = initial_state(trigger, T0)
    for t in (10, 20):
        state = step(trigger, state, ev("a", t)).state
    fired = evaluate_deadlines(trigger, state, at(60))
    assert len(fired.firings) == 1
    assert len(fired.firings[0].event_ids) == 2  # the events that did arrive
    resolved = step(trigger, fired.state, ev("a", 70))
    assert len(resolved.resolutions) == 1


def test_late_deadline_processing_is_caught_up_by_the_next_event() -> None:
    trigger = EventTrigger(posture="Proactive", expect={"a"}, within=60)
    state = initial_state(trigger, T0)
    # the engine never swept at 60; the event at 90 shows the window had already passed
    result = step(trigger, state, ev("a", 90))
    assert len(result.firings) == 1 and result.firings[0].occurred == at(60)
    assert len(result.resolutions) == 1 and result.resolutions[0].firing_id == result.firings[0].id


def test_after_opens_per_bucket_window_and_in_time_closes_it() -> None:
    trigger = EventTrigger(
        posture="Proactive",
        after={"tideflow.flow-run.Running"},
        expect={"tideflow.flow-run.Completed"},
        for_each={"tideflow.resource.id"},
        within=600,
    )
    state = initial_state(trigger, T0)
    assert next_deadline(trigger, state) is None  # nothing opened yet
    state = step(trigger, state, ev("tideflow.flow-run.Running", 0, rid="r1")).state
    state = step(trigger, state, ev("tideflow.flow-run.Running", 100, rid="r2")).state
    assert next_deadline(trigger, state) == at(600)
    state = step(trigger, state, ev("tideflow.flow-run.Completed", 300, rid="r1")).state
    assert next_deadline(trigger, state) == at(700)
    fired = evaluate_deadlines(trigger, state, at(700))
    assert [f.labels for f in fired.firings] == [{"tideflow.resource.id": "r2"}]
    assert len(fired.firings[0].event_ids) == 1  # the Running event that opened the window
    # a Completed for a run that never started does not open anything
    assert (
        step(trigger, fired.state, ev("tideflow.flow-run.Completed", 800, rid="r9")).changed == []
    )


def test_heartbeat_in_both_after_and_expect_detects_silence() -> None:
    trigger = EventTrigger(
        posture="Proactive",
        after={"hb"},
        expect={"hb", "tideflow.flow-run.Completed"},
        for_each={"tideflow.resource.id"},
        within=90,
    )
    state = initial_state(trigger, T0)
    for t in (0, 30, 60):
        result = step(trigger, state, ev("hb", t))
        assert result.firings == [] and result.resolutions == []
        state = result.state
    assert next_deadline(trigger, state) == at(150)
    fired = evaluate_deadlines(trigger, state, at(150))
    assert len(fired.firings) == 1
    back = step(trigger, fired.state, ev("hb", 200))
    assert len(back.resolutions) == 1 and next_deadline(trigger, back.state) == at(290)
    # a run that completes stops expecting heartbeats: no firing afterwards
    done = step(trigger, back.state, ev("tideflow.flow-run.Completed", 210))
    assert next_deadline(trigger, done.state) is not None  # only the idle-pruning time remains
    assert evaluate_deadlines(trigger, done.state, at(10_000)).firings == []


def test_firing_ids_are_deterministic_and_state_round_trips() -> None:
    trigger = EventTrigger(posture="Proactive", expect={"a"}, within=10)
    state = initial_state(trigger, T0)
    one = evaluate_deadlines(trigger, state, at(10))
    two = evaluate_deadlines(
        trigger, TriggerState.model_validate_json(state.model_dump_json()), at(11)
    )
    assert one.firings[0].id == two.firings[0].id
    restored = TriggerState.model_validate_json(one.state.model_dump_json())
    assert step(trigger, restored, ev("a", 12)).resolutions[0].firing_id == one.firings[0].id


def test_repeated_event_does_not_resolve_twice() -> None:
    trigger = EventTrigger(posture="Proactive", expect={"a"}, threshold=2, within=10)
    state = evaluate_deadlines(trigger, initial_state(trigger, T0), at(10)).state
    e = ev("a", 11)
    state = step(trigger, state, e).state
    assert step(trigger, state, e).resolutions == []
    assert len(step(trigger, state, ev("a", 12)).resolutions) == 1
