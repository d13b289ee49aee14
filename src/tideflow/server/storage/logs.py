"""Run-log queries: insert a batch (records of unknown runs are dropped and counted), filter."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from tideflow.schemas import Log, LogCreate, LogFilter
from tideflow.server.storage.dialect import dialect_name
from tideflow.server.storage.tables import flow_runs, logs, task_runs

__all__ = ["create_logs", "read_logs"]


async def create_logs(session: AsyncSession, records: list[LogCreate]) -> tuple[int, int]:
    """Store the records whose run exists (the flow run; for a background task run's record, the
    task run); ``(accepted, dropped)``."""
    if not records:
        return 0, 0
    known: set[Any] = set()
    run_ids = {r.flow_run_id for r in records if r.flow_run_id is not None}
    if run_ids:
        stmt = sa.select(flow_runs.c.id).where(flow_runs.c.id.in_(run_ids))
        if dialect_name(session) == "postgresql":
            # Hold the runs (as a foreign-key check would): a concurrent delete cannot slip in.
            stmt = stmt.with_for_update(key_share=True, read=True)
        known.update((await session.execute(stmt)).scalars())
    task_ids = {r.task_run_id for r in records if r.flow_run_id is None}
    known_tasks: set[Any] = set()
    if task_ids:
        found = sa.select(task_runs.c.id).where(task_runs.c.id.in_(task_ids))
        known_tasks.update((await session.execute(found)).scalars())
    rows: list[dict[str, Any]] = [
        r.model_dump(
            include={"flow_run_id", "task_run_id", "name", "level", "message", "timestamp"}
        )
        for r in records
        if (r.flow_run_id in known if r.flow_run_id is not None else r.task_run_id in known_tasks)
    ]
    if rows:
        await session.execute(sa.insert(logs), rows)
    return len(rows), len(records) - len(rows)


async def read_logs(session: AsyncSession, flt: LogFilter) -> list[Log]:
    """Records matching ``flt`` by timestamp (then insertion order), one page."""
    c = logs.c
    stmt = sa.select(logs)
    if flt.flow_run_id is not None:
        stmt = stmt.where(c.flow_run_id.in_(flt.flow_run_id))
    if flt.task_run_id is not None:
        stmt = stmt.where(c.task_run_id.in_(flt.task_run_id))
    if flt.level_ge is not None:
        stmt = stmt.where(c.level >= flt.level_ge)
    if flt.timestamp_after is not None:
        stmt = stmt.where(c.timestamp >= flt.timestamp_after)
    if flt.timestamp_before is not None:
        stmt = stmt.where(c.timestamp <= flt.timestamp_before)
    order = [c.timestamp.desc(), c.id.desc()] if flt.sort_desc else [c.timestamp.asc(), c.id.asc()]
    stmt = stmt.order_by(*order).limit(flt.limit).offset(flt.offset)
    return [Log.model_validate(dict(row._mapping)) for row in await session.execute(stmt)]
