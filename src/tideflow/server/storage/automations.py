"""Automation queries: create, read (by id, name, filter), update, enable/disable, delete, and the
owned-automation upsert used for deployment triggers.

Every committed change queues an ``AutomationChanged`` on the broker's ``"automations"`` topic; the
trigger engine applies it to its index before it evaluates any later event. A change of trigger
deletes the automation's bucket state in the same transaction (``reset_state``), so a stale count can
never survive into the new trigger even across a crash.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from tideflow.schemas.automations import (
    Automation,
    AutomationCreate,
    AutomationFilter,
    AutomationUpdate,
)
from tideflow.schemas.states import utcnow
from tideflow.server.storage.errors import NotFound
from tideflow.server.storage.outbox import publish_after_commit
from tideflow.server.storage.tables import automation_buckets, automations

__all__ = [
    "AUTOMATIONS_TOPIC",
    "AutomationChanged",
    "create_automation",
    "delete_automation",
    "delete_automations",
    "read_automation",
    "read_automations",
    "read_automations_by_name",
    "read_owned_automations",
    "set_automation_enabled",
    "update_automation",
    "upsert_owned_automation",
]

AUTOMATIONS_TOPIC = "automations"

_JSON_FIELDS = ("trigger", "actions", "actions_on_trigger", "actions_on_resolve")


@dataclass(frozen=True)
class AutomationChanged:
    """An automation was created, changed or deleted (``automation`` None). ``reset_state``: its
    trigger is new or changed (or it was re-enabled), so counting starts over."""

    automation_id: UUID
    automation: Automation | None
    reset_state: bool


def _automation(row: Any) -> Automation:
    return Automation.model_validate(dict(row._mapping))


def _values(body: AutomationCreate | Automation) -> dict[str, Any]:
    data = body.model_dump(mode="json")
    return {
        "name": body.name,
        "description": body.description,
        "enabled": body.enabled,
        **{f: data[f] for f in _JSON_FIELDS},
        "owner_resource": body.owner_resource,
        "owner_key": body.owner_key,
    }


def _changed(
    session: AsyncSession, automation: Automation | None, ident: UUID, reset: bool
) -> None:
    publish_after_commit(session, AUTOMATIONS_TOPIC, AutomationChanged(ident, automation, reset))


async def _clear_state(session: AsyncSession, automation_id: UUID) -> None:
    await session.execute(
        sa.delete(automation_buckets).where(automation_buckets.c.automation_id == automation_id)
    )


async def create_automation(session: AsyncSession, body: AutomationCreate) -> Automation:
    """Store a new automation (a fresh id)."""
    now = utcnow()
    ident = uuid.uuid4()
    await session.execute(
        sa.insert(automations).values(id=ident, created=now, updated=now, **_values(body))
    )
    automation = await _read_existing(session, ident)
    _changed(session, automation, ident, reset=True)
    return automation


async def _read_existing(session: AsyncSession, automation_id: UUID) -> Automation:
    automation = await read_automation(session, automation_id)
    if automation is None:
        raise NotFound(f"automation {automation_id} not found")
    return automation


async def read_automation(session: AsyncSession, automation_id: UUID) -> Automation | None:
    stmt = sa.select(automations).where(automations.c.id == automation_id)
    row = (await session.execute(stmt)).first()
    return _automation(row) if row is not None else None


async def read_automations_by_name(session: AsyncSession, name: str) -> list[Automation]:
    """Every automation called ``name`` (names are not unique), oldest first."""
    stmt = (
        sa.select(automations)
        .where(automations.c.name == name)
        .order_by(automations.c.created, automations.c.id)
    )
    return [_automation(row) for row in await session.execute(stmt)]


async def read_automations(session: AsyncSession, flt: AutomationFilter) -> list[Automation]:
    """Automations matching ``flt``, sorted by name."""
    c = automations.c
    stmt = sa.select(automations)
    if flt.name is not None:
        stmt = stmt.where(c.name.in_(flt.name))
    if flt.name_like is not None:
        stmt = stmt.where(c.name.icontains(flt.name_like, autoescape=True))
    if flt.enabled is not None:
        stmt = stmt.where(c.enabled == flt.enabled)
    if flt.owner_resource is not None:
        stmt = stmt.where(c.owner_resource.in_(flt.owner_resource))
    stmt = stmt.order_by(c.name, c.created, c.id).limit(flt.limit).offset(flt.offset)
    return [_automation(row) for row in await session.execute(stmt)]


async def read_all_automations(session: AsyncSession) -> list[Automation]:
    """Every automation (the engine's index is built from these)."""
    return [_automation(row) for row in await session.execute(sa.select(automations))]


async def _store(session: AsyncSession, current: Automation, new: Automation) -> Automation:
    reset = new.model_dump(mode="json")["trigger"] != current.model_dump(mode="json")["trigger"]
    reset = reset or (new.enabled and not current.enabled)
    await session.execute(
        sa.update(automations)
        .where(automations.c.id == current.id)
        .values(updated=new.updated, **_values(new))
    )
    if reset:
        await _clear_state(session, current.id)
    stored = await _read_existing(session, current.id)
    _changed(session, stored, current.id, reset=reset)
    return stored


async def _locked(session: AsyncSession, automation_id: UUID) -> Automation:
    # FOR NO KEY UPDATE (see storage.deployments.lock_deployment): firings referencing the row
    # take FOR KEY SHARE and must not deadlock against this lock.
    stmt = (
        sa.select(automations)
        .where(automations.c.id == automation_id)
        .with_for_update(key_share=True)
    )
    row = (await session.execute(stmt)).first()
    if row is None:
        raise NotFound(f"automation {automation_id} not found")
    return _automation(row)


async def update_automation(
    session: AsyncSession, automation_id: UUID, update: AutomationUpdate
) -> Automation:
    """Apply ``update`` (raises ValueError when the result is invalid, NotFound when absent)."""
    current = await _locked(session, automation_id)
    return await _store(session, current, update.apply(current, utcnow()))


async def set_automation_enabled(
    session: AsyncSession, automation_id: UUID, enabled: bool
) -> Automation:
    """Pause (False) or resume (True); resuming starts counting afresh."""
    current = await _locked(session, automation_id)
    if current.enabled == enabled:
        return current
    return await _store(
        session, current, current.model_copy(update={"enabled": enabled, "updated": utcnow()})
    )


async def delete_automation(session: AsyncSession, automation_id: UUID) -> None:
    """Delete an automation with its state, firings and action records (ON DELETE CASCADE)."""
    stmt = sa.delete(automations).where(automations.c.id == automation_id)
    if (await session.execute(stmt.returning(automations.c.id))).first() is None:
        raise NotFound(f"automation {automation_id} not found")
    _changed(session, None, automation_id, reset=True)


async def delete_automations(session: AsyncSession, automation_ids: list[UUID]) -> None:
    """Delete several automations (absent ids are ignored)."""
    if not automation_ids:
        return
    await session.execute(sa.delete(automations).where(automations.c.id.in_(automation_ids)))
    for ident in automation_ids:
        _changed(session, None, ident, reset=True)


async def read_owned_automations(session: AsyncSession, owner_resource: str) -> list[Automation]:
    """The automations ``owner_resource`` owns, locked for update."""
    stmt = (
        sa.select(automations)
        .where(automations.c.owner_resource == owner_resource)
        .order_by(automations.c.owner_key)
        .with_for_update(key_share=True)
    )
    return [_automation(row) for row in await session.execute(stmt)]


async def upsert_owned_automation(
    session: AsyncSession, body: AutomationCreate, existing: Automation | None
) -> Automation:
    """Create the owned automation, or update ``existing`` (same owner and key) in place, keeping its
    id and, when the trigger is unchanged, its bucket state. Unchanged: nothing is written."""
    if existing is None:
        return await create_automation(session, body)
    new = Automation.model_validate(
        {**body.model_dump(), "id": existing.id, "created": existing.created, "updated": utcnow()}
    )
    if new.model_dump(exclude={"updated"}) == existing.model_dump(exclude={"updated"}):
        return existing
    return await _store(session, existing, new)
