"""The events automations write about themselves: ``tideflow.automation.triggered|resolved`` and
``tideflow.automation.action.triggered|executed|failed``. Pure builders, no I/O.

Ids are derived from (automation, firing, action, what happened), so a replayed firing writes the
same ids and the event store drops the repeats. The resource is the automation; related resources
name it again (role ``automation``, so related-id queries find every automation event), the
triggering event (role ``triggering-event``) and, for actions, the run they created (role
``flow-run``) and the deployment they ran (role ``deployment``). A firing's events carry its
causal lineage in the payload (``guard.LINEAGE_KEY``), so the loop guard can tell which automations
caused them. ``paused_event`` says why the engine paused an automation (``tideflow.automation.paused``).
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from typing import Any
from uuid import UUID, uuid5

from tideflow.schemas.automations import Automation
from tideflow.schemas.events import (
    RESOURCE_ID,
    RESOURCE_NAME,
    RESOURCE_ROLE,
    Event,
    RelatedResource,
    Resource,
)
from tideflow.server.triggers.evaluate import Firing, Resolution
from tideflow.server.triggers.guard import LINEAGE_KEY, lineage_payload

__all__ = [
    "EVENT_NAMESPACE",
    "action_event",
    "automation_resource_id",
    "find_resource_id",
    "firing_event",
    "paused_event",
]

EVENT_NAMESPACE = UUID("0e9d3c5a-2b7f-4d1e-8f60-7c4b1a9e2d35")


def automation_resource_id(automation_id: UUID) -> str:
    return f"tideflow.automation.{automation_id}"


@lru_cache(maxsize=4096)
def _automation_parts(automation_id: UUID, name: str) -> tuple[Resource, RelatedResource]:
    # The resource and "automation" related resource are the same on every event an automation
    # writes (several per firing): built once, shared (nothing mutates them).
    rid = automation_resource_id(automation_id)
    return (
        Resource.model_construct({RESOURCE_ID: rid, RESOURCE_NAME: name}),
        RelatedResource.model_construct(
            {RESOURCE_ID: rid, RESOURCE_ROLE: "automation", RESOURCE_NAME: name}
        ),
    )


@lru_cache(maxsize=4096)
def _triggering_event(event_id: UUID, name: str) -> RelatedResource:
    # Shared by the events of one firing (triggered, and per action triggered/executed).
    return RelatedResource.model_construct(
        {RESOURCE_ID: f"tideflow.event.{event_id}", RESOURCE_ROLE: "triggering-event",
         RESOURCE_NAME: name}
    )  # fmt: skip


def _event(
    ident: UUID,
    now: dt.datetime,
    name: str,
    automation: Automation,
    firing: Firing | Resolution,
    extra: list[dict[str, str]],
    payload: dict[str, Any],
) -> Event:
    # Built from parts that are valid by construction (our labels, JSON-safe payloads, an aware UTC
    # ``now``): validating them again cost more than writing them, at one event per firing/action.
    resource, related = _automation_parts(automation.id, automation.name)
    out = [related]
    event = firing.triggering_event
    if event is not None:
        out.append(_triggering_event(event.id, event.event))
    out.extend(RelatedResource.model_construct(r) for r in extra)
    if firing.lineage:
        payload[LINEAGE_KEY] = lineage_payload(firing.lineage)
    return Event.model_construct(
        id=ident,
        occurred=now,
        event=name,
        resource=resource,
        related=out,
        payload=payload,
        follows=None,
    )


def firing_event(automation: Automation, firing: Firing | Resolution, now: dt.datetime) -> Event:
    """``tideflow.automation.triggered`` (or ``.resolved``) for one firing."""
    kind = "resolved" if isinstance(firing, Resolution) else "triggered"
    payload: dict[str, Any] = {
        "firing_id": str(firing.id),
        "trigger_id": str(firing.trigger_id),
        "bucket_key": firing.bucket_key,
        "labels": dict(firing.labels),
        "event_ids": [str(i) for i in firing.event_ids],
    }
    if isinstance(firing, Firing):
        payload["posture"] = firing.posture
    else:
        payload["resolves"] = str(firing.firing_id)
    return _event(
        uuid5(EVENT_NAMESPACE, f"{automation.id}/{firing.id}/{kind}"),
        now,
        f"tideflow.automation.{kind}",
        automation,
        firing,
        [],
        payload,
    )


def action_event(
    automation: Automation,
    firing: Firing | Resolution,
    index: int,
    action_type: str,
    outcome: str,
    now: dt.datetime,
    *,
    detail: str | None = None,
    flow_run_id: UUID | None = None,
    flow_run_name: str | None = None,
    deployment_id: UUID | None = None,
) -> Event:
    """``tideflow.automation.action.<outcome>`` (triggered, executed or failed) for one action."""
    extra = []
    if flow_run_id is not None:
        run = {RESOURCE_ID: f"tideflow.flow-run.{flow_run_id}", RESOURCE_ROLE: "flow-run"}
        if flow_run_name:
            run[RESOURCE_NAME] = flow_run_name
        extra.append(run)
    if deployment_id is not None:
        extra.append(
            {RESOURCE_ID: f"tideflow.deployment.{deployment_id}", RESOURCE_ROLE: "deployment"}
        )
    payload: dict[str, Any] = {
        "firing_id": str(firing.id),
        "action_index": index,
        "action_type": action_type,
    }
    if detail is not None:
        payload["reason" if outcome == "failed" else "detail"] = detail
    if flow_run_id is not None:
        payload["flow_run_id"] = str(flow_run_id)
    return _event(
        uuid5(EVENT_NAMESPACE, f"{automation.id}/{firing.id}/{index}/{outcome}"),
        now,
        f"tideflow.automation.action.{outcome}",
        automation,
        firing,
        extra,
        payload,
    )


def paused_event(
    automation: Automation, guard: str, reason: str, now: dt.datetime, **details: Any
) -> Event:
    """``tideflow.automation.paused``: the engine paused ``automation`` (``guard`` names the rule)."""
    resource, related = _automation_parts(automation.id, automation.name)
    return Event.model_construct(
        id=uuid5(EVENT_NAMESPACE, f"{automation.id}/paused/{now.isoformat()}"),
        occurred=now,
        event="tideflow.automation.paused",
        resource=resource,
        related=[related],
        payload={
            **details,
            "guard": guard,
            "reason": reason,
            "trigger_id": str(automation.trigger.id),
        },
        follows=None,
    )


def find_resource_id(event: Event | None, kind: str) -> UUID | None:
    """The id of the ``tideflow.<kind>.<uuid>`` an event is about: its resource, or else the first
    related resource of that kind."""
    if event is None:
        return None
    prefix = f"tideflow.{kind}."
    for rid in [event.resource.id, *(r.id for r in event.related)]:
        if rid.startswith(prefix):
            try:
                return UUID(rid[len(prefix) :])
            except ValueError:
                continue
    return None
