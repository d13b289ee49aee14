"""Flow-run queries: create (with its initial state), read, filter, count, state history, set_state,
delete.

``set_state`` is the one place a run's state changes: in one transaction it locks the run's row
(``FOR NO KEY UPDATE`` on PostgreSQL; SQLite's single writer is serialised by ``Database.write``), asks
``orchestration.decide`` and applies the decision, so a proposal with ``expected_state_id`` is a true
compare-and-set. A claim of a run whose deployment has a ``concurrency_limit`` counts the
deployment's active runs under a lock on the deployment's row (PostgreSQL) and passes the fact "a slot
is free" to ``decide``, which answers WAIT when it is not.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from tideflow.schemas import (
    FlowRun,
    FlowRunCreate,
    FlowRunFilter,
    FlowRunSort,
    State,
    StateProposal,
)
from tideflow.schemas.objects import SetStateStatus
from tideflow.schemas.states import Pending, StateType, utcnow
from tideflow.server.orchestration import ACTIVE_TYPES, Decision, RunFacts, decide, takes_a_slot
from tideflow.server.storage.dialect import (
    dialect_name,
    insert_ignoring_conflict,
    json_array_contains_all,
)
from tideflow.server.storage.errors import Conflict, NotFound, is_unique_violation
from tideflow.server.storage.flows import create_or_get_flow, read_flow
from tideflow.server.storage.names import generate_name
from tideflow.server.storage.run_changes import record_state_change, record_state_changes
from tideflow.server.storage.tables import (
    deployments,
    flow_run_states,
    flow_runs,
    flows,
    work_pools,
    work_queues,
)

__all__ = [
    "count_flow_runs",
    "create_flow_run",
    "delete_flow_run",
    "filter_clauses",
    "read_flow_run",
    "read_flow_run_states",
    "read_flow_runs",
    "set_flow_run_state",
]

_SELECT = sa.select(
    flow_runs, flows.c.name.label("flow_name"), deployments.c.name.label("deployment_name")
).select_from(
    flow_runs.join(flows, flows.c.id == flow_runs.c.flow_id).outerjoin(
        deployments, deployments.c.id == flow_runs.c.deployment_id
    )
)

_SORTS: dict[FlowRunSort, list[sa.ColumnElement[Any]]] = {
    FlowRunSort.START_TIME_DESC: [flow_runs.c.start_time.desc().nulls_last()],
    FlowRunSort.START_TIME_ASC: [flow_runs.c.start_time.asc().nulls_last()],
    FlowRunSort.EXPECTED_START_TIME_DESC: [flow_runs.c.expected_start_time.desc().nulls_last()],
    FlowRunSort.EXPECTED_START_TIME_ASC: [flow_runs.c.expected_start_time.asc().nulls_last()],
    FlowRunSort.CREATED_DESC: [flow_runs.c.created.desc()],
    FlowRunSort.CREATED_ASC: [flow_runs.c.created.asc()],
    FlowRunSort.NAME_ASC: [flow_runs.c.name.asc()],
}


def _flow_run(row: Any) -> FlowRun:
    return FlowRun.model_validate(dict(row._mapping))


def _state_values(run_id: UUID, state: State) -> dict[str, Any]:
    return {
        "id": state.id,
        "flow_run_id": run_id,
        "type": state.type.value,
        "name": state.name,
        "message": state.message,
        "timestamp": state.timestamp,
        "details": state.details.model_dump(mode="json"),
        "data": state.model_dump(mode="json", include={"data"})["data"],
    }


def _current_state_columns(state: State) -> dict[str, Any]:
    return {
        "state_id": state.id,
        "state_type": state.type.value,
        "state_name": state.name,
        "state_timestamp": state.timestamp,
        "state": state.model_dump(mode="json"),
    }


def _facts(row: Any, slot: tuple[bool, str] = (True, "ENQUEUE")) -> RunFacts:
    m = row._mapping
    return RunFacts(
        state=State.model_validate(m["state"]) if m["state"] is not None else None,
        run_count=m["run_count"],
        start_time=m["start_time"],
        end_time=m["end_time"],
        total_run_time=m["total_run_time"],
        expected_start_time=m["expected_start_time"],
        slot_available=slot[0],
        collision_strategy=slot[1],
    )


def _clock(current: State | None) -> dt.datetime:
    # States of one run get strictly increasing timestamps, so history order is unambiguous.
    now = utcnow()
    if current is not None and now <= current.timestamp:
        now = current.timestamp + dt.timedelta(microseconds=1)
    return now


async def _run_id_by_key(session: AsyncSession, flow_id: UUID, key: str) -> UUID | None:
    stmt = sa.select(flow_runs.c.id).where(
        flow_runs.c.flow_id == flow_id, flow_runs.c.idempotency_key == key
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def create_flow_run(
    session: AsyncSession,
    body: FlowRunCreate,
    *,
    deployment_id: UUID | None = None,
    triggering_event_id: UUID | None = None,
    names: tuple[str, str | None] | None = None,
    work_queue: tuple[UUID, dict[str, Any]] | None = None,
) -> tuple[FlowRun, bool]:
    """Create a run in its initial state (default Pending); the flag is False when ``(flow,
    idempotency_key)`` already named a run, which is returned unchanged. ``names``: the flow's and
    the deployment's names, which the caller just read with ``body.flow_id`` (no flow lookup).
    ``work_queue``: the work queue of a work-pool deployment's run and the run's job variables."""
    if body.flow_id is not None and names is not None:
        flow_id = body.flow_id
    elif body.flow_id is not None:
        flow = await read_flow(session, body.flow_id)
        if flow is None:
            raise NotFound(f"flow {body.flow_id} not found")
        flow_id, names = flow.id, (flow.name, None) if deployment_id is None else None
    else:
        assert body.flow_name is not None
        flow = (await create_or_get_flow(session, body.flow_name))[0]
        flow_id, names = flow.id, (flow.name, None) if deployment_id is None else None
    if body.idempotency_key is not None:
        existing = await _run_id_by_key(session, flow_id, body.idempotency_key)
        if existing is not None:
            return await _read_existing(session, existing), False
    run_id = uuid.uuid4()
    now = utcnow()
    requested = body.state or Pending()
    # A run created to start at once (an in-process flow call: one request instead of two) still
    # passes through Pending like any other run: history and events say Pending, then Running.
    pending: State | None = None
    if requested.type is StateType.RUNNING:
        first = decide(RunFacts(state=None), StateProposal(state=Pending()), now)
        pending = first.state
        decision = decide(
            RunFacts(state=pending, **_facts_changes(first.changes)),
            StateProposal(state=requested),
            _clock(pending),
        )
        decision = _merge_changes(first, decision)
    else:
        decision = decide(RunFacts(state=None), StateProposal(state=requested), now)
    if decision.status is not SetStateStatus.ACCEPT:
        raise Conflict(decision.reason or "the initial state was refused")
    values: dict[str, Any] = {
        "id": run_id,
        "name": body.name or generate_name(),
        "flow_id": flow_id,
        "deployment_id": deployment_id,
        "triggering_event_id": triggering_event_id,
        "parameters": body.parameters,
        "tags": list(body.tags),
        "total_run_time": 0.0,
        "run_count": 0,
        "parent_flow_run_id": body.parent_flow_run_id,
        "parent_task_run_id": body.parent_task_run_id,
        "idempotency_key": body.idempotency_key,
        "created_by": body.created_by.model_dump(mode="json") if body.created_by else None,
        "created": now,
        "updated": now,
        **_current_state_columns(decision.state),
        **(
            {"work_queue_id": work_queue[0], "job_variables": work_queue[1]}
            if work_queue is not None
            else {}
        ),
        **decision.changes,
    }
    if body.idempotency_key is None:
        await session.execute(sa.insert(flow_runs).values(**values))
    elif not await insert_ignoring_conflict(
        session, flow_runs, values, ["flow_id", "idempotency_key"]
    ):
        # A concurrent request with the same key won the insert: answer with its run.
        existing = await _run_id_by_key(session, flow_id, body.idempotency_key)
        assert existing is not None
        return await _read_existing(session, existing), False
    states = [pending, decision.state] if pending is not None else [decision.state]
    await _insert_states(session, run_id, states, decision.state)
    if names is not None:  # the run as written, without reading it back
        flow_name, deployment_name = names
        run = FlowRun.model_validate(
            {**values, "flow_name": flow_name, "deployment_name": deployment_name}
        )
    else:
        run = await _read_existing(session, run_id)
    changes: list[tuple[FlowRun, State | None]] = [(run, pending)]
    if pending is not None:
        changes.insert(0, (run.model_copy(update={"state": pending, "run_count": 0}), None))
    await record_state_changes(session, changes, created_from=triggering_event_id)
    return run, True


_FACT_FIELDS = ("run_count", "start_time", "end_time", "total_run_time", "expected_start_time")


def _facts_changes(changes: dict[str, Any]) -> dict[str, Any]:
    """The RunFacts fields a first decision's column changes set (for deciding the next one)."""
    return {k: v for k, v in changes.items() if k in _FACT_FIELDS}


