"""Dry-run a trigger over stored events: "it would have fired 3 times last week, with these values".

``replay_events`` is pure: it feeds events (in ``occurred`` order) to a fresh trigger state with the
same ``evaluate`` the engine uses, advancing time to each event and to the end of the window, so
Proactive triggers fire on the deadlines they would have missed. ``replay_stored`` reads the events
of a window (only the names the trigger can use, oldest first, at most ``MAX_EVENTS``), replays
them, and renders each firing's action templates as the action runner would (without the flow run
and deployment the runner also reads: templates using them answer with their error). Nothing is
stored and no action runs. Bounded: events read, deadline steps, firings reported.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from tideflow.schemas.automations import (
    Action,
    AutomationCreate,
    CallWebhook,
    ChangeFlowRunState,
    RunDeployment,
    SendNotification,
    iter_triggers,
)
from tideflow.schemas.events import Event, EventFilter
from tideflow.schemas.triggers import EventTrigger, MetricTrigger
from tideflow.server.storage.events import read_events
from tideflow.server.triggers.evaluate import (
    AnyTrigger,
    Firing,
    evaluate_deadlines,
    evaluate_event,
    initial_state,
    next_deadline,
)
from tideflow.server.triggers.template_budget import TemplateLimits
from tideflow.server.triggers.templates import TemplateError, arender_value, base_context

__all__ = [
    "MAX_EVENTS",
    "MAX_FIRINGS",
    "MAX_WINDOW",
    "Replay",
    "ReplayedAction",
    "ReplayedFiring",
    "replay_events",
    "replay_stored",
    "replay_window",
]

MAX_EVENTS = 5_000  # events read for one replay
MAX_FIRINGS = 200  # firings reported (and rendered)
MAX_STEPS = 20_000  # deadline evaluations (a Proactive trigger with a short window)
MAX_WINDOW = dt.timedelta(days=31)
_PAGE = 500


class ReplayedAction(BaseModel):
    """One action of a replayed firing: its templates rendered, or why they would fail."""

    index: int
    type: str
    values: dict[str, Any] | None = Field(None, description="Rendered template fields.")
    error: str | None = None


class ReplayedFiring(BaseModel):
    """A firing the trigger would have made."""

    occurred: AwareDatetime
    posture: str
    triggering_event_id: UUID | None
    event_ids: list[UUID]
    labels: dict[str, str]
    actions: list[ReplayedAction]


class Replay(BaseModel):
    """What the trigger would have done over ``[since, until]``."""

    since: AwareDatetime
    until: AwareDatetime
    events_considered: int
    events_truncated: bool = Field(description=f"More than {MAX_EVENTS} events: the rest unread.")
    fired: int
    firings: list[ReplayedFiring]
    firings_truncated: bool
    summary: str
    backfilled: int | None = Field(
        None, description="With backfill: the firings recorded now (those not recorded before)."
    )


def replay_events(
    trigger: AnyTrigger, events: Iterable[Event], since: dt.datetime, until: dt.datetime
) -> tuple[list[Firing], bool]:
    """Firings of ``trigger`` started at ``since`` over ``events``, time advanced to ``until``;
    and whether the deadline steps ran out (the result is then a prefix)."""
    state = initial_state(trigger, since)
    firings: list[Firing] = []
    steps = 0

    def advance(now: dt.datetime) -> bool:
        nonlocal state, steps
        while (deadline := next_deadline(trigger, state)) is not None and deadline <= now:
            steps += 1
            if steps > MAX_STEPS or len(firings) > MAX_FIRINGS:
                return False
            result = evaluate_deadlines(trigger, state, deadline)
            state = result.state
            firings.extend(result.firings)
        return True

    for event in sorted(events, key=lambda e: (e.occurred, str(e.id))):
        if not advance(event.occurred):
            return firings, True
        result = evaluate_event(trigger, state, event, event.occurred)
        state = result.state
        firings.extend(result.firings)
    return firings, not advance(until)


def _names(trigger: AnyTrigger) -> list[str] | None:
    """Event-name patterns the trigger reads; None when some leaf takes any event."""
    names: set[str] = set()
    for leaf in iter_triggers(trigger):
        if isinstance(leaf, EventTrigger):
            if not leaf.expect:
                return None
            names |= leaf.expect | leaf.after
    return sorted(names)


async def _read_window(
    session: AsyncSession, trigger: AnyTrigger, since: dt.datetime, until: dt.datetime
) -> tuple[list[Event], bool]:
    flt = EventFilter(
        occurred_after=since,
        occurred_before=until,
        event_patterns=_names(trigger),
        order="oldest",
        limit=_PAGE,
    )
    out: list[Event] = []
    while len(out) < MAX_EVENTS:
        page = await read_events(session, flt)
        out.extend(page.events)
        if page.next_cursor is None:
            return out[:MAX_EVENTS], False
        flt = flt.model_copy(update={"cursor": page.next_cursor})
    return out[:MAX_EVENTS], True


def _template_fields(action: Action) -> dict[str, Any]:
    if isinstance(action, RunDeployment):
        return {"parameters": action.parameters or {}}
    if isinstance(action, CallWebhook):
        return {"headers": action.headers, "body": action.body}
    if isinstance(action, SendNotification):
        return {"subject": action.subject, "body": action.body}
    if isinstance(action, ChangeFlowRunState):
        return {"message": action.message}
    return {}


async def _actions(
    automation: AutomationCreate, firing: Firing, by_id: dict[UUID, Event], limits: TemplateLimits
) -> list[ReplayedAction]:
    context = base_context(
        automation.model_dump(mode="json"),
        firing,
        [by_id[i] for i in firing.event_ids if i in by_id],
        firing.occurred,
    )
    out = []
    for index, action in enumerate(automation.firing_actions()):
        fields = _template_fields(action)
        try:
            values = {
                name: await arender_value(value, context, where=name, limits=limits)
                for name, value in fields.items()
            }
            out.append(ReplayedAction(index=index, type=action.type, values=values or None))
        except TemplateError as exc:
            out.append(ReplayedAction(index=index, type=action.type, error=str(exc)))
    return out


def _when(value: dt.datetime) -> str:
    return value.isoformat(timespec="seconds")


async def replay_window(
    session: AsyncSession, trigger: AnyTrigger, since: dt.datetime, until: dt.datetime
) -> tuple[list[Event], list[Firing], bool, bool]:
    """The events read and the firings of ``trigger`` over ``[since, until]``, whether the events
    were cut at ``MAX_EVENTS`` and whether the deadline steps ran out; ValueError for a bad window.
    Firing ids are the engine's (deterministic), so a backfill can tell which were recorded."""
    if until <= since:
        raise ValueError(f"until ({_when(until)}) must be after since ({_when(since)})")
    if until - since > MAX_WINDOW:
        raise ValueError(f"the window is longer than {MAX_WINDOW.days} days")
    events, events_truncated = await _read_window(session, trigger, since, until)
    firings, steps_out = replay_events(trigger, events, since, until)
    return events, firings, events_truncated, steps_out


