"""Task-run queries: record a batch of reports (upsert each run, apply its new states in order, write
their ``tideflow.task-run.<State>`` events in the same transaction), read one, filter, count.

A report repeats nothing harmful: a state whose id the run's history already holds is counted as a
duplicate and skipped, so a batch resent after a lost answer stores each state and event once. A
state the shared transition rules refuse is skipped and named in the answer.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from tideflow.schemas import State
from tideflow.schemas.states import StateType, state_json, transition_refusal
from tideflow.schemas.task_runs import (
    TaskRun,
    TaskRunFilter,
    TaskRunReport,
    TaskRunReportResult,
    TaskRunSort,
)
from tideflow.server.events.task_run_events import FlowRunFacts, task_run_state_event
from tideflow.server.storage.dialect import dialect_name, json_array_contains_all
from tideflow.server.storage.events import insert_events
from tideflow.server.storage.tables import deployments, flow_runs, flows, task_runs

__all__ = ["count_task_runs", "read_task_run", "read_task_runs", "record_task_run_reports"]


def _refusal(current: State | None, state: State) -> str | None:
    """The shared transition rules, plus the one move only task runs make: a cache hit goes from
    Pending straight to ``Completed`` named Cached (it never runs)."""
    before = current.type if current else None
    cached = state.type is StateType.COMPLETED and state.name == "Cached"
    if cached and before in (None, StateType.PENDING, StateType.SCHEDULED):
        return None
    return transition_refusal(before, state)


async def _flow_run_facts(session: AsyncSession, ids: set[UUID]) -> dict[UUID, FlowRunFacts]:
    if not ids:
        return {}
    stmt = (
        sa.select(
            flow_runs.c.id,
            flow_runs.c.name,
            flow_runs.c.flow_id,
            flows.c.name.label("flow_name"),
            flow_runs.c.deployment_id,
            deployments.c.name.label("deployment_name"),
        )
        .select_from(
            flow_runs.join(flows, flows.c.id == flow_runs.c.flow_id).outerjoin(
                deployments, deployments.c.id == flow_runs.c.deployment_id
            )
        )
        .where(flow_runs.c.id.in_(ids))
    )
    if dialect_name(session) == "postgresql":
        stmt = stmt.with_for_update(of=flow_runs, key_share=True, read=True)
    return {row.id: FlowRunFacts(**row._mapping) for row in await session.execute(stmt)}


async def record_task_run_reports(
    session: AsyncSession, reports: Sequence[TaskRunReport]
) -> TaskRunReportResult:
    """Apply a batch of reports (oldest first within each run); the counts and refusals."""
    result = TaskRunReportResult()
    if not reports:
        return result
    ids = {r.id for r in reports}
    stmt = sa.select(task_runs.c.id, task_runs.c.state, task_runs.c.history).where(
        task_runs.c.id.in_(ids)
    )
    if dialect_name(session) == "postgresql":
        stmt = stmt.with_for_update()
    stored = {row.id: (row.state, list(row.history)) for row in await session.execute(stmt)}
    facts = await _flow_run_facts(session, {r.flow_run_id for r in reports if r.flow_run_id})
    now = dt.datetime.now(dt.UTC)
    events = []
    inserts: dict[UUID, dict[str, Any]] = {}
    updates: dict[UUID, dict[str, Any]] = {}
    for report in reports:
        if report.flow_run_id is not None and report.flow_run_id not in facts:
            result.refused.append(
                {"id": str(report.id), "reason": f"no flow run with id {report.flow_run_id}"}
            )
            continue
        current_raw, history = stored.get(report.id, (None, []))
        pending = inserts.get(report.id) or updates.get(report.id)
        if pending is not None:  # the same run twice in one batch: continue from the first
            current_raw, history = pending["state"], pending["history"]
        current = State.model_validate(current_raw) if current_raw else None
        seen = {entry["id"] for entry in history}
        run_count = report.run_count
        for state in report.states:
            if str(state.id) in seen:
                result.duplicates += 1
                continue
            reason = _refusal(current, state)
            if reason is not None:
                result.refused.append({"id": str(report.id), "state": state.name, "reason": reason})
                continue
            flow_run = facts[report.flow_run_id] if report.flow_run_id is not None else None
            events.append(task_run_state_event(report, state, current, run_count, flow_run))
            history.append(state_json(state))
            seen.add(str(state.id))
            current = state
            result.accepted += 1
        values = {
            "name": report.name,
            "task_name": report.task_name,
            "tags": report.tags,
            "parameters": report.parameters,
            "task_inputs": {k: [str(u) for u in v] for k, v in report.task_inputs.items()},
            "state_type": current.type.value if current else None,
            "state_name": current.name if current else None,
            "state": state_json(current) if current else None,
            "history": history,
            "run_count": report.run_count,
            "start_time": report.start_time,
            "end_time": report.end_time,
            "result_location": report.result_location,
            "updated": now,
        }
        if report.id in stored or report.id in updates:
            updates[report.id] = values
        elif report.id in inserts:
            inserts[report.id].update(values)
        else:
            inserts[report.id] = {
                "id": report.id, "flow_run_id": report.flow_run_id, "created": now, **values,
            }  # fmt: skip
    if inserts:
        await session.execute(sa.insert(task_runs), list(inserts.values()))
    for run_id, values in updates.items():
        await session.execute(sa.update(task_runs).where(task_runs.c.id == run_id).values(values))
    if events:
        # Event ids derive from state ids the history did not hold: nothing stored can have them.
        await insert_events(session, events, fresh=True)
    return result


_dump_state = state_json  # the name storage.task_workers uses


def _task_run(row: Any) -> TaskRun:
    m = dict(row._mapping)
    m["state_history"] = m.pop("history") or []
    return TaskRun.model_validate(m)


def _clauses(flt: TaskRunFilter, dialect: str) -> list[sa.ColumnElement[bool]]:
    c = task_runs.c
    out: list[sa.ColumnElement[bool]] = []
    if flt.id is not None:
        out.append(c.id.in_(flt.id))
    if flt.flow_run_id is not None:
        out.append(c.flow_run_id.in_(flt.flow_run_id))
    if flt.task_name is not None:
        out.append(c.task_name.in_(flt.task_name))
    if flt.name_like:
        out.append(c.name.contains(flt.name_like, autoescape=True))
    if flt.state_type is not None:
        out.append(c.state_type.in_([t.value for t in flt.state_type]))
    if flt.state_name is not None:
        out.append(c.state_name.in_(flt.state_name))
    if flt.tags_all:
        out.append(json_array_contains_all(c.tags, flt.tags_all, dialect))
    return out


_SORTS = {
    TaskRunSort.CREATED_DESC: [task_runs.c.created.desc()],
    TaskRunSort.CREATED_ASC: [task_runs.c.created.asc()],
    TaskRunSort.START_TIME_ASC: [task_runs.c.start_time.asc()],
    TaskRunSort.START_TIME_DESC: [task_runs.c.start_time.desc()],
}


async def read_task_run(session: AsyncSession, run_id: UUID) -> TaskRun | None:
    row = (await session.execute(sa.select(task_runs).where(task_runs.c.id == run_id))).first()
    return _task_run(row) if row is not None else None


async def read_task_runs(session: AsyncSession, flt: TaskRunFilter) -> list[TaskRun]:
    """Task runs matching ``flt``, in its sort order (ties broken by id), one page."""
    stmt = (
        sa.select(task_runs)
        .where(*_clauses(flt, dialect_name(session)))
        .order_by(*_SORTS[flt.sort], task_runs.c.id)
        .limit(flt.limit)
        .offset(flt.offset)
    )
    return [_task_run(row) for row in await session.execute(stmt)]


async def count_task_runs(session: AsyncSession, flt: TaskRunFilter) -> int:
    stmt = (
        sa.select(sa.func.count())
        .select_from(task_runs)
        .where(*_clauses(flt, dialect_name(session)))
    )
    return int((await session.execute(stmt)).scalar_one())
