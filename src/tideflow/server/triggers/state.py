"""The trigger engine's SQL, and only it: bucket state, firings, action records and the replay
checkpoint. Pure evaluation lives in ``evaluate.py``; the engine (``engine.py``) calls these inside
the transactions it opens.

Idempotency comes from keys, not from luck: a firing row is keyed by (automation, firing id) and an
action row by (automation, firing id, action index); inserts that meet an existing key do nothing and
say so, so a replayed event or a second replica never runs an action twice.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from tideflow.schemas.automations import ActionRecord, FiringRecord
from tideflow.schemas.events import ReceivedEvent
from tideflow.server.storage.dialect import dialect_insert
from tideflow.server.storage.tables import (
    automation_actions,
    automation_buckets,
    automation_checkpoints,
    automation_firings,
    events,
    flow_run_states,
)
from tideflow.server.triggers.evaluate import BucketState, Firing, Resolution, TriggerState
from tideflow.server.triggers.guard import Lineage, lineage_from_payload

__all__ = [
    "CHECKPOINT_NAME",
    "PendingAction",
    "action_row",
    "claim_action",
    "finish_action",
    "firing_row",
    "insert_action",
    "insert_actions",
    "insert_firing",
    "insert_firings",
    "load_states",
    "read_checkpoint",
    "read_events_since",
    "read_firing",
    "read_flow_run_state_runs",
    "read_history",
    "read_pauses",
    "read_received",
    "read_run_lineage",
    "read_unfinished_actions",
    "replace_state",
    "save_bucket_changes",
    "save_buckets",
    "save_checkpoint",
]

CHECKPOINT_NAME = "triggers"


@dataclass(frozen=True)
class PendingAction:
    """An action row that has not finished (after a restart: to run, or to declare interrupted)."""

    automation_id: UUID
    firing_id: UUID
    action_index: int
    action: dict[str, Any]
    status: str


def _insert(session: AsyncSession) -> Any:
    return dialect_insert(session)


async def load_states(
    session: AsyncSession, automation_ids: list[UUID] | None = None
) -> dict[UUID, TriggerState]:
    """Stored bucket state per automation (all automations, or the given ones)."""
    stmt = sa.select(automation_buckets)
    if automation_ids is not None:
        stmt = stmt.where(automation_buckets.c.automation_id.in_(automation_ids))
    grouped: dict[UUID, dict[str, dict[str, BucketState]]] = defaultdict(dict)
    for row in await session.execute(stmt):
        m = row._mapping
        bucket = BucketState.model_validate(m["state"])
        grouped[m["automation_id"]].setdefault(str(m["trigger_id"]), {})[m["bucket_key"]] = bucket
    return {ident: TriggerState(buckets=buckets) for ident, buckets in grouped.items()}


def _bucket_row(
    automation_id: UUID, trigger_id: UUID, bucket: BucketState, now: dt.datetime
) -> dict[str, Any]:
    return {
        "automation_id": automation_id,
        "trigger_id": trigger_id,
        "bucket_key": bucket.key,
        "state": bucket.model_dump(mode="json"),
        "updated": now,
    }


async def replace_state(
    session: AsyncSession, automation_id: UUID, state: TriggerState, now: dt.datetime
) -> None:
    """Make ``state`` the automation's whole stored state."""
    await session.execute(
        sa.delete(automation_buckets).where(automation_buckets.c.automation_id == automation_id)
    )
    rows = [
        _bucket_row(automation_id, UUID(tid), bucket, now)
        for tid, buckets in state.buckets.items()
        for bucket in buckets.values()
    ]
    if rows:
        await session.execute(sa.insert(automation_buckets), rows)


async def save_buckets(
    session: AsyncSession,
    automation_id: UUID,
    state: TriggerState,
    changed: list[tuple[UUID, str]],
    now: dt.datetime,
) -> None:
    """Upsert the ``changed`` buckets present in ``state`` and delete those absent from it."""
    c = automation_buckets.c
    for trigger_id, key in changed:
        bucket = state.bucket(trigger_id, key)
        if bucket is None:
            await session.execute(
                sa.delete(automation_buckets).where(
                    c.automation_id == automation_id,
                    c.trigger_id == trigger_id,
                    c.bucket_key == key,
                )
            )
            continue
        row = _bucket_row(automation_id, trigger_id, bucket, now)
        stmt = _insert(session)(automation_buckets).values(**row)
        stmt = stmt.on_conflict_do_update(
            index_elements=["automation_id", "trigger_id", "bucket_key"],
            set_={"state": stmt.excluded.state, "updated": stmt.excluded.updated},
        )
        await session.execute(stmt)