async def replay_stored(
    session: AsyncSession,
    automation: AutomationCreate,
    since: dt.datetime,
    until: dt.datetime,
    limits: TemplateLimits | None = None,
) -> Replay:
    """Replay ``automation``'s trigger over the stored events of ``[since, until]`` (at most
    ``MAX_WINDOW`` long); ValueError naming what is wrong with the window."""
    if isinstance(automation.trigger, MetricTrigger):
        raise ValueError(
            "a metric trigger measures stored runs, not events: it has nothing to replay "
            "(GET /api/automations/{id}/metric says what it measures now)"
        )
    events, firings, events_truncated, steps_out = await replay_window(
        session, automation.trigger, since, until
    )
    by_id = {e.id: e for e in events}
    limits = limits or TemplateLimits()
    shown: Sequence[Firing] = firings[:MAX_FIRINGS]
    replayed = [
        ReplayedFiring(
            occurred=f.occurred,
            posture=f.posture,
            triggering_event_id=f.triggering_event.id if f.triggering_event else None,
            event_ids=f.event_ids,
            labels=f.labels,
            actions=await _actions(automation, f, by_id, limits),
        )
        for f in shown
    ]
    times = "once" if len(firings) == 1 else f"{len(firings)} times"
    summary = (
        f"would have fired {times} between {_when(since)} and {_when(until)} "
        f"({len(events)} matching event(s) read)"
    )
    if events_truncated or steps_out:
        summary += "; stopped early (too many events or deadlines): the count is a lower bound"
    return Replay(
        since=since,
        until=until,
        events_considered=len(events),
        events_truncated=events_truncated,
        fired=len(firings),
        firings=replayed,
        firings_truncated=len(firings) > MAX_FIRINGS or steps_out,
        summary=summary,
    )