def _merge_changes(first: Decision, second: Decision) -> Decision:
    """``second`` with the column changes of both (the later one wins)."""
    return dataclasses.replace(second, changes={**first.changes, **second.changes})


async def _read_existing(session: AsyncSession, run_id: UUID) -> FlowRun:
    run = await read_flow_run(session, run_id)
    if run is None:
        raise NotFound(f"flow run {run_id} not found")
    return run


async def read_flow_run(session: AsyncSession, run_id: UUID) -> FlowRun | None:
    row = (await session.execute(_SELECT.where(flow_runs.c.id == run_id))).first()
    return _flow_run(row) if row is not None else None


def filter_clauses(flt: FlowRunFilter, dialect: str) -> list[sa.ColumnElement[bool]]:
    """The WHERE conditions for ``flt`` over ``flow_runs`` alone."""
    c = flow_runs.c
    out: list[sa.ColumnElement[bool]] = []
    if flt.id is not None:
        out.append(c.id.in_(flt.id))
    if flt.flow_id is not None:
        out.append(c.flow_id.in_(flt.flow_id))
    if flt.flow_name is not None:
        # A subquery, not a condition on a joined ``flows``: callers that select from flow_runs
        # alone (counts, the UI's histogram) would otherwise cross-join every flow run.
        named = sa.select(flows.c.id).where(flows.c.name.in_(flt.flow_name))
        out.append(c.flow_id.in_(named))
    if flt.deployment_id is not None:
        out.append(c.deployment_id.in_(flt.deployment_id))
    if flt.work_pool_name is not None or flt.work_queue_name is not None:
        queues = sa.select(work_queues.c.id)
        if flt.work_pool_name is not None:
            pools = sa.select(work_pools.c.id).where(work_pools.c.name.in_(flt.work_pool_name))
            queues = queues.where(work_queues.c.work_pool_id.in_(pools))
        if flt.work_queue_name is not None:
            queues = queues.where(work_queues.c.name.in_(flt.work_queue_name))
        out.append(c.work_queue_id.in_(queues))
    if flt.state_type is not None:
        out.append(c.state_type.in_([t.value for t in flt.state_type]))
    if flt.state_name is not None:
        out.append(c.state_name.in_(flt.state_name))
    if flt.tags_all:
        out.append(json_array_contains_all(c.tags, flt.tags_all, dialect))
    if flt.parent_flow_run_id is not None:
        out.append(c.parent_flow_run_id == flt.parent_flow_run_id)
    ranges: Sequence[tuple[sa.Column[Any], dt.datetime | None, dt.datetime | None]] = (
        (c.start_time, flt.start_time_after, flt.start_time_before),
        (c.expected_start_time, flt.expected_start_time_after, flt.expected_start_time_before),
        (c.created, flt.created_after, flt.created_before),
    )
    for column, after, before in ranges:
        if after is not None:
            out.append(column >= after)
        if before is not None:
            out.append(column <= before)
    return out