async def save_bucket_changes(
    session: AsyncSession,
    changes: list[tuple[UUID, TriggerState, list[tuple[UUID, str]]]],
    now: dt.datetime,
) -> None:
    """``save_buckets`` for many automations at once: one upsert and one delete statement, each run
    with all its parameter sets (no per-bucket round trip)."""
    upserts: list[dict[str, Any]] = []
    deletes: list[dict[str, Any]] = []
    for automation_id, state, changed in changes:
        for trigger_id, key in changed:
            bucket = state.bucket(trigger_id, key)
            if bucket is None:
                deletes.append({"a": automation_id, "t": trigger_id, "k": key})
            else:
                upserts.append(_bucket_row(automation_id, trigger_id, bucket, now))
    c = automation_buckets.c
    if deletes:
        stmt = sa.delete(automation_buckets).where(
            c.automation_id == sa.bindparam("a"),
            c.trigger_id == sa.bindparam("t"),
            c.bucket_key == sa.bindparam("k"),
        )
        await session.execute(stmt, deletes)
    if upserts:
        ins = _insert(session)(automation_buckets)
        ins = ins.on_conflict_do_update(
            index_elements=["automation_id", "trigger_id", "bucket_key"],
            set_={"state": ins.excluded.state, "updated": ins.excluded.updated},
        )
        await session.execute(ins, upserts)


def firing_row(automation_id: UUID, firing: Firing | Resolution) -> dict[str, Any]:
    """The ``automation_firings`` row of one firing or resolution, for ``insert_firings``."""
    event = firing.triggering_event
    return {
        "automation_id": automation_id,
        "id": firing.id,
        "kind": "resolved" if isinstance(firing, Resolution) else "fired",
        "trigger_id": firing.trigger_id,
        "bucket_key": firing.bucket_key,
        "occurred": firing.occurred,
        "fired_at": firing.fired_at,
        "triggering_event_id": event.id if event is not None else None,
        "event_ids": [str(i) for i in firing.event_ids],
        "labels": dict(firing.labels),
        "firing": firing.model_dump(mode="json"),
    }


async def insert_firings(
    session: AsyncSession, rows: list[dict[str, Any]]
) -> set[tuple[UUID, UUID]]:
    """Record many firings (``firing_row``) in one statement; the (automation id, firing id) keys
    that are new (the others were recorded before: a replay)."""
    if not rows:
        return set()
    c = automation_firings.c
    stmt = (
        _insert(session)(automation_firings)
        .on_conflict_do_nothing(index_elements=["automation_id", "id"])
        .returning(c.automation_id, c.id)
    )
    unique = {(row["automation_id"], row["id"]): row for row in rows}
    result = await session.execute(stmt, list(unique.values()))
    return {(row[0], row[1]) for row in result}


async def insert_firing(
    session: AsyncSession, automation_id: UUID, firing: Firing | Resolution
) -> bool:
    """Record a firing or resolution; False when this (automation, id) was recorded before."""
    values = firing_row(automation_id, firing)
    stmt = (
        _insert(session)(automation_firings)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["automation_id", "id"])
        .returning(automation_firings.c.id)
    )
    return (await session.execute(stmt)).first() is not None


async def insert_action(
    session: AsyncSession,
    automation_id: UUID,
    firing_id: UUID,
    index: int,
    action: dict[str, Any],
    now: dt.datetime,
    *,
    status: str = "pending",
    detail: str | None = None,
    flow_run_id: UUID | None = None,
) -> bool:
    """Record one action of a firing; False when (automation, firing, index) was recorded before."""
    stmt = (
        _insert(session)(automation_actions)
        .values(
            automation_id=automation_id,
            firing_id=firing_id,
            action_index=index,
            action_type=action["type"],
            action=action,
            status=status,
            detail=detail,
            flow_run_id=flow_run_id,
            created=now,
            updated=now,
        )
        .on_conflict_do_nothing(index_elements=["automation_id", "firing_id", "action_index"])
        .returning(automation_actions.c.action_index)
    )
    return (await session.execute(stmt)).first() is not None


def action_row(
    automation_id: UUID,
    firing_id: UUID,
    index: int,
    action: dict[str, Any],
    now: dt.datetime,
    *,
    status: str = "pending",
    detail: str | None = None,
    flow_run_id: UUID | None = None,
) -> dict[str, Any]:
    """The ``automation_actions`` row of one action of a firing, for ``insert_actions``."""
    return {
        "automation_id": automation_id,
        "firing_id": firing_id,
        "action_index": index,
        "action_type": action["type"],
        "action": action,
        "status": status,
        "detail": detail,
        "flow_run_id": flow_run_id,
        "created": now,
        "updated": now,
    }


