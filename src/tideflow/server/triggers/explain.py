"""Explain one trigger against one event: every criterion with the values compared, and a verdict.

The verdict comes from running the real evaluation (``evaluate_event``) on the given state, so the
explanation cannot disagree with what the engine would do. Composites explain each child, nested.
The engine's loop guards are explained too: an event the automation's own actions caused too deep
(``causal_depth``) is not evaluated, and an automation the engine paused says why (``paused_reason``).
"""

from __future__ import annotations

import datetime as dt
from uuid import UUID

from pydantic import BaseModel, Field

from tideflow.schemas.automations import (
    CompoundTrigger,
    EventTrigger,
    ResourceSpecification,
    SequenceTrigger,
)
from tideflow.schemas.events import Event, label_value_matches
from tideflow.server.triggers.evaluate import (
    AnyTrigger,
    TriggerState,
    bucket_key,
    deadline_of,
    evaluate_event,
    qualify,
)
from tideflow.server.triggers.guard import DEFAULT_MAX_CAUSAL_DEPTH, depth_detail

__all__ = ["Criterion", "Explanation", "explain"]


class Criterion(BaseModel):
    """One check: its name, whether it passed (None = information only) and what was compared."""

    name: str
    matched: bool | None
    detail: str


class Explanation(BaseModel):
    """Why a trigger would or would not fire on an event."""

    trigger_id: UUID
    trigger_type: str
    verdict: str
    would_fire: bool
    criteria: list[Criterion] = Field(default_factory=list)
    children: list[Explanation] = Field(default_factory=list)

    def lines(self, indent: int = 0) -> list[str]:
        """Readable lines for the CLI: verdict first, then each criterion marked ✓ / ✗ / ·."""
        pad = "  " * indent
        out = [f"{pad}{self.trigger_type} trigger {self.trigger_id}: {self.verdict}"]
        for c in self.criteria:
            mark = "·" if c.matched is None else ("✓" if c.matched else "✗")
            out.append(f"{pad}  {mark} {c.name}: {c.detail}")
        for child in self.children:
            out.extend(child.lines(indent + 1))
        return out


def _fmt(expected: str | list[str]) -> str:
    return repr(expected) if isinstance(expected, str) else "any of " + repr(expected)


def _names(values: set[str]) -> str:
    return "{" + ", ".join(repr(v) for v in sorted(values)) + "}"


def _related_criteria(
    index: int, spec: ResourceSpecification, event: Event, matched: bool
) -> list[Criterion]:
    related = [r.root for r in event.related]
    out = []
    for label, expected in spec.items():
        values = [r.get(label) for r in related]
        present = [v for v in values if v is not None]
        ok = any(label_value_matches(expected, v) for v in values)
        out.append(
            Criterion(
                name=f"match_related[{index}] {label}",
                matched=ok,
                detail=f"expected {_fmt(expected)}, related resources had {present!r}",
            )
        )
    if len(spec) > 1:
        out.append(
            Criterion(
                name=f"match_related[{index}]",
                matched=matched,
                detail="one related resource satisfies every label"
                if matched
                else "no single related resource satisfies every label",
            )
        )
    if not len(spec):
        out.append(
            Criterion(
                name=f"match_related[{index}]", matched=True, detail="empty: matches anything"
            )
        )
    return out


