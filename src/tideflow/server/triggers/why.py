"""Explain an automation against a stored event with what is stored: its trigger state and the
firings the event caused. One function, so the API and the UI can never tell different stories."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from tideflow.schemas.automations import Automation, FiringRecord
from tideflow.schemas.events import ReceivedEvent
from tideflow.schemas.states import utcnow
from tideflow.server.triggers import state as trigger_state
from tideflow.server.triggers.evaluate import TriggerState
from tideflow.server.triggers.explain import Explanation, explain

__all__ = ["explain_stored"]

HISTORY_LIMIT = 1000  # firings searched for the ones this event caused


async def explain_stored(
    session: AsyncSession, automation: Automation, event: ReceivedEvent
) -> tuple[Explanation, list[FiringRecord]]:
    """The explanation on the automation's current state, and the firings ``event`` took part in."""
    states = await trigger_state.load_states(session, [automation.id])
    history = await trigger_state.read_history(session, automation.id, limit=HISTORY_LIMIT)
    event_id: UUID = event.id
    fired = [f for f in history if f.triggering_event_id == event_id or event_id in f.event_ids]
    result = explain(
        automation.trigger,
        states.get(automation.id, TriggerState()),
        event,
        enabled=automation.enabled,
        now=utcnow(),
        # Every-event triggers store no bucket: their firings are what remember the event.
        counted=any(f.kind == "fired" for f in fired),
    )
    return result, fired