async def insert_actions(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Record many action rows (``action_row``) in one statement; keys recorded before are kept."""
    if not rows:
        return
    stmt = _insert(session)(automation_actions).on_conflict_do_nothing(
        index_elements=["automation_id", "firing_id", "action_index"]
    )
    await session.execute(stmt, rows)


def _action_key(automation_id: UUID, firing_id: UUID, index: int) -> sa.ColumnElement[bool]:
    c = automation_actions.c
    return sa.and_(
        c.automation_id == automation_id, c.firing_id == firing_id, c.action_index == index
    )


async def claim_action(
    session: AsyncSession, automation_id: UUID, firing_id: UUID, index: int, now: dt.datetime
) -> bool:
    """Move a pending action to running; False when it is not pending (done, or claimed elsewhere)."""
    stmt = (
        sa.update(automation_actions)
        .where(
            _action_key(automation_id, firing_id, index), automation_actions.c.status == "pending"
        )
        .values(status="running", updated=now)
        .returning(automation_actions.c.action_index)
    )
    return (await session.execute(stmt)).first() is not None


async def finish_action(
    session: AsyncSession,
    automation_id: UUID,
    firing_id: UUID,
    index: int,
    *,
    status: str,
    detail: str | None,
    flow_run_id: UUID | None,
    now: dt.datetime,
) -> None:
    """Record an action's outcome (``executed`` or ``failed``)."""
    await session.execute(
        sa.update(automation_actions)
        .where(_action_key(automation_id, firing_id, index))
        .values(status=status, detail=detail, flow_run_id=flow_run_id, updated=now)
    )


async def read_unfinished_actions(session: AsyncSession) -> list[PendingAction]:
    """Actions left pending or running (by a process that stopped), oldest first."""
    c = automation_actions.c
    stmt = (
        sa.select(automation_actions)
        .where(c.status.in_(["pending", "running"]))
        .order_by(c.created, c.firing_id, c.action_index)
    )
    return [
        PendingAction(
            automation_id=m["automation_id"],
            firing_id=m["firing_id"],
            action_index=m["action_index"],
            action=m["action"],
            status=m["status"],
        )
        for m in (row._mapping for row in await session.execute(stmt))
    ]


async def read_firing(
    session: AsyncSession, automation_id: UUID, firing_id: UUID
) -> Firing | Resolution | None:
    """The stored firing (or resolution) with its triggering event."""
    c = automation_firings.c
    stmt = sa.select(c.kind, c.firing).where(c.automation_id == automation_id, c.id == firing_id)
    row = (await session.execute(stmt)).first()
    if row is None:
        return None
    model = Resolution if row.kind == "resolved" else Firing
    return model.model_validate(row.firing)


PAUSED_EVENT = "tideflow.automation.paused"


async def read_pauses(
    session: AsyncSession, automation_id: UUID, limit: int = 20
) -> list[FiringRecord]:
    """The engine's pauses of the automation (its ``tideflow.automation.paused`` events), newest
    first, as history records of kind ``paused`` whose ``detail`` is the reason."""
    e = events.c
    stmt = (
        sa.select(e.id, e.occurred, e.payload)
        .where(e.resource_id == f"tideflow.automation.{automation_id}", e.event == PAUSED_EVENT)
        .order_by(e.occurred.desc(), e.id)
        .limit(limit)
    )
    out = []
    for row in await session.execute(stmt):
        payload = row.payload if isinstance(row.payload, dict) else {}
        try:
            trigger_id = UUID(str(payload.get("trigger_id")))
        except ValueError:
            continue
        out.append(
            FiringRecord(
                id=row.id,
                automation_id=automation_id,
                kind="paused",
                trigger_id=trigger_id,
                bucket_key="",
                occurred=row.occurred,
                fired_at=row.occurred,
                detail=str(payload.get("reason") or "paused by the trigger engine"),
            )
        )
    return out


async def read_run_lineage(session: AsyncSession, run_ids: list[UUID]) -> dict[UUID, Lineage]:
    """The lineage of the firings that created these runs (runs no automation created are left
    out). For explanations, not the hot path: ``flow_run_id`` has no index."""
    if not run_ids:
        return {}
    a, f = automation_actions.c, automation_firings.c
    stmt = (
        sa.select(a.flow_run_id, f.firing)
        .join(automation_firings, (f.automation_id == a.automation_id) & (f.id == a.firing_id))
        .where(a.flow_run_id.in_(run_ids))
    )
    out: dict[UUID, Lineage] = {}
    for row in await session.execute(stmt):
        firing = row.firing if isinstance(row.firing, dict) else {}
        out[row.flow_run_id] = lineage_from_payload(firing)
    return out


async def read_history(
    session: AsyncSession, automation_id: UUID, limit: int = 20
) -> list[FiringRecord]:
    """The automation's most recent firings and resolutions, newest first, with their actions,
    and the engine's pauses of it (kind ``paused``) among them."""
    pauses = await read_pauses(session, automation_id, limit)
    firings = await _read_firings(session, automation_id, limit)
    if not pauses:
        return firings
    merged = sorted([*firings, *pauses], key=lambda r: r.fired_at, reverse=True)
    return merged[:limit]


async def _read_firings(
    session: AsyncSession, automation_id: UUID, limit: int
) -> list[FiringRecord]:
    f = automation_firings.c
    stmt = (
        sa.select(automation_firings)
        .where(f.automation_id == automation_id)
        .order_by(f.fired_at.desc(), f.id)
        .limit(limit)
    )
    firings = [dict(row._mapping) for row in await session.execute(stmt)]
    if not firings:
        return []
    a = automation_actions.c
    actions: dict[UUID, list[ActionRecord]] = defaultdict(list)
    stmt2 = (
        sa.select(automation_actions)
        .where(a.automation_id == automation_id, a.firing_id.in_([r["id"] for r in firings]))
        .order_by(a.action_index)
    )
    for row in await session.execute(stmt2):
        actions[row.firing_id].append(ActionRecord.model_validate(dict(row._mapping)))
    return [
        FiringRecord.model_validate({**r, "actions": actions.get(r["id"], [])}) for r in firings
    ]


async def read_checkpoint(session: AsyncSession) -> tuple[dt.datetime, UUID] | None:
    """(received, event id) of the last event whose effects are stored, or None."""
    c = automation_checkpoints.c
    stmt = sa.select(c.received, c.event_id).where(c.name == CHECKPOINT_NAME)
    row = (await session.execute(stmt)).first()
    return (row.received, row.event_id) if row is not None else None


async def save_checkpoint(
    session: AsyncSession, received: dt.datetime, event_id: UUID, now: dt.datetime
) -> None:
    """Move the checkpoint to (received, event_id); it never moves backwards."""
    stmt = _insert(session)(automation_checkpoints).values(
        name=CHECKPOINT_NAME, received=received, event_id=event_id, updated=now
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=["name"],
        set_={
            "received": stmt.excluded.received,
            "event_id": stmt.excluded.event_id,
            "updated": stmt.excluded.updated,
        },
        where=automation_checkpoints.c.received <= stmt.excluded.received,
    )
    await session.execute(stmt)


async def read_events_since(
    session: AsyncSession, received: dt.datetime, after_id: UUID | None, limit: int
) -> list[ReceivedEvent]:
    """Stored events after (received, after_id) in (received, id) order (all at ``received`` when
    ``after_id`` is None), for replay."""
    c = events.c
    after = (
        c.received >= received
        if after_id is None
        else sa.or_(c.received > received, sa.and_(c.received == received, c.id > after_id))
    )
    stmt = sa.select(events).where(after).order_by(c.received, c.id).limit(limit)
    return [
        ReceivedEvent.model_validate(
            {
                k: m[k]
                for k in (
                    "id",
                    "occurred",
                    "event",
                    "resource",
                    "related",
                    "payload",
                    "follows",
                    "received",
                )
            }
        )
        for m in (row._mapping for row in await session.execute(stmt))
    ]


async def read_received(session: AsyncSession, event_ids: list[UUID]) -> dict[UUID, dt.datetime]:
    """When each of these events was received, for the ones that are stored."""
    if not event_ids:
        return {}
    c = events.c
    stmt = sa.select(c.id, c.received).where(c.id.in_(event_ids))
    return {row.id: row.received for row in await session.execute(stmt)}


async def read_flow_run_state_runs(
    session: AsyncSession, state_ids: list[UUID]
) -> dict[UUID, UUID]:
    """The flow run of each of these state ids that is a stored flow-run state."""
    if not state_ids:
        return {}
    c = flow_run_states.c
    stmt = sa.select(c.id, c.flow_run_id).where(c.id.in_(state_ids))
    return {row.id: row.flow_run_id for row in await session.execute(stmt)}
