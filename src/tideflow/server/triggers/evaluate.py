"""Pure trigger evaluation: (trigger, state, event or time) -> (new state, firings, resolutions).

No I/O and no clock: the caller passes ``now``. State is explicit, JSON-serialisable and keyed by
(trigger id, bucket key), so storage can persist it bucket by bucket and evaluation continues after a
restart exactly as it would have. Windows are half-open: an event at ``start + within`` is outside.

Reactive event triggers count qualifying ``expect`` events per bucket and fire when ``threshold`` of
them fall within ``within`` seconds (a sliding window; 0 = no window), then the bucket resets. With
``after``, a bucket only counts once an ``after`` event opened it; the window runs from that event,
and the bucket closes after firing or when the window passes.

Proactive event triggers fire when fewer than ``threshold`` expected events arrive within ``within``
of the bucket opening (an ``after`` event, or ``initial_state`` when ``after`` is empty), and resolve
when the expected events then arrive. Meeting the threshold in time closes an ``after`` bucket (the
next ``after`` event reopens it) or starts the next window at that event (no ``after``). An event in
both sets first counts for the open window and then opens a new one, which is what makes "no
heartbeat for 90 s" work.

Compound triggers fire when the required number of distinct children fired within ``within`` of
each other; sequence triggers when the children fired in order within ``within`` of the first.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from typing import Any
from uuid import UUID, uuid5

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from tideflow.schemas.automations import (
    CompoundTrigger,
    EventTrigger,
    SequenceTrigger,
    iter_triggers,
)
from tideflow.schemas.events import RESOURCE_ID, AnyEvent, Event, name_matches

__all__ = [
    "FIRING_NAMESPACE",
    "IDLE_RETENTION",
    "RECENT_IDS",
    "AnyTrigger",
    "BucketState",
    "Evaluation",
    "EventRef",
    "Firing",
    "IndexKeys",
    "Qualification",
    "Resolution",
    "TriggerState",
    "bucket_key",
    "deadline_of",
    "evaluate_deadlines",
    "evaluate_event",
    "index_keys",
    "initial_state",
    "is_stateless",
    "next_deadline",
    "qualify",
]

AnyTrigger = EventTrigger | CompoundTrigger | SequenceTrigger

FIRING_NAMESPACE = UUID("6f1c3f0e-5b1a-4f7e-9a3c-1d2b7e0c9a41")
RECENT_IDS = 64  # event ids remembered per bucket to drop repeats
IDLE_RETENTION = dt.timedelta(
    minutes=15
)  # idle, empty buckets are dropped this long after their last event


class EventRef(BaseModel):
    """An event counted in a bucket."""

    id: UUID
    occurred: AwareDatetime


class Firing(BaseModel):
    """A trigger fired. ``id`` is deterministic (uuid5 of trigger id, bucket key, event ids)."""

    id: UUID
    trigger_id: UUID
    bucket_key: str
    labels: dict[str, str] = Field(default_factory=dict, description="The for_each label values.")
    posture: str = "Reactive"
    occurred: AwareDatetime = Field(
        description="Logical time: the last event's time, or the missed deadline."
    )
    fired_at: AwareDatetime = Field(description="The 'now' of the evaluation that produced it.")
    triggering_event: AnyEvent | None = None
    event_ids: list[UUID] = Field(
        default_factory=list, description="Every event of the firing, in order."
    )
    child_firings: list[Firing] = Field(default_factory=list)
    lineage: dict[UUID, int] = Field(
        default_factory=dict,
        description="Automations whose actions caused it, with depth (set by the engine; guard.py).",
    )


class Resolution(BaseModel):
    """A Proactive firing resolved: the expected events arrived after all."""

    id: UUID
    trigger_id: UUID
    bucket_key: str
    labels: dict[str, str] = Field(default_factory=dict)
    firing_id: UUID
    occurred: AwareDatetime
    fired_at: AwareDatetime
    triggering_event: AnyEvent | None = None
    event_ids: list[UUID] = Field(default_factory=list)
    lineage: dict[UUID, int] = Field(default_factory=dict)


class BucketState(BaseModel):
    """State of one bucket of one trigger (composites keep one bucket, key "")."""

    model_config = ConfigDict(extra="forbid")

    key: str
    labels: dict[str, str] = Field(default_factory=dict)
    opened_at: AwareDatetime | None = Field(
        None, description="Gate opened / proactive window start."
    )
    opened_by: UUID | None = None
    events: list[EventRef] = Field(
        default_factory=list, description="Counted in the current window."
    )
    recent_ids: list[UUID] = Field(
        default_factory=list, description=f"Last {RECENT_IDS} event ids seen."
    )
    last_seen: AwareDatetime | None = None
    firing_id: UUID | None = Field(None, description="Proactive firing awaiting resolution.")
    child_firings: list[Firing] = Field(
        default_factory=list, description="Composite: children fired so far."
    )

    @property
    def count(self) -> int:
        return len(self.events)

    @property
    def last_event_id(self) -> UUID | None:
        return self.recent_ids[-1] if self.recent_ids else None


class TriggerState(BaseModel):
    """All state of one trigger tree: trigger id (str) -> bucket key -> bucket."""

    model_config = ConfigDict(extra="forbid")

    started_at: AwareDatetime | None = None
    buckets: dict[str, dict[str, BucketState]] = Field(default_factory=dict)

    def bucket(self, trigger_id: UUID, key: str) -> BucketState | None:
        return self.buckets.get(str(trigger_id), {}).get(key)


class Evaluation(BaseModel):
    """Result of one evaluation. ``changed`` lists (trigger id, bucket key) rows to upsert or, when
    absent from ``state``, delete."""

    state: TriggerState
    firings: list[Firing] = Field(default_factory=list)
    resolutions: list[Resolution] = Field(default_factory=list)
    changed: list[tuple[UUID, str]] = Field(default_factory=list)


class Qualification(BaseModel):
    """How one event relates to one event trigger, before any state is considered."""

    match: bool
    match_related: list[bool]
    is_after: bool
    is_expected: bool

    @property
    def passes_filters(self) -> bool:
        return self.match and all(self.match_related)

    @property
    def relevant(self) -> bool:
        return self.passes_filters and (self.is_after or self.is_expected)


# ---------------------------------------------------------------------------------------------
# Working copy


class _Work:
    """Copy-on-write view of a TriggerState during one evaluation."""

    def __init__(self, state: TriggerState, now: dt.datetime) -> None:
        self.state = state
        self.now = now
        self.maps: dict[str, dict[str, BucketState]] = {}
        self.changed: dict[tuple[UUID, str], None] = {}

    def get(self, trigger_id: UUID, key: str) -> BucketState | None:
        tid = str(trigger_id)
        source = self.maps.get(tid)
        if source is None:
            source = self.state.buckets.get(tid, {})
        return source.get(key)

    def keys(self, trigger_id: UUID) -> list[str]:
        tid = str(trigger_id)
        return list(self.maps.get(tid, self.state.buckets.get(tid, {})))

    def _map(self, trigger_id: UUID) -> dict[str, BucketState]:
        tid = str(trigger_id)
        if tid not in self.maps:
            self.maps[tid] = dict(self.state.buckets.get(tid, {}))
        return self.maps[tid]

    def put(self, trigger_id: UUID, bucket: BucketState) -> None:
        self._map(trigger_id)[bucket.key] = bucket
        self.changed[(trigger_id, bucket.key)] = None

    def drop(self, trigger_id: UUID, key: str) -> None:
        self._map(trigger_id).pop(key, None)
        self.changed[(trigger_id, key)] = None

    def result(self, firings: list[Firing], resolutions: list[Resolution]) -> Evaluation:
        buckets = {**self.state.buckets, **self.maps}
        buckets = {tid: m for tid, m in buckets.items() if m}
        state = TriggerState.model_construct(started_at=self.state.started_at, buckets=buckets)
        return Evaluation.model_construct(
            state=state, firings=firings, resolutions=resolutions, changed=list(self.changed)
        )


# ---------------------------------------------------------------------------------------------
# Event triggers


def _names_match(patterns: Iterable[str], name: str) -> bool:
    return any(name_matches(p, name) for p in patterns)


def qualify(trigger: EventTrigger, event: Event) -> Qualification:
    """Whether ``event`` passes ``match``/``match_related`` and is an after and/or expected event."""
    related = [r.root for r in event.related]
    return Qualification(
        match=trigger.match.matches(event.resource.root),
        match_related=[spec.matches_any(related) for spec in trigger.match_related],
        is_after=bool(trigger.after) and _names_match(trigger.after, event.event),
        is_expected=not trigger.expect or _names_match(trigger.expect, event.event),
    )


def bucket_key(trigger: EventTrigger, event: Event) -> tuple[str, dict[str, str]]:
    """The bucket an event falls in: (key, for_each label values). Key "" without for_each."""
    if not trigger.for_each:
        return "", {}
    labels: dict[str, str] = {}
    for label in sorted(trigger.for_each):
        if label.startswith("related:"):
            _, role, name = label.split(":", 2)
            found = event.related_by_role(role)
            labels[label] = (found[0].get(name) or "") if found else ""
        else:
            labels[label] = event.resource.get(label) or ""
    return json.dumps(labels, separators=(",", ":"), sort_keys=True), labels


def _uuid(*parts: object) -> UUID:
    return uuid5(FIRING_NAMESPACE, "|".join(str(p) for p in parts))


def _window(trigger: EventTrigger) -> dt.timedelta | None:
    return dt.timedelta(seconds=trigger.within) if trigger.within > 0 else None


def deadline_of(trigger: EventTrigger, bucket: BucketState) -> dt.datetime | None:
    """When a Proactive bucket fires unless its expected events arrive first (None: no deadline)."""
    window = _window(trigger)
    if (
        trigger.posture != "Proactive"
        or window is None
        or bucket.opened_at is None
        or bucket.firing_id
    ):
        return None
    return bucket.opened_at + window


def _remember(bucket: BucketState, event: Event) -> None:
    bucket.recent_ids = [*bucket.recent_ids[-(RECENT_IDS - 1) :], event.id]
    if bucket.last_seen is None or event.occurred > bucket.last_seen:
        bucket.last_seen = event.occurred


def _fire(
    trigger: EventTrigger,
    bucket: BucketState,
    event: Event | None,
    occurred: dt.datetime,
    now: dt.datetime,
) -> Firing:
    ids = [e.id for e in bucket.events]
    if trigger.posture == "Proactive":
        ids = [bucket.opened_by, *ids] if bucket.opened_by else ids
        ident = _uuid(
            trigger.id,
            bucket.key,
            "missed",
            bucket.opened_at.isoformat() if bucket.opened_at else "",
        )
    else:
        ident = _uuid(trigger.id, bucket.key, ",".join(str(i) for i in ids))
    return Firing(
        id=ident,
        trigger_id=trigger.id,
        bucket_key=bucket.key,
        labels=dict(bucket.labels),
        posture=trigger.posture,
        occurred=occurred,
        fired_at=now,
        triggering_event=event,
        event_ids=ids,
    )


def _reactive(
    trigger: EventTrigger, bucket: BucketState, event: Event, q: Qualification, now: dt.datetime
) -> list[Firing]:
    t = event.occurred
    window = _window(trigger)
    if trigger.after:
        if bucket.opened_at is not None and window is not None and t >= bucket.opened_at + window:
            bucket.opened_at, bucket.opened_by, bucket.events = None, None, []
        # An after event opens a closed bucket, or moves the start of an open one that counted nothing yet.
        if q.is_after and (
            bucket.opened_at is None or (not bucket.events and t >= bucket.opened_at)
        ):
            bucket.opened_at, bucket.opened_by = t, event.id
        if not q.is_expected or bucket.opened_at is None or t < bucket.opened_at:
            return []
    elif window is not None:
        # The window ends at the newest event seen; a late event older than that window is too late.
        newest = max([t, *(e.occurred for e in bucket.events)])
        bucket.events = [e for e in bucket.events if newest - e.occurred < window]
        if newest - t >= window:
            return []
    if not q.is_expected:
        return []
    bucket.events.append(EventRef(id=event.id, occurred=t))
    if bucket.count < trigger.threshold:
        return []
    firing = _fire(trigger, bucket, event, t, now)
    bucket.events = []
    if trigger.after:
        bucket.opened_at, bucket.opened_by = None, None
    return [firing]


def _proactive(
    trigger: EventTrigger, bucket: BucketState, event: Event, q: Qualification, now: dt.datetime
) -> tuple[list[Firing], list[Resolution]]:
    t = event.occurred
    firings: list[Firing] = []
    resolutions: list[Resolution] = []
    deadline = deadline_of(trigger, bucket)
    if (
        deadline is not None and t >= deadline
    ):  # the deadline passed before this event: it already failed
        firings.append(_fire(trigger, bucket, None, deadline, now))
        bucket.firing_id = firings[-1].id
    if q.is_expected and bucket.opened_at is not None and t >= bucket.opened_at:
        bucket.events.append(EventRef(id=event.id, occurred=t))
        if bucket.count >= trigger.threshold:
            if bucket.firing_id is not None:
                resolutions.append(
                    Resolution(
                        id=_uuid(trigger.id, bucket.key, "resolved", bucket.firing_id),
                        trigger_id=trigger.id,
                        bucket_key=bucket.key,
                        labels=dict(bucket.labels),
                        firing_id=bucket.firing_id,
                        occurred=t,
                        fired_at=now,
                        triggering_event=event,
                        event_ids=[e.id for e in bucket.events],
                    )
                )
                bucket.firing_id = None
            bucket.events = []
            if trigger.after:
                bucket.opened_at, bucket.opened_by = None, None
            else:
                bucket.opened_at, bucket.opened_by = t, event.id
    if q.is_after:
        bucket.opened_at, bucket.opened_by, bucket.events = t, event.id, []
    return firings, resolutions


def _event_trigger(
    trigger: EventTrigger, work: _Work, event: Event
) -> tuple[list[Firing], list[Resolution]]:
    q = qualify(trigger, event)
    if not q.relevant:
        return [], []
    key, labels = bucket_key(trigger, event)
    existing = work.get(trigger.id, key)
    if existing is not None and event.id in existing.recent_ids:
        return [], []
    if existing is None:
        if trigger.after and not q.is_after:
            return [], []  # nothing is open for this bucket; expected events alone do not count
        bucket = BucketState(key=key, labels=labels)
        if trigger.posture == "Proactive" and not trigger.after:
            bucket.opened_at = event.occurred
    else:
        bucket = existing.model_copy(deep=True)
    _remember(bucket, event)
    if trigger.posture == "Proactive":
        firings, resolutions = _proactive(trigger, bucket, event, q, work.now)
    else:
        firings, resolutions = _reactive(trigger, bucket, event, q, work.now), []
    work.put(trigger.id, bucket)
    return firings, resolutions


def _event_trigger_deadlines(trigger: EventTrigger, work: _Work) -> list[Firing]:
    firings: list[Firing] = []
    now = work.now
    window = _window(trigger)
    for key in work.keys(trigger.id):
        current = work.get(trigger.id, key)
        assert current is not None
        bucket = current.model_copy(deep=True)
        deadline = deadline_of(trigger, bucket)
        if deadline is not None and now >= deadline:
            firings.append(_fire(trigger, bucket, None, deadline, now))
            bucket.firing_id = firings[-1].id
        elif trigger.posture == "Reactive" and window is not None:
            if trigger.after and bucket.opened_at is not None and now >= bucket.opened_at + window:
                bucket.opened_at, bucket.opened_by, bucket.events = None, None, []
            elif not trigger.after:
                bucket.events = [e for e in bucket.events if now - e.occurred < window]
        if _idle(bucket, now):
            work.drop(trigger.id, key)
        elif bucket != current:
            work.put(trigger.id, bucket)
    return firings


def _idle(bucket: BucketState, now: dt.datetime) -> bool:
    expires = _idle_expiry(bucket)
    return expires is not None and now >= expires


def _idle_expiry(bucket: BucketState) -> dt.datetime | None:
    if bucket.opened_at is not None or bucket.events or bucket.firing_id or bucket.child_firings:
        return None
    return (bucket.last_seen + IDLE_RETENTION) if bucket.last_seen else None


def _event_trigger_next(trigger: EventTrigger, state: TriggerState) -> dt.datetime | None:
    window = _window(trigger)
    times: list[dt.datetime] = []
    for bucket in state.buckets.get(str(trigger.id), {}).values():
        deadline = deadline_of(trigger, bucket)
        if deadline is not None:
            times.append(deadline)
        elif trigger.posture == "Reactive" and window is not None:
            if trigger.after and bucket.opened_at is not None:
                times.append(bucket.opened_at + window)
            elif not trigger.after and bucket.events:
                times.append(min(e.occurred for e in bucket.events) + window)
        idle = _idle_expiry(bucket)
        if idle is not None:
            times.append(idle)
    return min(times, default=None)


# ---------------------------------------------------------------------------------------------
# Composite triggers


def _composite_window(trigger: CompoundTrigger | SequenceTrigger) -> dt.timedelta | None:
    return dt.timedelta(seconds=trigger.within) if trigger.within else None


def _composite_fire(
    trigger: CompoundTrigger | SequenceTrigger, records: list[Firing], now: dt.datetime
) -> Firing:
    last = records[-1]
    event_ids: list[UUID] = []
    for r in records:
        event_ids.extend(i for i in r.event_ids if i not in event_ids)
    return Firing(
        id=_uuid(trigger.id, "", ",".join(str(r.id) for r in records)),
        trigger_id=trigger.id,
        bucket_key="",
        labels=dict(last.labels),
        posture="Reactive",
        occurred=last.occurred,
        fired_at=now,
        triggering_event=last.triggering_event,
        event_ids=event_ids,
        child_firings=list(records),
    )


def _composite_feed(
    trigger: CompoundTrigger | SequenceTrigger, work: _Work, child_firings: list[Firing]
) -> list[Firing]:
    if not child_firings:
        return []
    current = work.get(trigger.id, "")
    records = list(current.child_firings) if current else []
    window = _composite_window(trigger)
    order = {child.id: i for i, child in enumerate(trigger.triggers)}
    firings: list[Firing] = []
    for f in sorted(child_firings, key=lambda f: f.occurred):
        if isinstance(trigger, CompoundTrigger):
            records = [r for r in records if r.trigger_id != f.trigger_id] + [f]
            if window is not None:
                records = [r for r in records if f.occurred - r.occurred < window]
            done = len(records) >= trigger.required
        else:
            if window is not None and records and f.occurred - records[0].occurred >= window:
                records = []
            step = order[f.trigger_id]
            if step <= len(records):
                # A repeated earlier step restarts the sequence from it.
                records = [*records[:step], f]
            done = len(records) == len(trigger.triggers)
        if done:
            firings.append(_composite_fire(trigger, records, work.now))
            records = []
    if records:
        work.put(
            trigger.id,
            BucketState(key="", child_firings=records, last_seen=child_firings[-1].occurred),
        )
    elif current is not None:
        work.drop(trigger.id, "")
    return firings


def _composite_expire(trigger: CompoundTrigger | SequenceTrigger, work: _Work) -> None:
    current = work.get(trigger.id, "")
    window = _composite_window(trigger)
    if current is None or window is None or not current.child_firings:
        return
    now = work.now
    if isinstance(trigger, SequenceTrigger):
        keep = [] if now - current.child_firings[0].occurred >= window else current.child_firings
    else:
        keep = [r for r in current.child_firings if now - r.occurred < window]
    if len(keep) != len(current.child_firings):
        if keep:
            work.put(trigger.id, current.model_copy(update={"child_firings": keep}))
        else:
            work.drop(trigger.id, "")


def _composite_next(
    trigger: CompoundTrigger | SequenceTrigger, state: TriggerState
) -> dt.datetime | None:
    bucket = state.bucket(trigger.id, "")
    window = _composite_window(trigger)
    if bucket is None or window is None or not bucket.child_firings:
        return None
    return min(r.occurred for r in bucket.child_firings) + window


# ---------------------------------------------------------------------------------------------
# Tree walk and public API


def _on_event(
    trigger: AnyTrigger, work: _Work, event: Event
) -> tuple[list[Firing], list[Resolution]]:
    if isinstance(trigger, EventTrigger):
        return _event_trigger(trigger, work, event)
    child_firings: list[Firing] = []
    for child in trigger.triggers:
        fired, _ = _on_event(
            child, work, event
        )  # child resolutions do not surface through composites
        child_firings.extend(fired)
    return _composite_feed(trigger, work, child_firings), []


def _on_time(trigger: AnyTrigger, work: _Work) -> list[Firing]:
    if isinstance(trigger, EventTrigger):
        return _event_trigger_deadlines(trigger, work)
    child_firings: list[Firing] = []
    for child in trigger.triggers:
        child_firings.extend(_on_time(child, work))
    fired = _composite_feed(trigger, work, child_firings)
    _composite_expire(trigger, work)
    return fired


def initial_state(trigger: AnyTrigger, now: dt.datetime) -> TriggerState:
    """State of a trigger that starts now (on create or enable): opens Proactive windows that have no
    ``after`` and no ``for_each``, so they fire when nothing happens from the start."""
    buckets: dict[str, dict[str, BucketState]] = {}
    for t in iter_triggers(trigger):
        if (
            isinstance(t, EventTrigger)
            and t.posture == "Proactive"
            and not t.after
            and not t.for_each
        ):
            buckets[str(t.id)] = {"": BucketState(key="", opened_at=now, last_seen=now)}
    return TriggerState(started_at=now, buckets=buckets)


def is_stateless(trigger: AnyTrigger) -> bool:
    """True for a top-level Reactive event trigger that fires on every qualifying event (threshold 1,
    no ``after``): nothing carries over between events, so its evaluation can always start from an
    empty state and nothing needs storing. Repeats are still dropped: the firing id is derived from
    the event id, and a firing row is written once."""
    return (
        isinstance(trigger, EventTrigger)
        and trigger.posture == "Reactive"
        and trigger.threshold == 1
        and not trigger.after
    )


def evaluate_event(
    trigger: AnyTrigger, state: TriggerState, event: Event, now: dt.datetime
) -> Evaluation:
    """Feed one event to a trigger tree. ``firings`` are the top-level trigger's; a repeated event id
    changes nothing. Events are assumed in ``occurred`` order per bucket (out-of-order ones are handled
    without crashing, counted by their own time)."""
    work = _Work(state, now)
    firings, resolutions = _on_event(trigger, work, event)
    return work.result(firings, resolutions)


def evaluate_deadlines(trigger: AnyTrigger, state: TriggerState, now: dt.datetime) -> Evaluation:
    """Advance a trigger tree to ``now``: fire Proactive buckets whose window passed, expire reactive
    windows and composite records, drop idle buckets."""
    work = _Work(state, now)
    firings = _on_time(trigger, work)
    return work.result(firings, [])


def next_deadline(trigger: AnyTrigger, state: TriggerState) -> dt.datetime | None:
    """The earliest time at which ``evaluate_deadlines`` would fire or change something (None: never
    without a new event)."""
    times: list[dt.datetime] = []
    for t in iter_triggers(trigger):
        found = (
            _event_trigger_next(t, state)
            if isinstance(t, EventTrigger)
            else _composite_next(t, state)
        )
        if found is not None:
            times.append(found)
    return min(times, default=None)


class IndexKeys(BaseModel):
    """What an engine may index a trigger tree under, to find candidate automations for an event
    without scanning all of them. ``could_match`` is the reference check."""

    model_config = ConfigDict(frozen=True)

    event_names: frozenset[str] = frozenset()
    event_patterns: frozenset[str] = Field(
        frozenset(), description="Names with '*': test these one by one."
    )
    all_events: bool = Field(
        False, description="Some leaf has an empty expect: any event name may count."
    )
    resource_ids: frozenset[str] | None = Field(
        None, description="When set, only events whose resource id is one of these can matter."
    )

    def could_match(self, event: Event) -> bool:
        if self.resource_ids is not None and event.resource.id not in self.resource_ids:
            return False
        return (
            self.all_events
            or event.event in self.event_names
            or any(name_matches(p, event.event) for p in self.event_patterns)
        )


def _exact_resource_ids(trigger: EventTrigger) -> frozenset[str] | None:
    spec: Any = trigger.match.root.get(RESOURCE_ID)
    values = [spec] if isinstance(spec, str) else (spec or [])
    if not values or any(v.startswith("!") or "*" in v for v in values):
        return None
    return frozenset(values)


def index_keys(trigger: AnyTrigger) -> IndexKeys:
    """Event names (exact and patterns) and resource ids any event relevant to this tree must have."""
    names: set[str] = set()
    patterns: set[str] = set()
    all_events = False
    resource_ids: set[str] | None = set()
    for t in iter_triggers(trigger):
        if not isinstance(t, EventTrigger):
            continue
        if not t.expect:
            all_events = True
        for name in t.expect | t.after:
            (patterns if "*" in name else names).add(name)
        ids = _exact_resource_ids(t)
        if ids is None or resource_ids is None:
            resource_ids = None
        else:
            resource_ids |= ids
    return IndexKeys(
        event_names=frozenset(names),
        event_patterns=frozenset(patterns),
        all_events=all_events,
        resource_ids=None if resource_ids is None else frozenset(resource_ids),
    )
