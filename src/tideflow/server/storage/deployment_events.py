"""The deployment's events (``tideflow.deployment.created|updated|deleted|paused|resumed|ready|
not-ready``), written with ``insert_events`` inside the transaction that made the change.

Resource ``tideflow.deployment.<id>`` named after the deployment; related: its flow (role ``flow``).
An ``updated`` event's payload lists the fields that changed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from tideflow.schemas.events import Event, RelatedResource, Resource
from tideflow.schemas.states import utcnow
from tideflow.server.storage.events import insert_events
from tideflow.server.storage.tables import deployments, flows

__all__ = ["deployment_event", "emit_deployment_event", "emit_deployment_events_for"]


def deployment_event(
    deployment_id: UUID,
    name: str,
    flow_id: UUID,
    flow_name: str,
    verb: str,
    occurred: dt.datetime,
    payload: dict[str, Any] | None = None,
) -> Event:
    """The event ``tideflow.deployment.<verb>`` about one deployment."""
    return Event(
        occurred=occurred,
        event=f"tideflow.deployment.{verb}",
        resource=Resource(
            {
                "tideflow.resource.id": f"tideflow.deployment.{deployment_id}",
                "tideflow.resource.name": name,
            }
        ),
        related=[
            RelatedResource(
                {
                    "tideflow.resource.id": f"tideflow.flow.{flow_id}",
                    "tideflow.resource.name": flow_name,
                    "tideflow.resource.role": "flow",
                }
            )
        ],
        payload=payload or {},
    )


async def emit_deployment_event(
    session: AsyncSession, deployment: Any, verb: str, payload: dict[str, Any] | None = None
) -> None:
    """Write one event about ``deployment`` (anything with id, name, flow_id and flow_name)."""
    event = deployment_event(
        deployment.id,
        deployment.name,
        deployment.flow_id,
        deployment.flow_name,
        verb,
        utcnow(),
        payload,
    )
    await insert_events(session, [event])


async def emit_deployment_events_for(
    session: AsyncSession,
    deployment_ids: Sequence[UUID],
    verb: str,
    payload: dict[str, Any] | None = None,
    occurred: dt.datetime | None = None,
) -> None:
    """Write ``verb`` events about each of ``deployment_ids`` (read for their names)."""
    if not deployment_ids:
        return
    stmt = (
        sa.select(
            deployments.c.id,
            deployments.c.name,
            deployments.c.flow_id,
            flows.c.name.label("flow_name"),
        )
        .join(flows, flows.c.id == deployments.c.flow_id)
        .where(deployments.c.id.in_(deployment_ids))
        .order_by(deployments.c.id)
    )
    now = occurred or utcnow()
    events = [
        deployment_event(row.id, row.name, row.flow_id, row.flow_name, verb, now, payload)
        for row in await session.execute(stmt)
    ]
    await insert_events(session, events)
