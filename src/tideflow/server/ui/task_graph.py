"""A flow run's task runs for its page, pure: the dependency graph (edges from recorded upstream
inputs, laid out with the chain graph's layered layout) and a Gantt-style timeline (a bar per task
run from start to end, scaled to the flow run's span). Both are bounded so a run with thousands of
task runs renders in milliseconds."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

from tideflow.schemas.task_runs import TaskRun
from tideflow.server.ui.graph import Layout, layered_layout

__all__ = ["GRAPH_LIMIT", "TIMELINE_LIMIT", "Bar", "Dependency", "task_graph", "task_timeline"]

GRAPH_LIMIT = 150  # task runs drawn as a graph (the layout is quadratic in the worst case)
TIMELINE_LIMIT = 500  # bars on the timeline


@dataclass(frozen=True)
class Dependency:
    """Task run ``downstream`` received (or waited for) the result of ``upstream``."""

    upstream: UUID
    downstream: UUID
    parameter: str


@dataclass(frozen=True)
class Bar:
    """One task run on the timeline: offsets and width in percent of the span."""

    run: TaskRun
    left: float
    width: float
    duration: float | None


def _edges(runs: Sequence[TaskRun]) -> list[Dependency]:
    known = {run.id for run in runs}
    return [
        Dependency(upstream, run.id, parameter)
        for run in runs
        for parameter, upstreams in run.task_inputs.items()
        for upstream in upstreams
        if upstream in known and upstream != run.id
    ]


def task_graph(runs: Sequence[TaskRun]) -> tuple[Layout, list[Dependency]] | None:
    """The layout of the runs and their dependencies, or None above GRAPH_LIMIT runs."""
    if not runs or len(runs) > GRAPH_LIMIT:
        return None
    edges = _edges(runs)
    names = {run.id: run.name for run in runs}
    layout = layered_layout(
        [run.id for run in runs], edges, names, node_width=170, node_height=44,
        column_gap=70, row_gap=14,
    )  # fmt: skip
    return layout, edges


def task_timeline(
    runs: Sequence[TaskRun], start: dt.datetime | None, end: dt.datetime | None
) -> list[Bar]:
    """Bars for the runs that started (first TIMELINE_LIMIT by start), between ``start`` and
    ``end`` (defaults: the earliest start and latest end, or now while running)."""
    started = sorted((r for r in runs if r.start_time), key=lambda r: r.start_time)  # type: ignore[arg-type, return-value]
    started = started[:TIMELINE_LIMIT]
    if not started:
        return []
    now = dt.datetime.now(dt.UTC)
    begin = min([start] if start else [], default=None) or started[0].start_time
    assert begin is not None
    finish = end or max((r.end_time or now) for r in started)
    span = max((finish - begin).total_seconds(), 1e-3)
    bars = []
    for run in started:
        assert run.start_time is not None
        left = max(0.0, (run.start_time - begin).total_seconds() / span * 100)
        stop = run.end_time or now
        width = max(0.4, (stop - run.start_time).total_seconds() / span * 100)
        bars.append(
            Bar(run, round(min(left, 99.6), 2), round(min(width, 100 - left), 2), run.duration)
        )
    return bars
