"""The flow-run state event, as a pure function of the run and its previous and new state.

``tideflow.flow-run.<StateName>`` names the run as its resource (state name/type and run count as
labels) and relates the flow, the deployment, each tag, the creator and, for triggered runs, the
triggering event. Its id is derived from the run and state ids, so writing it twice stores it once,
and ``follows`` is the id derived from the previous state: a run's events form a chain.
"""

from __future__ import annotations

import re
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from tideflow.schemas import FlowRun, State
from tideflow.schemas.events import MAX_RELATED, RESOURCE_ID, RESOURCE_NAME, RESOURCE_ROLE, Event

__all__ = ["flow_run_state_event", "related_resource", "state_event_id", "state_summary"]

_SPACE = re.compile(r"\s+")


def state_event_id(run_id: UUID, state_id: UUID) -> UUID:
    """The id of the event for ``run_id`` entering state ``state_id``."""
    return uuid5(NAMESPACE_URL, f"tideflow.flow-run.{run_id}.state.{state_id}")


def state_summary(state: State) -> dict[str, Any]:
    """A state as the payload of its event names it."""
    return {
        "type": state.type.value,
        "name": state.name,
        "message": state.message,
        "timestamp": state.timestamp.isoformat(),
    }


def related_resource(resource_id: str, role: str, name: str | None = None) -> dict[str, str]:
    """A related resource's labels."""
    out = {RESOURCE_ID: resource_id, RESOURCE_ROLE: role}
    if name is not None:
        out[RESOURCE_NAME] = name
    return out


def flow_run_state_event(
    run: FlowRun,
    state: State,
    previous: State | None,
    *,
    flow_name: str | None,
    deployment_name: str | None = None,
    triggering_event_id: UUID | None = None,
) -> Event:
    """The event for ``run`` entering ``state`` from ``previous`` (None for a new run)."""
    related = [related_resource(f"tideflow.flow.{run.flow_id}", "flow", flow_name)]
    if run.deployment_id is not None:
        related.append(
            related_resource(
                f"tideflow.deployment.{run.deployment_id}", "deployment", deployment_name
            )
        )
    # Room is kept for the creator and the triggering event within the event's related limit.
    tags = run.tags[: MAX_RELATED - 4]
    related += [related_resource(f"tideflow.tag.{tag}", "tag", tag) for tag in tags]
    if run.created_by is not None:
        related.append(related_resource(run.created_by.id, "creator", run.created_by.name))
    if triggering_event_id is not None:
        related.append(
            related_resource(f"tideflow.event.{triggering_event_id}", "triggering-event")
        )
    # State names are free text; an event name holds no whitespace.
    name = _SPACE.sub("-", state.name.strip()) or state.type.value.title()
    return Event(
        id=state_event_id(run.id, state.id),
        occurred=state.timestamp,
        event=f"tideflow.flow-run.{name}",
        resource={
            RESOURCE_ID: f"tideflow.flow-run.{run.id}",
            RESOURCE_NAME: run.name,
            "tideflow.state-name": state.name,
            "tideflow.state-type": state.type.value,
            "tideflow.run-count": str(run.run_count),
        },
        related=related,
        payload={
            "previous": state_summary(previous) if previous else None,
            "state": state_summary(state),
        },
        follows=state_event_id(run.id, previous.id) if previous is not None else None,
    )
