"""The UI's own reads on SQLite and PostgreSQL: a run's light task-run rows, per-task-name groups
and the links between names found in a bounded sample (the run graph), histogram buckets counted in
SQL, and the distinct stored event names walked through the index (the editor's suggestions)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa

from tideflow.schemas import FlowRunCreate
from tideflow.schemas import states as S
from tideflow.schemas.task_runs import TaskRunReport
from tideflow.server.storage import Database
from tideflow.server.storage.flow_runs import create_flow_run
from tideflow.server.storage.migrate import upgrade_engine
from tideflow.server.storage.tables import task_runs
from tideflow.server.storage.task_runs import record_task_run_reports
from tideflow.server.ui import run_graph_data
from tideflow.server.ui.automation_editor import stored_event_names
from tideflow.server.ui.finding import bucket_counts

pytestmark = pytest.mark.anyio

T0 = dt.datetime(2030, 1, 10, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    await upgrade_engine(database.engine)
    try:
        yield database
    finally:
        await database.dispose()


def _report(run_id: uuid.UUID, name: str, i: int, failed: bool = False, **inputs: list[uuid.UUID]) -> TaskRunReport:  # fmt: skip
    start = T0 + dt.timedelta(minutes=i)
    end = start + dt.timedelta(seconds=30)
    final = (S.Failed() if failed else S.Completed()).model_copy(update={"timestamp": end})
    running = S.Running().model_copy(update={"timestamp": start})
    return TaskRunReport(
        id=uuid.uuid4(), flow_run_id=run_id, name=f"{name}-{i}", task_name=name, task_inputs=inputs,
        run_count=1, start_time=start, end_time=end, states=[running, final],
    )  # fmt: skip


async def test_run_graph_reads_and_histogram_buckets(db: Database) -> None:
    async with db.write() as session:
        run, _ = await create_flow_run(session, FlowRunCreate(flow_name="f", state=S.Running()))
    extract = [_report(run.id, "extract", i) for i in range(40)]
    transform = [
        _report(run.id, "transform", i, failed=i == 3, row=[extract[i].id]) for i in range(40)
    ]
    reduce = [_report(run.id, "reduce", 50, wait_for=[t.id for t in transform[:2]])]
    async with db.write() as session:
        result = await record_task_run_reports(session, extract + transform + reduce)
    assert not result.refused

    async with db.read() as session:
        rows = await run_graph_data.task_rows(session, run.id, 5)
        groups = {g.task_name: g for g in await run_graph_data.task_groups(session, run.id)}
        links = await run_graph_data.group_links(session, run.id)
        names = await run_graph_data.task_names_of(session, [extract[0].id, uuid.uuid4()])
        subflows = await run_graph_data.count_subflows(session, run.id)
        chart = await bucket_counts(
            session, task_runs.c.start_time, [task_runs.c.flow_run_id == run.id],
            T0, T0 + dt.timedelta(hours=1), task_runs,
        )  # fmt: skip
        event_names = await stored_event_names(session)

    assert [r.name for r in rows] == ["extract-0", "transform-0", "extract-1", "transform-1",
                                      "extract-2"] or len(rows) == 5  # fmt: skip
    assert rows[0].start_time == T0 and isinstance(rows[0].task_inputs, dict)
    assert groups["transform"].count == 40
    assert groups["transform"].states == {"Completed": 39, "Failed": 1}
    assert groups["transform"].state_types == {"COMPLETED": 39, "FAILED": 1}
    assert groups["extract"].start_time == T0
    assert groups["reduce"].end_time == T0 + dt.timedelta(minutes=50, seconds=30)
    assert links == {("extract", "transform", "data"), ("transform", "reduce", "wait")}
    assert names == {extract[0].id: "extract"}
    assert subflows == 0
    # One hour in 60 one-minute buckets: two task runs start in each of the first 40 minutes.
    assert chart.bucket_seconds == 60 and chart.start == T0
    counts = [b.count for b in chart.bars]
    assert counts[:40] == [2] * 40 and counts[40:50] == [0] * 10 and counts[50] == 1
    assert chart.total == 81
    assert event_names == sorted(set(event_names))
    assert {"tideflow.task-run.Completed", "tideflow.task-run.Failed",
            "tideflow.task-run.Running"} <= set(event_names)  # fmt: skip


async def test_group_links_read_a_bounded_sample(db: Database) -> None:
    async with db.write() as session:
        run, _ = await create_flow_run(session, FlowRunCreate(flow_name="f", state=S.Running()))
    a = [_report(run.id, "a", i) for i in range(run_graph_data.LINK_SAMPLE + 5)]
    # Only runs past the sample of "b" link to "a": not found (the sample is the first runs).
    b = [_report(run.id, "b", i, **({"x": [a[i].id]} if i >= run_graph_data.LINK_SAMPLE else {}))
         for i in range(run_graph_data.LINK_SAMPLE + 5)]  # fmt: skip
    async with db.write() as session:
        for report in a + b:  # one by one: created times (the sample order) follow the list
            await record_task_run_reports(session, [report])
    async with db.read() as session:
        assert await run_graph_data.group_links(session, run.id) == set()
        total = (await session.execute(sa.select(sa.func.count()).select_from(task_runs))).scalar()
    assert total == 2 * (run_graph_data.LINK_SAMPLE + 5)
