"""Reactive event triggers: counting, windows, after/expect, for_each buckets, repeats, state round trips."""

from __future__ import annotations

import datetime as dt
from uuid import UUID, uuid4

from hypothesis import given, settings
from hypothesis import strategies as st

from tideflow.schemas.automations import EventTrigger, parse_automation
from tideflow.schemas.events import Event
from tideflow.server.triggers.evaluate import (
    IDLE_RETENTION,
    AnyTrigger,
    Firing,
    TriggerState,
    evaluate_deadlines,
    evaluate_event,
    index_keys,
    initial_state,
    is_stateless,
    next_deadline,
)

T0 = dt.datetime(2025, 5, 1, 12, 0, tzinfo=dt.UTC)


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def ev(
    name: str,
    seconds: float = 0,
    rid: str = "tideflow.flow-run.1",
    related: list[dict[str, str]] | None = None,
    **labels: str,
) -> Event:
    return Event(
        event=name,
        occurred=at(seconds),
        resource={"tideflow.resource.id": rid, **labels},
        related=related or [],
    )


def feed(
    trigger: EventTrigger, events: list[Event], state: TriggerState | None = None
) -> tuple[TriggerState, list[Firing]]:
    state = state or initial_state(trigger, T0)
    firings: list[Firing] = []
    for e in events:
        result = evaluate_event(trigger, state, e, e.occurred)
        state = result.state
        firings.extend(result.firings)
    return state, firings


def seed_completed(deployment: str = "upstream_deployment") -> Event:
    """A Completed event shaped like the one in the seed page (flow, deployment, creator related)."""
    return Event(
        event="tideflow.flow-run.Completed",
        occurred=T0,
        resource={
            "tideflow.resource.id": "tideflow.flow-run.5c2b4b6e-0f0e-4e53-9d7d-2a3b0f6c1d11",
            "tideflow.resource.name": "able-otter",
            "tideflow.state-type": "COMPLETED",
            "tideflow.state-name": "Completed",
        },
        related=[
            {
                "tideflow.resource.id": "tideflow.flow.10e099ec-8358-4146-b188-be68027ee58f",
                "tideflow.resource.role": "flow",
                "tideflow.resource.name": "upstream-flow",
            },
            {
                "tideflow.resource.id": "tideflow.deployment.be777bbd-4b15-49f3-bc1f-4d109374cee2",
                "tideflow.resource.role": "deployment",
                "tideflow.resource.name": deployment,
            },
            {
                "tideflow.resource.id": "tideflow.user.80546602-9f31-4396-ab4b-e873a5377feb",
                "tideflow.resource.role": "creator",
                "tideflow.resource.name": "stoat",
            },
        ],
    )


def test_seed_trigger_fires_on_upstream_completed_once() -> None:
    trigger = EventTrigger(
        expect={"tideflow.flow-run.Completed"},
        match_related={"tideflow.resource.name": "upstream_deployment"},
    )
    event = seed_completed()
    _state, firings = feed(trigger, [event, event])  # the same event twice fires once
    assert len(firings) == 1
    f = firings[0]
    assert f.triggering_event == event and f.event_ids == [event.id] and f.bucket_key == ""
    assert f.trigger_id == trigger.id and f.occurred == T0
    assert feed(trigger, [seed_completed("other_deployment")])[1] == []
    assert (
        feed(
            trigger,
            [ev("tideflow.flow-run.Failed", related=seed_completed().model_dump()["related"])],
        )[1]
        == []
    )


def test_firing_id_is_deterministic_and_distinct_per_event() -> None:
    trigger = EventTrigger(expect={"a"})
    e1, e2 = ev("a", 1), ev("a", 2)
    _, first = feed(trigger, [e1, e2])
    _, again = feed(trigger, [e1, e2])
    assert [f.id for f in first] == [f.id for f in again]
    assert first[0].id != first[1].id


@given(n=st.integers(0, 40), threshold=st.integers(1, 7), dup_every=st.integers(1, 5))
@settings(max_examples=60, deadline=None)
def test_without_window_fires_floor_n_over_threshold(
    n: int, threshold: int, dup_every: int
) -> None:
    trigger = EventTrigger(expect={"a"}, threshold=threshold)
    events = [ev("a", i) for i in range(n)]
    with_repeats = [
        x for i, e in enumerate(events) for x in ([e, e] if i % dup_every == 0 else [e])
    ]
    _, firings = feed(trigger, with_repeats)
    assert len(firings) == n // threshold
    assert all(len(f.event_ids) == threshold for f in firings)
    assert sorted({i for f in firings for i in f.event_ids}, key=str) == sorted(
        {e.id for e in events[: len(firings) * threshold]}, key=str
    )


