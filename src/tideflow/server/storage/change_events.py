"""Events for what people change by hand that has no event of its own: an automation enabled,
disabled or deleted (``tideflow.automation.enabled|disabled|deleted``), a work pool or queue paused
or resumed (``tideflow.work-pool.paused|resumed``, ``tideflow.work-queue.paused|resumed``). Written
with ``insert_events`` in the transaction that made the change; the payload names who did it.

``tideflow.automation.paused`` stays the trigger engine's own pause (with its reason)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from tideflow.schemas.events import Event, RelatedResource, Resource
from tideflow.schemas.states import utcnow
from tideflow.server.storage.events import insert_events

__all__ = ["CHANGE_EVENTS", "emit_change_event"]

CHANGE_EVENTS: tuple[str, ...] = (
    "tideflow.automation.enabled",
    "tideflow.automation.disabled",
    "tideflow.automation.deleted",
    "tideflow.work-pool.paused",
    "tideflow.work-pool.resumed",
    "tideflow.work-queue.paused",
    "tideflow.work-queue.resumed",
)


async def emit_change_event(
    session: AsyncSession,
    *,
    kind: str,
    object_id: Any,
    name: str,
    verb: str,
    by: str | None,
    related: list[dict[str, str]] | None = None,
) -> None:
    """Write ``tideflow.<kind>.<verb>`` about ``tideflow.<kind>.<object_id>`` named ``name``."""
    event = Event(
        occurred=utcnow(),
        event=f"tideflow.{kind}.{verb}",
        resource=Resource(
            {"tideflow.resource.id": f"tideflow.{kind}.{object_id}", "tideflow.resource.name": name}
        ),
        related=[RelatedResource(labels) for labels in related or []],
        payload={"by": by} if by else {},
    )
    await insert_events(session, [event])
