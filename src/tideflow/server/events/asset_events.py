"""What a materialization event says for the asset catalogue, as a pure function of the event.

Materialization events come from any client (the SDK's ``@materialize``, ``tideflow event emit``, a
REST call), so nothing in them is trusted: a resource id that is not an asset key means the event
is stored but not catalogued; properties or metadata of the wrong shape are left out.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from pydantic import ValidationError

from tideflow.schemas.assets import (
    ASSET_RESOURCE_ROLE,
    MATERIALIZATION_FAILED,
    MATERIALIZATION_SUCCEEDED,
    AssetProperties,
    asset_key_problem,
)
from tideflow.schemas.events import Event, uuid_after

__all__ = ["Materialization", "materialization_facts"]

_STATUS = {MATERIALIZATION_SUCCEEDED: "succeeded", MATERIALIZATION_FAILED: "failed"}
_MAX_ERROR = 10_000


@dataclass(frozen=True)
class Materialization:
    """One materialization of ``key``, as the catalogue records it."""

    key: str
    status: str
    occurred: dt.datetime
    event_id: UUID
    properties: dict[str, Any] | None
    metadata: dict[str, Any]
    error: str | None
    upstream: list[str] = field(default_factory=list)
    flow_run_id: UUID | None = None
    task_run_id: UUID | None = None


def materialization_facts(event: Event) -> Materialization | None:
    """The catalogue's view of ``event``; None when it is not a materialization of an asset key."""
    status = _STATUS.get(event.event)
    key = event.resource.id
    if status is None or asset_key_problem(key):
        return None
    payload = event.payload if isinstance(event.payload, dict) else {}
    properties: dict[str, Any] | None = None
    raw = payload.get("properties")
    if isinstance(raw, dict):
        try:
            properties = AssetProperties.model_validate(raw).model_dump(mode="json")
        except ValidationError:
            properties = None
    metadata = payload.get("metadata")
    error = payload.get("error")
    upstream: list[str] = []
    flow_run_id = task_run_id = None
    for related in event.related:
        rid, role = related.id, related.role
        if role == ASSET_RESOURCE_ROLE and rid != key and not asset_key_problem(rid):
            if rid not in upstream:
                upstream.append(rid)
        elif role == "flow-run":
            flow_run_id = uuid_after("tideflow.flow-run.", rid)
        elif role == "task-run":
            task_run_id = uuid_after("tideflow.task-run.", rid)
    return Materialization(
        key=key,
        status=status,
        occurred=event.occurred,
        event_id=event.id,
        properties=properties,
        metadata=metadata if isinstance(metadata, dict) else {},
        error=str(error)[:_MAX_ERROR] if error is not None else None,
        upstream=upstream,
        flow_run_id=flow_run_id,
        task_run_id=task_run_id,
    )
