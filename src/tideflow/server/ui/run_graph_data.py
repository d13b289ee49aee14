"""The reads behind a flow run's graph and timeline: light task-run rows (no parameters, history or
results), or for a large run per-task-name aggregates and the links between task names found in
a bounded sample of each name's runs. Every read is bounded whatever the run's size."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from tideflow.server.storage.tables import flow_runs, task_runs
from tideflow.server.ui.run_graph import TaskGroup, TaskRow

__all__ = ["count_subflows", "group_links", "task_groups", "task_names_of", "task_rows"]

LINK_SAMPLE = 20  # runs per task name whose inputs are read to find the links between names
_MAX_GROUP_ROWS = 5000  # (task name, state) pairs read; more names than this are not drawn anyway


def _mapping(value: Any) -> dict[str, list[str]]:
    if not isinstance(value, dict):
        return {}
    return {str(k): [str(u) for u in v] for k, v in value.items() if isinstance(v, list)}


async def task_rows(session: AsyncSession, flow_run_id: UUID, limit: int) -> list[TaskRow]:
    """The first ``limit`` task runs of the flow run by start time (not started ones last)."""
    c = task_runs.c
    stmt = (
        sa.select(
            c.id,
            c.name,
            c.task_name,
            c.state_type,
            c.state_name,
            c.start_time,
            c.end_time,
            c.task_inputs,
        )
        .where(c.flow_run_id == flow_run_id)
        .order_by(c.start_time.is_(None), c.start_time, c.created, c.id)
        .limit(limit)
    )
    return [
        TaskRow(
            r.id,
            r.name,
            r.task_name,
            r.state_type,
            r.state_name,
            r.start_time,
            r.end_time,
            _mapping(r.task_inputs),
        )
        for r in await session.execute(stmt)
    ]


async def task_groups(session: AsyncSession, flow_run_id: UUID) -> list[TaskGroup]:
    """Per task name: how many runs, in which states, from the first start to the last end."""
    c = task_runs.c
    stmt = (
        sa.select(
            c.task_name,
            c.state_type,
            c.state_name,
            sa.func.count(),
            sa.func.min(c.start_time),
            sa.func.max(c.end_time),
        )
        .where(c.flow_run_id == flow_run_id)
        .group_by(c.task_name, c.state_type, c.state_name)
        .limit(_MAX_GROUP_ROWS)
    )
    acc: dict[str, dict[str, Any]] = {}
    for name, state_type, state_name, count, first, last in await session.execute(stmt):
        g = acc.setdefault(
            name, {"count": 0, "states": {}, "types": {}, "start": None, "end": None}
        )
        g["count"] += int(count)
        key = state_name or "Unknown"
        g["states"][key] = g["states"].get(key, 0) + int(count)
        tkey = state_type or "UNKNOWN"
        g["types"][tkey] = g["types"].get(tkey, 0) + int(count)
        if first is not None and (g["start"] is None or first < g["start"]):
            g["start"] = first
        if last is not None and (g["end"] is None or last > g["end"]):
            g["end"] = last
    return [
        TaskGroup(name, g["count"], g["states"], g["types"], g["start"], g["end"])
        for name, g in acc.items()
    ]


async def task_names_of(session: AsyncSession, ids: Sequence[UUID]) -> dict[UUID, str]:
    """The task name of each task run id given (unknown ids left out), read in bounded chunks."""
    out: dict[UUID, str] = {}
    for i in range(0, len(ids), 500):
        chunk = list(ids[i : i + 500])
        stmt = sa.select(task_runs.c.id, task_runs.c.task_name).where(task_runs.c.id.in_(chunk))
        out.update({r.id: r.task_name for r in await session.execute(stmt)})
    return out


async def group_links(session: AsyncSession, flow_run_id: UUID) -> set[tuple[str, str, str]]:
    """``(upstream name, downstream name, "data" | "wait")`` found in the inputs of the first
    ``LINK_SAMPLE`` runs of each task name (mapped tasks repeat the same shape)."""
    c = task_runs.c
    ranked = (
        sa.select(
            c.task_name,
            c.task_inputs,
            sa.func.row_number()
            .over(partition_by=c.task_name, order_by=(c.created, c.id))
            .label("rank"),
        )
        .where(c.flow_run_id == flow_run_id)
        .subquery()
    )
    stmt = sa.select(ranked.c.task_name, ranked.c.task_inputs).where(ranked.c.rank <= LINK_SAMPLE)
    refs: list[tuple[str, str, UUID]] = []
    for name, inputs in await session.execute(stmt):
        for parameter, ups in _mapping(inputs).items():
            kind = "wait" if parameter == "wait_for" else "data"
            for raw in ups:
                try:
                    refs.append((name, kind, UUID(raw)))
                except ValueError:
                    continue
    names = await task_names_of(session, sorted({r[2] for r in refs}, key=str))
    return {(names[up], name, kind) for name, kind, up in refs if up in names}


async def count_subflows(session: AsyncSession, flow_run_id: UUID) -> int:
    stmt = (
        sa.select(sa.func.count())
        .select_from(flow_runs)
        .where(flow_runs.c.parent_flow_run_id == flow_run_id)
    )
    return int((await session.execute(stmt)).scalar_one())