@given(n=st.integers(0, 30), threshold=st.integers(2, 6), spread=st.floats(0, 9.9))
@settings(max_examples=60, deadline=None)
def test_events_inside_the_window_count_together(n: int, threshold: int, spread: float) -> None:
    trigger = EventTrigger(expect={"a"}, threshold=threshold, within=10)
    # every event within `spread` < within of the previous firing's first event: windows never slide out
    events = [
        ev("a", (i % threshold) * spread / threshold + (i // threshold) * 100) for i in range(n)
    ]
    assert len(feed(trigger, events)[1]) == n // threshold


def test_events_farther_apart_than_the_window_never_fire() -> None:
    trigger = EventTrigger(expect={"a"}, threshold=2, within=10)
    assert feed(trigger, [ev("a", i * 10) for i in range(10)])[1] == []  # window is half-open


def test_window_slides() -> None:
    trigger = EventTrigger(expect={"a"}, threshold=3, within=10)
    state, firings = feed(trigger, [ev("a", 0), ev("a", 5), ev("a", 12)])
    assert firings == []
    assert state.bucket(trigger.id, "").count == 2  # the event at 0 slid out
    state, firings = feed(trigger, [ev("a", 14)], state)
    assert len(firings) == 1 and state.bucket(trigger.id, "").count == 0


def test_after_opens_the_bucket_and_expected_events_before_it_do_not_count() -> None:
    trigger = EventTrigger(after={"start"}, expect={"done"}, threshold=2)
    state, firings = feed(trigger, [ev("done", 0), ev("done", 1), ev("start", 2), ev("done", 3)])
    assert firings == []
    state, firings = feed(trigger, [ev("done", 4)], state)
    assert len(firings) == 1
    # after firing the bucket closes: expected events alone do not count again
    state, firings = feed(trigger, [ev("done", 5), ev("done", 6)], state)
    assert firings == []
    state, firings = feed(trigger, [ev("start", 7), ev("done", 8), ev("done", 9)], state)
    assert len(firings) == 1


def test_after_window_runs_from_the_after_event() -> None:
    trigger = EventTrigger(after={"start"}, expect={"done"}, within=60)
    assert feed(trigger, [ev("start", 0), ev("done", 60)])[1] == []
    assert len(feed(trigger, [ev("start", 0), ev("done", 59)])[1]) == 1
    # a later after event moves an empty window's start
    assert len(feed(trigger, [ev("start", 0), ev("start", 50), ev("done", 100)])[1]) == 1


def test_event_in_both_after_and_expect_opens_and_counts() -> None:
    trigger = EventTrigger(after={"x"}, expect={"x"}, threshold=2)
    _, firings = feed(trigger, [ev("x", 0), ev("x", 1)])
    assert len(firings) == 1 and len(firings[0].event_ids) == 2


def test_for_each_splits_buckets() -> None:
    trigger = EventTrigger(expect={"a"}, threshold=2, for_each={"tideflow.resource.id"})
    state, firings = feed(
        trigger, [ev("a", 0, rid="r1"), ev("a", 1, rid="r2"), ev("a", 2, rid="r3")]
    )
    assert firings == [] and len(state.buckets[str(trigger.id)]) == 3
    state, firings = feed(trigger, [ev("a", 3, rid="r2")], state)
    assert len(firings) == 1
    assert firings[0].labels == {"tideflow.resource.id": "r2"}
    assert firings[0].bucket_key == '{"tideflow.resource.id":"r2"}'


def test_for_each_by_related_label() -> None:
    def dep(name: str) -> list[dict[str, str]]:
        return [
            {
                "tideflow.resource.id": f"tideflow.deployment.{name}",
                "tideflow.resource.role": "deployment",
                "tideflow.resource.name": name,
            }
        ]

    trigger = EventTrigger(
        expect={"a"}, threshold=2, for_each={"related:deployment:tideflow.resource.name"}
    )
    _, firings = feed(
        trigger,
        [ev("a", 0, related=dep("x")), ev("a", 1, related=dep("y")), ev("a", 2, related=dep("x"))],
    )
    assert len(firings) == 1 and firings[0].labels == {
        "related:deployment:tideflow.resource.name": "x"
    }
    # no related resource in that role: the label value is empty, its own bucket
    _, firings = feed(trigger, [ev("a", 0), ev("a", 1)])
    assert firings[0].labels == {"related:deployment:tideflow.resource.name": ""}


def test_state_json_round_trip_continues_identically() -> None:
    trigger = EventTrigger(after={"s"}, expect={"a"}, threshold=3, within=100, for_each={"k"})
    events = [
        ev(n, i, k=str(i % 2))
        for i, n in enumerate(["s", "s", "a", "a", "a", "a", "s", "a", "a", "a", "a", "a"])
    ]
    _, straight = feed(trigger, events)
    state, first = feed(trigger, events[:5])
    restored = TriggerState.model_validate_json(state.model_dump_json())
    assert restored == state
    _, rest = feed(trigger, events[5:], restored)
    assert [f.id for f in first + rest] == [f.id for f in straight] and straight
    assert [Firing.model_validate_json(f.model_dump_json()) for f in straight] == straight


def test_changed_rows_and_unchanged_state_for_irrelevant_events() -> None:
    trigger = EventTrigger(expect={"a"}, threshold=2, for_each={"tideflow.resource.id"})
    state = initial_state(trigger, T0)
    result = evaluate_event(trigger, state, ev("a", rid="r1"), T0)
    assert result.changed == [(trigger.id, '{"tideflow.resource.id":"r1"}')]
    ignored = evaluate_event(trigger, result.state, ev("b", rid="r1"), T0)
    assert ignored.changed == [] and ignored.state == result.state


def test_idle_buckets_are_pruned_after_retention_but_repeats_still_ignored_before() -> None:
    trigger = EventTrigger(expect={"a"})
    e = ev("a", 0)
    state, firings = feed(trigger, [e])
    assert len(firings) == 1
    assert next_deadline(trigger, state) == at(0) + IDLE_RETENTION
    kept = evaluate_deadlines(trigger, state, at(1))
    assert kept.state == state and kept.changed == []
    assert evaluate_event(trigger, kept.state, e, at(2)).firings == []
    pruned = evaluate_deadlines(trigger, state, at(0) + IDLE_RETENTION)
    assert pruned.state.buckets == {} and pruned.changed == [(trigger.id, "")]
    assert next_deadline(trigger, pruned.state) is None


def test_deadlines_expire_reactive_windows() -> None:
    trigger = EventTrigger(after={"s"}, expect={"a"}, within=30)
    state, _ = feed(trigger, [ev("s", 0)])
    assert next_deadline(trigger, state) == at(30)
    state = evaluate_deadlines(trigger, state, at(30)).state
    assert state.bucket(trigger.id, "").opened_at is None
    assert feed(trigger, [ev("a", 31)], state)[1] == []


def test_out_of_order_events_do_not_crash_or_double_fire() -> None:
    trigger = EventTrigger(expect={"a"}, threshold=2, within=10)
    events = [ev("a", 5), ev("a", 1), ev("a", 30), ev("a", 2)]
    _state, firings = feed(trigger, events + events)
    assert len(firings) == 1 and firings[0].event_ids == [events[0].id, events[1].id]


def test_index_keys() -> None:
    keys = index_keys(
        EventTrigger(expect={"tideflow.flow-run.Completed", "tideflow.*.Failed"}, after={"go"})
    )
    assert keys.event_names == {"tideflow.flow-run.Completed", "go"}
    assert (
        keys.event_patterns == {"tideflow.*.Failed"}
        and not keys.all_events
        and keys.resource_ids is None
    )
    assert keys.could_match(ev("tideflow.task-run.Failed")) and not keys.could_match(ev("x"))
    pinned = index_keys(EventTrigger(expect={"a"}, match={"tideflow.resource.id": ["r1", "r2"]}))
    assert pinned.resource_ids == {"r1", "r2"}
    assert pinned.could_match(ev("a", rid="r1")) and not pinned.could_match(ev("a", rid="r3"))
    assert index_keys(EventTrigger(match={"tideflow.resource.id": "r*"})).resource_ids is None
    assert index_keys(EventTrigger()).all_events


def test_unrelated_uuid_ids_do_not_collide() -> None:
    trigger = EventTrigger(expect={"a"})
    e1 = Event(id=UUID(int=1), event="a", occurred=T0, resource={"tideflow.resource.id": "r"})
    e2 = Event(id=uuid4(), event="a", occurred=T0, resource={"tideflow.resource.id": "r"})
    assert len(feed(trigger, [e1, e2])[1]) == 2


def test_only_top_level_reactive_threshold_one_without_after_is_stateless() -> None:
    def parse(data: dict[str, object]) -> AnyTrigger:
        return parse_automation(
            {"name": "s", "trigger": data, "actions": [{"type": "do-nothing"}]}
        ).trigger

    assert is_stateless(parse({"type": "event", "expect": ["a"], "within": 30}))
    assert not is_stateless(parse({"type": "event", "expect": ["a"], "threshold": 2}))
    assert not is_stateless(parse({"type": "event", "expect": ["a"], "after": ["b"]}))
    assert not is_stateless(parse({"type": "event", "expect": ["a"], "posture": "Proactive",
                                   "within": 10}))  # fmt: skip
    assert not is_stateless(
        parse({"type": "sequence", "triggers": [{"type": "event", "expect": ["a"]},
                                                {"type": "event", "expect": ["b"]}]})
    )  # fmt: skip