async def read_flow_runs(session: AsyncSession, flt: FlowRunFilter) -> list[FlowRun]:
    """Runs matching ``flt``, in its sort order (ties broken by id), one page."""
    stmt = (
        _SELECT.where(*filter_clauses(flt, dialect_name(session)))
        .order_by(*_SORTS[flt.sort], flow_runs.c.id)
        .limit(flt.limit)
        .offset(flt.offset)
    )
    return [_flow_run(row) for row in await session.execute(stmt)]


async def count_flow_runs(session: AsyncSession, flt: FlowRunFilter) -> int:
    """How many runs match ``flt`` (limit and offset ignored)."""
    stmt = (
        sa.select(sa.func.count())
        .select_from(flow_runs.join(flows, flows.c.id == flow_runs.c.flow_id))
        .where(*filter_clauses(flt, dialect_name(session)))
    )
    return int((await session.execute(stmt)).scalar_one())


async def read_flow_run_states(
    session: AsyncSession, run_id: UUID, *, limit: int | None = None, offset: int = 0
) -> list[State]:
    """The run's state history, oldest first; ``limit``/``offset`` page it."""
    exists = await session.execute(sa.select(flow_runs.c.id).where(flow_runs.c.id == run_id))
    if exists.first() is None:
        raise NotFound(f"flow run {run_id} not found")
    stmt = (
        sa.select(flow_run_states)
        .where(flow_run_states.c.flow_run_id == run_id)
        .order_by(flow_run_states.c.timestamp, flow_run_states.c.id)
        .limit(limit)
        .offset(offset)
    )
    return [State.model_validate(dict(row._mapping)) for row in await session.execute(stmt)]


