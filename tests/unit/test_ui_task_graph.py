"""The run page's task-run graph and timeline, pure: edges from recorded inputs, bars scaled to the
flow run's span, and bounds on how much is drawn."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from tideflow.schemas.task_runs import TaskRun
from tideflow.server.ui.task_graph import GRAPH_LIMIT, TIMELINE_LIMIT, task_graph, task_timeline

T0 = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)


def _run(name: str, start: float | None, end: float | None, **inputs: Any) -> TaskRun:
    return TaskRun(
        id=uuid.uuid4(), name=name, task_name=name.split("-")[0],
        start_time=T0 + dt.timedelta(seconds=start) if start is not None else None,
        end_time=T0 + dt.timedelta(seconds=end) if end is not None else None,
        task_inputs=inputs, created=T0, updated=T0,
    )  # fmt: skip


def test_edges_come_from_inputs_between_known_runs() -> None:
    a, b = _run("a-0", 0, 1), _run("b-0", 1, 2)
    c = _run("c-0", 2, 3, x=[a.id, b.id], y=[uuid.uuid4()])  # an unknown upstream is not drawn
    drawn = task_graph([a, b, c])
    assert drawn is not None
    layout, edges = drawn
    assert {(e.upstream, e.downstream, e.parameter) for e in edges} == {
        (a.id, c.id, "x"),
        (b.id, c.id, "x"),
    }
    columns = {n.id: n.layer for n in layout.nodes}
    assert columns[c.id] == 1 and columns[a.id] == columns[b.id] == 0


def test_bars_are_scaled_to_the_flow_runs_span() -> None:
    first, second, waiting = _run("a-0", 0, 5), _run("b-0", 5, 10), _run("c-0", None, None)
    bars = task_timeline([second, waiting, first], T0, T0 + dt.timedelta(seconds=10))
    assert [(b.run.name, b.left, b.width, b.duration) for b in bars] == [
        ("a-0", 0.0, 50.0, 5.0),
        ("b-0", 50.0, 50.0, 5.0),
    ]


def test_large_runs_are_bounded() -> None:
    many = [_run(f"t-{i}", i, i + 1) for i in range(TIMELINE_LIMIT + 10)]
    assert task_graph(many[: GRAPH_LIMIT + 1]) is None
    assert len(task_timeline(many, None, None)) == TIMELINE_LIMIT
