"""Compound (all / any / N) and sequence triggers, nested composites, windows and state."""

from __future__ import annotations

import datetime as dt

import pytest
from pydantic import ValidationError

from tideflow.schemas.automations import CompoundTrigger, EventTrigger, SequenceTrigger
from tideflow.schemas.events import Event
from tideflow.server.triggers.evaluate import (
    AnyTrigger,
    Firing,
    TriggerState,
    evaluate_deadlines,
    evaluate_event,
    index_keys,
    initial_state,
    next_deadline,
)

T0 = dt.datetime(2025, 5, 1, 12, 0, tzinfo=dt.UTC)


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def ev(name: str, seconds: float) -> Event:
    return Event(event=name, occurred=at(seconds), resource={"tideflow.resource.id": "r"})


def run(
    trigger: AnyTrigger, events: list[Event], state: TriggerState | None = None
) -> tuple[TriggerState, list[Firing]]:
    state = state or initial_state(trigger, T0)
    out: list[Firing] = []
    for e in events:
        result = evaluate_event(trigger, state, e, e.occurred)
        state = result.state
        out.extend(result.firings)
    return state, out


def kids() -> list[EventTrigger]:
    return [EventTrigger(expect={"a"}), EventTrigger(expect={"b"}), EventTrigger(expect={"c"})]


def test_compound_all_fires_once_every_child_fired_in_any_order() -> None:
    trigger = CompoundTrigger(triggers=kids(), require="all")
    state, firings = run(trigger, [ev("c", 0), ev("a", 1)])
    assert firings == []
    _, firings = run(trigger, [ev("b", 2)], state)
    assert len(firings) == 1
    f = firings[0]
    assert [c.trigger_id for c in f.child_firings] == [
        trigger.triggers[2].id,
        trigger.triggers[0].id,
        trigger.triggers[1].id,
    ]
    assert (
        len(f.event_ids) == 3 and f.triggering_event is not None and f.triggering_event.event == "b"
    )
    # it resets after firing
    assert run(trigger, [ev("b", 3)], _)[1] == []


def test_compound_any_and_number() -> None:
    any_of = CompoundTrigger(triggers=kids(), require="any")
    assert len(run(any_of, [ev("b", 0), ev("c", 1)])[1]) == 2
    two = CompoundTrigger(triggers=kids(), require=2)
    _, firings = run(two, [ev("a", 0), ev("a", 1), ev("c", 2)])
    assert len(firings) == 1  # the same child twice counts once
    with pytest.raises(ValidationError, match="between 1 and 3"):
        CompoundTrigger(triggers=kids(), require=4)


def test_compound_window() -> None:
    trigger = CompoundTrigger(triggers=kids()[:2], require="all", within=60)
    assert run(trigger, [ev("a", 0), ev("b", 60)])[1] == []
    assert len(run(trigger, [ev("a", 0), ev("b", 59)])[1]) == 1
    state, _ = run(trigger, [ev("a", 0)])
    assert next_deadline(trigger, state) == at(60)
    expired = evaluate_deadlines(trigger, state, at(60))
    assert expired.state.bucket(trigger.id, "") is None and (trigger.id, "") in expired.changed


def test_sequence_requires_order() -> None:
    trigger = SequenceTrigger(triggers=kids(), within=100)
    assert run(trigger, [ev("b", 0), ev("c", 1), ev("a", 2)])[1] == []
    _, firings = run(trigger, [ev("a", 0), ev("c", 1), ev("b", 2), ev("c", 3)])
    assert len(firings) == 1
    assert [c.triggering_event.event for c in firings[0].child_firings if c.triggering_event] == [
        "a",
        "b",
        "c",
    ]
    # too slow: the window runs from the first step
    assert run(trigger, [ev("a", 0), ev("b", 50), ev("c", 100)])[1] == []
    # a repeated first step restarts the sequence from it
    assert (
        len(run(trigger, [ev("a", 0), ev("b", 50), ev("a", 60), ev("b", 120), ev("c", 150)])[1])
        == 1
    )


def test_nested_composites_and_proactive_children() -> None:
    quiet = EventTrigger(posture="Proactive", expect={"hb"}, within=30)
    inner = CompoundTrigger(
        triggers=[EventTrigger(expect={"x"}), EventTrigger(expect={"y"})], require="any"
    )
    outer = CompoundTrigger(triggers=[inner, quiet], require="all")
    state = initial_state(outer, T0)
    state, firings = run(outer, [ev("y", 5)], state)
    assert firings == []
    assert next_deadline(outer, state) == at(30)
    result = evaluate_deadlines(outer, state, at(30))
    assert len(result.firings) == 1
    f = result.firings[0]
    assert {c.trigger_id for c in f.child_firings} == {inner.id, quiet.id}
    restored = TriggerState.model_validate_json(result.state.model_dump_json())
    assert restored == result.state
    keys = index_keys(outer)
    assert keys.event_names == {"x", "y", "hb"} and not keys.all_events


def test_composite_state_round_trip_midway() -> None:
    trigger = SequenceTrigger(triggers=kids())
    events = [ev("a", 0), ev("b", 1), ev("c", 2), ev("a", 3), ev("b", 4), ev("c", 5)]
    _, straight = run(trigger, events)
    state, first = run(trigger, events[:2])
    _, rest = run(trigger, events[2:], TriggerState.model_validate_json(state.model_dump_json()))
    assert [f.id for f in first + rest] == [f.id for f in straight] and len(straight) == 2


def test_trigger_ids_must_be_unique_in_a_tree() -> None:
    child = EventTrigger(expect={"a"})
    with pytest.raises(ValidationError, match="used twice"):
        CompoundTrigger(triggers=[child, child])


def test_trigger_union_round_trips_through_json() -> None:
    trigger = SequenceTrigger(
        triggers=[
            CompoundTrigger(triggers=kids(), require=2, within=dt.timedelta(minutes=1)),
            EventTrigger(expect={"z"}),
        ]
    )
    again = SequenceTrigger.model_validate_json(trigger.model_dump_json())
    assert again == trigger
    assert isinstance(again.triggers[0], CompoundTrigger) and again.triggers[0].within == 60