async def set_flow_run_state(
    session: AsyncSession, run_id: UUID, proposal: StateProposal
) -> tuple[Decision, FlowRun]:
    """Judge ``proposal`` against the locked run and apply the decision; the run as it is after."""
    stmt = _SELECT.where(flow_runs.c.id == run_id)
    if dialect_name(session) == "postgresql":
        # FOR NO KEY UPDATE: serialises proposals for this run, yet lets log and state inserts
        # (whose foreign-key checks take KEY SHARE) proceed. Only the run's row is locked.
        stmt = stmt.with_for_update(key_share=True, of=flow_runs)
    row = (await session.execute(stmt)).first()
    if row is None:
        raise NotFound(f"flow run {run_id} not found")
    facts = _facts(row)
    if row.deployment_id is not None and takes_a_slot(facts.state, proposal):
        facts = _facts(row, await _slot_available(session, row.deployment_id, run_id))
    decision = decide(facts, proposal, _clock(facts.state))
    if decision.store:
        await _insert_states(session, run_id, [decision.state], decision.state)
        values = {
            **_current_state_columns(decision.state),
            **decision.changes,
            **_claimant(decision.state),
            "updated": decision.state.timestamp,
        }
        await session.execute(sa.update(flow_runs).where(flow_runs.c.id == run_id).values(**values))
        # The run as stored now, without reading it back: the locked row plus what was written.
        run = FlowRun.model_validate({**row._mapping, **values})
        await record_state_change(
            session, run, facts.state, triggering_event_id=row.triggering_event_id
        )
        return decision, run
    return decision, _flow_run(row)


async def _insert_states(
    session: AsyncSession, run_id: UUID, states: list[State], proposed: State
) -> None:
    """Store ``states``; a state id already stored (a client may send its own) is a Conflict.

    The duplicate is found by the primary key itself rather than by a lookup first: no extra
    statement on the hot path. The failed insert ends the transaction, which the Conflict rolls back.
    """
    rows = [_state_values(run_id, state) for state in states]
    try:
        if len(rows) == 1:
            await session.execute(sa.insert(flow_run_states).values(**rows[0]))
        else:
            await session.execute(sa.insert(flow_run_states), rows)
    except IntegrityError as exc:
        if not is_unique_violation(exc):
            raise
        # Only ``proposed`` can carry a client's id: a Pending inserted before it is made here.
        raise Conflict(
            f"state id {proposed.id} is already used by another state; "
            "send a new id or leave it out (the server then assigns one)"
        ) from None


def _claimant(state: State) -> dict[str, Any]:
    """``runner_id`` of a Pending state (a runner's claim) as a column update, when given."""
    if state.type is not StateType.PENDING:
        return {}
    raw = (state.details.model_extra or {}).get("runner_id")
    try:
        return {"runner_id": UUID(str(raw))} if raw is not None else {}
    except ValueError:
        return {}


async def _slot_available(
    session: AsyncSession, deployment_id: UUID, run_id: UUID
) -> tuple[bool, str]:
    """Whether the deployment has room for one more active run besides ``run_id``, and its
    collision strategy (what a run gets when there is none)."""
    stmt = sa.select(deployments.c.concurrency_limit, deployments.c.concurrency_options).where(
        deployments.c.id == deployment_id
    )
    if dialect_name(session) == "postgresql":
        # Claims of one limited deployment queue here, so each counts the others' committed claims.
        stmt = stmt.with_for_update()
    row = (await session.execute(stmt)).first()
    limit = row.concurrency_limit if row is not None else None
    if limit is None:
        return True, "ENQUEUE"
    strategy = str((row.concurrency_options or {}).get("collision_strategy") or "ENQUEUE")
    active = sa.select(sa.func.count()).where(
        flow_runs.c.deployment_id == deployment_id,
        flow_runs.c.state_type.in_([t.value for t in ACTIVE_TYPES]),
        flow_runs.c.id != run_id,
    )
    return int((await session.execute(active)).scalar_one()) < limit, strategy


async def rename_flow_run(session: AsyncSession, run_id: UUID, name: str) -> FlowRun:
    """Give the run a new name; NotFound when it does not exist."""
    stmt = sa.update(flow_runs).where(flow_runs.c.id == run_id).values(name=name)
    if (await session.execute(stmt)).rowcount == 0:
        raise NotFound(f"flow run {run_id} not found")
    run = await read_flow_run(session, run_id)
    assert run is not None
    return run


async def delete_flow_run(session: AsyncSession, run_id: UUID) -> None:
    """Delete a run; its states and logs go with it (ON DELETE CASCADE)."""
    stmt = sa.delete(flow_runs).where(flow_runs.c.id == run_id).returning(flow_runs.c.id)
    if (await session.execute(stmt)).first() is None:
        raise NotFound(f"flow run {run_id} not found")
