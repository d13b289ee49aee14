"""The run graph and timeline, pure: edges from recorded inputs (data and wait_for) and calling
tasks, grouping by task name with the most alarming state shown, the chain around the frame, and
timeline rows scaled to the run's span."""

from __future__ import annotations

import datetime as dt
import uuid
from types import SimpleNamespace
from typing import Any

from tideflow.server.ui.run_graph import (
    CHAIN_LIMIT,
    GROUP_LIMIT,
    TaskGroup,
    TaskRow,
    build_graph,
    build_timeline,
    group_id,
    group_nodes,
    row_nodes,
)

T0 = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)


def _row(name: str, start: float | None, end: float | None, **inputs: Any) -> TaskRow:
    at = lambda s: T0 + dt.timedelta(seconds=s) if s is not None else None  # noqa: E731
    return TaskRow(uuid.uuid4(), name, name.split("-")[0], "COMPLETED", "Completed", at(start),
                   at(end), {k: [str(u) for u in v] for k, v in inputs.items()})  # fmt: skip


def _subflow(parent_task: Any = None) -> Any:
    return SimpleNamespace(id=uuid.uuid4(), name="child", state_type="FAILED", state_name="Failed",
                           start_time=T0, end_time=T0 + dt.timedelta(seconds=1),
                           parent_task_run_id=parent_task, flow_name="f")  # fmt: skip


def test_edges_from_inputs_wait_for_and_calling_tasks() -> None:
    a, b = _row("a-0", 0, 1), _row("b-0", 1, 2)
    c = _row("c-0", 2, 3, x=[a.id, uuid.uuid4()], wait_for=[b.id])
    sub = _subflow(parent_task=c.id)
    nodes, edges = row_nodes([a, b, c], [sub], T0)
    assert {(e.upstream, e.downstream, e.kind) for e in edges} == {
        (a.id, c.id, "data"), (b.id, c.id, "wait"), (c.id, sub.id, "subflow"),
    }  # fmt: skip
    assert nodes[sub.id].kind == "subflow" and nodes[sub.id].href == f"/runs/{sub.id}"
    assert nodes[a.id].css == "completed" and nodes[sub.id].css == "failed"


def test_groups_show_counts_the_worst_state_and_are_bounded() -> None:
    groups = [
        TaskGroup("extract", 5000, {"Completed": 4990, "Failed": 10},
                  {"COMPLETED": 4990, "FAILED": 10}, T0, T0),
        TaskGroup("load", 1, {"Completed": 1}, {"COMPLETED": 1}, T0, T0),
        *(TaskGroup(f"t{i}", 1, {"Completed": 1}, {"COMPLETED": 1}, T0, T0) for i in range(100)),
    ]  # fmt: skip
    sub = _subflow()
    nodes, edges = group_nodes(
        groups, [("extract", "load", "data"), ("extract", "gone", "data")], [sub], {}, T0
    )
    assert len(nodes) == GROUP_LIMIT + 1  # the groups drawn plus the subflow
    extract = nodes[group_id("extract")]
    assert extract.name == "extract · 5000 runs" and extract.css == "failed"
    assert extract.label == "4990 Completed, 10 Failed"
    assert [(e.upstream, e.downstream) for e in edges] == [(group_id("extract"), group_id("load"))]


def test_the_chain_sits_either_side_of_the_frame() -> None:
    a = _row("a-0", 0, 1)
    nodes, edges = row_nodes([a], [], T0)
    up = SimpleNamespace(id=uuid.uuid4())
    downs = [SimpleNamespace(id=uuid.uuid4()) for _ in range(CHAIN_LIMIT + 3)]
    graph = build_graph(nodes, edges, False, up, downs)
    assert graph.upstream is not None and graph.upstream.x < graph.offset_x
    assert len(graph.downstream) == CHAIN_LIMIT and graph.more_downstream == 3
    assert all(d.x > graph.offset_x + graph.frame_width for d in graph.downstream)
    assert graph.width >= graph.downstream[0].x + 190


def test_timeline_rows_are_scaled_to_the_span_and_sorted_by_start() -> None:
    first, second, waiting = _row("a-0", 0, 5), _row("b-0", 5, 10), _row("c-0", None, None)
    nodes, _ = row_nodes([second, waiting, first], [], T0)
    timeline = build_timeline(nodes.values(), T0, T0 + dt.timedelta(seconds=10), T0)
    assert timeline is not None
    names = [r.node.name for r in timeline.rows]
    assert names == ["a-0", "b-0", "c-0"]
    a, b, c = timeline.rows
    assert a.x == timeline.track_x and b.x == round(timeline.track_x + timeline.track_width / 2, 1)
    assert a.width == b.width == round(timeline.track_width / 2, 1)
    assert c.x is None and a.duration == 5.0
    assert build_timeline([nodes[waiting.id]], None, None, T0) is None
