"""Background task-run queries (ADR 0005): create a delayed run Scheduled, list the runs a task
worker may be offered, claim one with a compare-and-set, record a worker's heartbeat, and hand back
(or crash) the runs of a worker that died. Each state change writes its ``tideflow.task-run.<State>``
event in the same transaction, as reports do.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from tideflow.schemas import State, StateType
from tideflow.schemas import states as S
from tideflow.schemas.task_runs import TaskRun, TaskRunReport
from tideflow.schemas.task_workers import TaskRunClaimResult, TaskRunCreate
from tideflow.server.events.task_run_events import task_run_state_event
from tideflow.server.storage.dialect import dialect_name, insert_ignoring_conflict
from tideflow.server.storage.errors import Conflict, NotFound
from tideflow.server.storage.events import insert_events
from tideflow.server.storage.tables import task_runs

__all__ = [
    "OFFERED_STATE_NAME",
    "cancel_task_run",
    "claim_task_run",
    "create_task_run",
    "heartbeat_task_runs",
    "read_offerable_task_runs",
    "release_task_runs",
]

# Only a background run waiting for a worker is offered; an AwaitingRetry run (also SCHEDULED) is
# being retried inside the worker that holds it.
OFFERED_STATE_NAME = "Scheduled"
# A claimed run not final yet: Pending, Running, or AwaitingRetry (SCHEDULED) between two tries in
# its worker (a handed-back run has no worker_id, so it is not matched again).
_CLAIMED = (StateType.SCHEDULED.value, StateType.PENDING.value, StateType.RUNNING.value)


def _offerable() -> list[sa.ColumnElement[bool]]:
    c = task_runs.c
    return [
        c.flow_run_id.is_(None),
        c.state_type == StateType.SCHEDULED.value,
        c.state_name == OFFERED_STATE_NAME,
    ]


def _dump_state(state: State) -> dict[str, Any]:
    # One state per change here, so the pydantic dump's cost (tens of microseconds) does not matter.
    return state.model_dump(mode="json", exclude={"data"})


def _task_run(mapping: Mapping[Any, Any]) -> TaskRun:
    m = dict(mapping)
    m["state_history"] = m.pop("history") or []
    return TaskRun.model_validate(m)


def _facts(run_id: UUID, name: str, task_name: str, tags: list[str], state: State) -> TaskRunReport:
    # What the event builder reads of a report, for a state the server itself makes.
    return TaskRunReport.model_construct(
        id=run_id, name=name, task_name=task_name, tags=tags, states=[state]
    )


async def _move(
    session: AsyncSession, row: Any, state: State, values: dict[str, Any], now: dt.datetime
) -> TaskRun:
    """Put the run in ``row`` into ``state`` (with ``values``), writing its event."""
    previous = State.model_validate(row.state) if row.state else None
    facts = _facts(row.id, row.name, row.task_name, list(row.tags), state)
    event = task_run_state_event(facts, state, previous, row.run_count, None)
    dumped = _dump_state(state)
    values = {
        "state_type": state.type.value,
        "state_name": state.name,
        "state": dumped,
        "history": [*(row.history or []), dumped],
        "updated": now,
        **values,
    }
    await session.execute(sa.update(task_runs).where(task_runs.c.id == row.id).values(values))
    await insert_events(session, [event], fresh=True)
    return _task_run({**row._mapping, **values})


async def _locked(session: AsyncSession, where: sa.ColumnElement[bool]) -> list[Any]:
    stmt = sa.select(task_runs).where(where).order_by(task_runs.c.created, task_runs.c.id)
    if dialect_name(session) == "postgresql":
        stmt = stmt.with_for_update()
    return list(await session.execute(stmt))


async def create_task_run(
    session: AsyncSession, body: TaskRunCreate, now: dt.datetime
) -> tuple[TaskRun, bool]:
    """Create the run Scheduled; ``(run, created)``: an existing id answers the stored run."""
    rows = await _locked(session, task_runs.c.id == body.id)
    if rows:
        return _task_run(rows[0]._mapping), False
    state = S.Scheduled()
    dumped = _dump_state(state)
    values = {
        "id": body.id,
        "flow_run_id": None,
        "name": body.name,
        "task_name": body.task_name,
        "tags": body.tags,
        "parameters": body.parameters,
        "task_inputs": {},
        "state_type": state.type.value,
        "state_name": state.name,
        "state": dumped,
        "history": [dumped],
        "run_count": 0,
        "deliveries": 0,
        "created": now,
        "updated": now,
    }
    # Two creates of one id racing (PostgreSQL): the loser's insert waits for the winner's commit,
    # does nothing, and answers the run the winner stored.
    if not await insert_ignoring_conflict(session, task_runs, values, ["id"]):
        rows = await _locked(session, task_runs.c.id == body.id)
        return _task_run(rows[0]._mapping), False
    facts = _facts(body.id, body.name, body.task_name, body.tags, state)
    event = task_run_state_event(facts, state, None, 0, None)
    await insert_events(session, [event], fresh=True)
    values.update(start_time=None, end_time=None, result_location=None)
    return _task_run(values), True


async def read_offerable_task_runs(
    session: AsyncSession, task_names: Sequence[str], limit: int = 10_000
) -> list[TaskRun]:
    """Background runs of these tasks waiting for a worker, oldest first."""
    if not task_names:
        return []
    stmt = (
        sa.select(task_runs)
        .where(*_offerable(), task_runs.c.task_name.in_(list(task_names)))
        .order_by(task_runs.c.created, task_runs.c.id)
        .limit(limit)
    )
    return [_task_run(row._mapping) for row in await session.execute(stmt)]


async def claim_task_run(
    session: AsyncSession,
    run_id: UUID,
    expected_state_id: UUID,
    worker_id: UUID,
    now: dt.datetime,
) -> TaskRunClaimResult:
    """Compare-and-set Scheduled → Pending for ``worker_id``: only while the run is still in the
    offered state ``expected_state_id``, so exactly one of many claimants wins."""
    rows = await _locked(session, task_runs.c.id == run_id)
    if not rows:
        return TaskRunClaimResult(
            task_run_id=run_id, claimed=False, reason=f"task run {run_id} not found"
        )
    row = rows[0]
    current = row.state or {}
    if current.get("id") != str(expected_state_id) or row.state_name != OFFERED_STATE_NAME:
        return TaskRunClaimResult(
            task_run_id=run_id,
            claimed=False,
            reason=f"the task run is {row.state_name} now, not the offered state",
        )
    state = S.Pending(worker_id=str(worker_id))
    run = await _move(
        session,
        row,
        state,
        {"worker_id": worker_id, "worker_heartbeat": now, "deliveries": row.deliveries + 1},
        now,
    )
    return TaskRunClaimResult(task_run_id=run_id, claimed=True, task_run=run)


async def heartbeat_task_runs(
    session: AsyncSession, worker_id: UUID, run_ids: Sequence[UUID], now: dt.datetime
) -> list[UUID]:
    """The worker still runs these: keep its claims alive. Answers those of them being cancelled
    (the worker stops them: a cancel pushed while it was disconnected is not lost)."""
    if not run_ids:
        return []
    mine = sa.and_(task_runs.c.worker_id == worker_id, task_runs.c.id.in_(list(run_ids)))
    await session.execute(sa.update(task_runs).where(mine).values(worker_heartbeat=now))
    cancelling = sa.select(task_runs.c.id).where(
        mine, task_runs.c.state_type == StateType.CANCELLING.value
    )
    return list((await session.execute(cancelling)).scalars())


async def cancel_task_run(
    session: AsyncSession, run_id: UUID, now: dt.datetime
) -> tuple[TaskRun, UUID | None]:
    """Cancel a background run: one no worker holds is Cancelled at once (it never starts); one a
    worker holds is Cancelling, and that worker (answered with it) stops it and reports Cancelled.

    NotFound for an unknown id; Conflict for a final run and for a task run of a flow run (the
    flow's process runs it: cancel the flow run instead).
    """
    rows = await _locked(session, task_runs.c.id == run_id)
    if not rows:
        raise NotFound(f"task run {run_id} not found")
    row = rows[0]
    if row.flow_run_id is not None:
        raise Conflict(
            f"task run {row.name!r} runs inside flow run {row.flow_run_id}: cancel the flow run"
        )
    if row.state_type in {t.value for t in S.FINAL_TYPES}:
        raise Conflict(f"task run {row.name!r} is already {row.state_name}: nothing to cancel")
    if row.state_type == StateType.CANCELLING.value:
        return _task_run(row._mapping), row.worker_id
    if row.worker_id is None:
        state = S.Cancelled(message="Cancelled before a task worker started it")
        return await _move(session, row, state, {"end_time": now}, now), None
    state = S.Cancelling(message="Cancel requested: its task worker stops it")
    return await _move(session, row, state, {}, now), row.worker_id


async def release_task_runs(
    session: AsyncSession,
    *,
    max_redeliveries: int,
    now: dt.datetime,
    worker_id: UUID | None = None,
    silent_since: dt.datetime | None = None,
) -> list[TaskRun]:
    """Hand back the unfinished runs of a dead worker (``worker_id``) or of every worker silent
    since ``silent_since``: Scheduled again while deliveries ≤ ``max_redeliveries``, else Crashed.
    Answers the runs made Scheduled (to be offered again)."""
    c = task_runs.c
    held = [*_CLAIMED, StateType.CANCELLING.value]
    where: list[sa.ColumnElement[bool]] = [c.worker_id.is_not(None), c.state_type.in_(held)]
    if worker_id is not None:
        where.append(c.worker_id == worker_id)
    if silent_since is not None:
        where.append(c.worker_heartbeat < silent_since)
    again: list[TaskRun] = []
    for row in await _locked(session, sa.and_(*where)):
        who = f"task worker {row.worker_id} stopped while running it"
        if row.state_type == StateType.CANCELLING.value:
            state = S.Cancelled(message=f"{who}; it was being cancelled")
            await _move(session, row, state, {"worker_id": None, "end_time": now}, now)
        elif row.deliveries > max_redeliveries:
            state = S.Crashed(
                message=f"{who}; delivered {row.deliveries} times, the limit "
                f"(TIDEFLOW_TASK_WORKERS_MAX_REDELIVERIES={max_redeliveries}) is reached"
            )
            await _move(session, row, state, {"worker_id": None, "end_time": now}, now)
        else:
            state = S.Scheduled(
                message=f"{who}; offered again (redelivery {row.deliveries} of {max_redeliveries})"
            )
            again.append(await _move(session, row, state, {"worker_id": None}, now))
    return again
