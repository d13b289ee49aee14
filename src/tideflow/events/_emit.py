"""``emit_event``: build an event and hand it to the process's background sender.

It returns at once with the event (its id is set here, so a resend after a reconnect is stored
once); the sending, batching, buffering and retrying happen in ``client._events.EventWorker``.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

from tideflow.client._events import event_worker
from tideflow.engine.context import current_run
from tideflow.schemas.events import Event, RelatedResource, Resource, event_limits_problem

__all__ = ["emit_event"]


def emit_event(
    event: str,
    resource: Mapping[str, str] | Resource,
    related: Sequence[Mapping[str, str] | RelatedResource] | None = None,
    payload: Mapping[str, Any] | None = None,
    occurred: dt.datetime | None = None,
    follows: UUID | None = None,
) -> Event:
    """Emit ``event`` about ``resource`` (labels holding ``tideflow.resource.id``); returns the Event.

    Never fails because the server is down: the event is sent in the background and retried. It
    waits only when the SDK buffer (``events_client_buffer``) is full while the server is reachable
    (backpressure, at most ``events_client_wait`` seconds), so a burst is slowed, not dropped; while
    the server is unreachable the oldest unsent events are dropped and counted. Invalid input (a name with spaces, no resource id, a payload that
    is not JSON or is above ``events_max_payload_bytes`` or nested deeper than 64 levels, text
    holding a lone surrogate, a label or id above its length limit) raises ValueError here: the
    server would refuse it, and an event it cannot take must not wait in the buffer.
    """
    fields: dict[str, Any] = {
        "event": event,
        "resource": resource,
        "related": list(related or []) + _run_related(related),
        "payload": dict(payload or {}),
        "follows": follows,
    }
    if occurred is not None:
        fields["occurred"] = occurred
    built = Event.model_validate(fields)
    problem = event_limits_problem(built)
    if problem:
        raise ValueError(problem)
    worker = event_worker()
    limit = worker.max_payload_bytes
    size = len(json.dumps(built.payload, separators=(",", ":")).encode())
    if size > limit:
        raise ValueError(f"payload is {size} bytes, above the limit of {limit} bytes")
    worker.enqueue(built)
    return built


def _run_related(
    given: Sequence[Mapping[str, str] | RelatedResource] | None,
) -> list[dict[str, str]]:
    """Inside a flow run, the run and its deployment as related resources (as Prefect relates
    them), so automations and the chains view can tell which deployment emitted a custom event;
    resources the caller already relates are not repeated."""
    ctx = current_run()
    if ctx is None:
        return []
    run = ctx.flow_run
    taken = {
        (r.root if isinstance(r, RelatedResource) else r).get("tideflow.resource.id")
        for r in given or []
    }
    out = []
    candidates = [(f"tideflow.flow-run.{run.id}", "flow-run", run.name)]
    if run.deployment_id is not None:
        candidates.append(
            (f"tideflow.deployment.{run.deployment_id}", "deployment", run.deployment_name or "")
        )
    for rid, role, name in candidates:
        if rid not in taken:
            labels = {"tideflow.resource.id": rid, "tideflow.resource.role": role}
            if name:
                labels["tideflow.resource.name"] = name
            out.append(labels)
    return out