def _event_criteria(
    trigger: EventTrigger, state: TriggerState, event: Event, counted: bool
) -> tuple[list[Criterion], str]:
    q = qualify(trigger, event)
    criteria = [
        Criterion(
            name="expect",
            matched=q.is_expected,
            detail=(
                f"any event (expect is empty); got {event.event!r}"
                if not trigger.expect
                else f"{event.event!r} {'is' if q.is_expected else 'is not'} in {_names(trigger.expect)}"
            ),
        )
    ]
    if trigger.after:
        criteria.append(
            Criterion(
                name="after",
                matched=None,
                detail=f"{event.event!r} {'opens' if q.is_after else 'does not open'} a bucket "
                f"(after {_names(trigger.after)})",
            )
        )
    for label, expected in trigger.match.items():
        value = event.resource.get(label)
        criteria.append(
            Criterion(
                name=f"match {label}",
                matched=label_value_matches(expected, value),
                detail=f"expected {_fmt(expected)}, resource had "
                + (repr(value) if value is not None else "no such label"),
            )
        )
    if not len(trigger.match):
        criteria.append(
            Criterion(
                name="match", matched=True, detail=f"empty: any resource ({event.resource.id})"
            )
        )
    for i, spec in enumerate(trigger.match_related):
        criteria.extend(_related_criteria(i, spec, event, q.match_related[i]))
    key, _ = bucket_key(trigger, event)
    bucket = state.bucket(trigger.id, key)
    criteria.append(
        Criterion(name="bucket", matched=None, detail=repr(key) if key else "'' (no for_each)")
    )
    if trigger.after:
        opened = bucket.opened_at if bucket else None
        criteria.append(
            Criterion(
                name="bucket open",
                matched=opened is not None or q.is_after,
                detail=f"opened at {opened.isoformat()}"
                if opened
                else "not open: waiting for an after event",
            )
        )
    count = bucket.count if bucket else 0
    window = f"within {trigger.within:g}s" if trigger.within else "no window"
    criteria.append(
        Criterion(
            name="threshold",
            matched=None,
            detail=f"{trigger.posture}: {count} of {trigger.threshold} counted so far, {window}",
        )
    )
    if bucket is not None:
        deadline = deadline_of(trigger, bucket)
        if deadline is not None:
            criteria.append(
                Criterion(name="deadline", matched=None, detail=f"fires at {deadline.isoformat()}")
            )
    # Every-event triggers keep no bucket, so their firing history (``counted``) is what says an
    # event was counted already; counting triggers also remember recent ids in the bucket.
    if counted or (bucket is not None and event.id in bucket.recent_ids):
        criteria.append(
            Criterion(
                name="duplicate", matched=False, detail=f"event {event.id} was already counted"
            )
        )
        return criteria, "ignored: this event was already counted"
    failed = [
        c.name.split(" ")[0] for c in criteria if c.matched is False and c.name != "bucket open"
    ]
    if not q.is_expected and not q.is_after:
        failed.insert(0, "expect")
    if failed:
        return criteria, "did not match: " + ", ".join(dict.fromkeys(failed))
    if trigger.after and not q.is_after and (bucket is None or bucket.opened_at is None):
        return (
            criteria,
            f"not counted: no bucket open (waiting for one of after {_names(trigger.after)})",
        )
    return criteria, ""


def explain(
    trigger: AnyTrigger,
    state: TriggerState,
    event: Event,
    *,
    enabled: bool,
    now: dt.datetime,
    counted: bool = False,
    causal_depth: int = 0,
    max_causal_depth: int = DEFAULT_MAX_CAUSAL_DEPTH,
    paused_reason: str | None = None,
) -> Explanation:
    """For one trigger and one event: each criterion, and a verdict from the real evaluation.

    ``counted``: the automation's history shows this event already caused a firing.
    ``causal_depth``: how many of this automation's firings deep its own actions caused the event.
    ``paused_reason``: why the engine paused the automation, when it did and it is still disabled.
    """
    result = evaluate_event(trigger, state, event, now)
    looped = causal_depth >= max_causal_depth
    fired = bool(result.firings) and not counted and not looped
    criteria = [
        Criterion(
            name="enabled",
            matched=enabled,
            detail="automation is enabled"
            if enabled
            else (f"paused by the engine: {paused_reason}" if paused_reason else "disabled"),
        )
    ]
    if causal_depth > 0:
        criteria.append(
            Criterion(
                name="causal depth",
                matched=not looped,
                detail=depth_detail(causal_depth, max_causal_depth),
            )
        )
    children: list[Explanation] = []
    if isinstance(trigger, EventTrigger):
        more, summary = _event_criteria(trigger, state, event, counted)
        criteria.extend(more)
        after = result.state.bucket(trigger.id, bucket_key(trigger, event)[0])
        if fired:
            verdict = "would fire"
        elif result.resolutions:
            verdict = "would resolve"
        elif summary:
            verdict = summary
        elif after is not None and after.count:
            verdict = f"would count {after.count} of {trigger.threshold}"
        elif trigger.after and after is not None and after.opened_at is not None:
            verdict = "would open the bucket"
        else:
            verdict = "would not count"
    else:
        children = [
            explain(child, state, event, enabled=enabled, now=now) for child in trigger.triggers
        ]
        progress = result.state.bucket(trigger.id, "")
        done = len(progress.child_firings) if progress else 0
        need = trigger.required if isinstance(trigger, CompoundTrigger) else len(trigger.triggers)
        kind = "in order " if isinstance(trigger, SequenceTrigger) else ""
        window = f" within {trigger.within:g}s" if trigger.within else ""
        criteria.append(
            Criterion(
                name="children",
                matched=None,
                detail=f"{done} of {need} children fired {kind}so far{window}",
            )
        )
        verdict = "would fire" if fired else f"would not fire ({done} of {need} children)"
        if counted:
            verdict = "ignored: this event was already counted"
    if looped:
        verdict = (
            f"ignored: caused by this automation's own action {causal_depth} firing(s) deep "
            f"(limit {max_causal_depth}), a loop"
        )
    if not enabled:
        verdict = (
            f"paused by the engine (otherwise: {verdict})"
            if paused_reason
            else f"disabled (otherwise: {verdict})"
        )
    return Explanation(
        trigger_id=trigger.id,
        trigger_type=trigger.type,
        verdict=verdict,
        would_fire=fired and enabled,
        criteria=criteria,
        children=children,
    )
