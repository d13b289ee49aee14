"""Explain an automation against a stored event with what is stored: its trigger state, the
firings the event caused, the event's causal lineage (the firings that created the runs it is
about) and the engine's last pause of the automation. One function, so the API and the UI can never
tell different stories."""

from __future__ import annotations

import datetime as dt
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from tideflow.schemas.automations import Automation, FiringRecord, MetricTrigger
from tideflow.schemas.events import ReceivedEvent
from tideflow.schemas.states import utcnow
from tideflow.server.triggers import state as trigger_state
from tideflow.server.triggers.evaluate import TriggerState
from tideflow.server.triggers.explain import Explanation, explain
from tideflow.server.triggers.guard import DEFAULT_MAX_CAUSAL_DEPTH, event_lineage

__all__ = ["engine_pause", "explain_stored"]

HISTORY_LIMIT = 1000  # firings searched for the ones this event caused
# A pause event this close to the automation's last change is what disabled it (the engine writes
# both in one transaction; their clocks are read a moment apart).
PAUSE_SLACK = dt.timedelta(seconds=5)
_RUN = "tideflow.flow-run."


def _run_ids(event: ReceivedEvent) -> list[UUID]:
    out = []
    for rid in [event.resource.id, *(r.id for r in event.related)]:
        if rid.startswith(_RUN):
            try:
                out.append(UUID(rid[len(_RUN) :]))
            except ValueError:
                continue
    return out


def engine_pause(automation: Automation, history: list[FiringRecord]) -> FiringRecord | None:
    """The engine's pause (a history record of kind ``paused``) that disabled the automation, when
    that is why it is disabled now (no one changed it since)."""
    if automation.enabled:
        return None
    pauses = [f for f in history if f.kind == "paused"]
    if pauses and pauses[0].fired_at >= automation.updated - PAUSE_SLACK:
        return pauses[0]
    return None


async def explain_stored(
    session: AsyncSession,
    automation: Automation,
    event: ReceivedEvent,
    *,
    max_causal_depth: int = DEFAULT_MAX_CAUSAL_DEPTH,
) -> tuple[Explanation, list[FiringRecord]]:
    """The explanation on the automation's current state, and the firings ``event`` took part in."""
    states = await trigger_state.load_states(session, [automation.id])
    history = await trigger_state.read_history(session, automation.id, limit=HISTORY_LIMIT)
    runs = await trigger_state.read_run_lineage(session, _run_ids(event))
    depth = event_lineage(event, runs).get(automation.id, 0)
    pause = engine_pause(automation, history)
    paused_reason = f"{pause.detail} (at {pause.fired_at.isoformat()})" if pause else None
    event_id: UUID = event.id
    fired = [f for f in history if f.triggering_event_id == event_id or event_id in f.event_ids]
    if isinstance(automation.trigger, MetricTrigger):
        verdict = (
            "a metric trigger is not evaluated on single events: it fires on a measure of "
            "recent flow runs (GET /api/automations/{id}/metric says what it measures now)"
        )
        return Explanation(
            trigger_id=automation.trigger.id, trigger_type="metric", verdict=verdict,
            would_fire=False,
        ), fired  # fmt: skip
    result = explain(
        automation.trigger,
        states.get(automation.id, TriggerState()),
        event,
        enabled=automation.enabled,
        now=utcnow(),
        # Every-event triggers store no bucket: their firings are what remember the event.
        counted=any(f.kind == "fired" for f in fired),
        causal_depth=depth,
        max_causal_depth=max_causal_depth,
        paused_reason=paused_reason,
    )
    return result, fired
