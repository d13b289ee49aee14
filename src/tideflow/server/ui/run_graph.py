"""A flow run's graph and timeline for its page, pure: nodes for its task runs and subflow runs (or,
past ``NODE_LIMIT``, one node per task name with its counts), dependency edges (data passed,
``wait_for``, the task a subflow was called in), the chain around it (the upstream run that
triggered it, the runs it triggered) and a Gantt-style timeline, all as SVG geometry."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from tideflow.server.ui.graph import Layout, layered_layout
from tideflow.server.ui.views import state_class

__all__ = [
    "CHAIN_LIMIT",
    "NODE_LIMIT",
    "ChainNode",
    "GraphEdge",
    "GraphNode",
    "RunGraph",
    "TaskGroup",
    "TaskRow",
    "Timeline",
    "TimelineRow",
    "build_graph",
    "build_timeline",
    "group_nodes",
    "row_nodes",
]

NODE_LIMIT = 150  # task runs + subflows drawn one by one; past it, one node per task name
GROUP_LIMIT = 60  # task names drawn in the grouped graph (the most frequent)
CHAIN_LIMIT = 8  # downstream runs drawn (the list under the graph has them all)
_GROUP_NS = uuid.UUID("8f7b4f6e-5a0c-4c53-9d2b-2f1c7b8e0a11")
# The state shown for a group: the most alarming one any of its runs is in.
_SEVERITY = ("failed", "crashed", "running", "pending", "late", "paused", "cancelling",
             "cancelled", "scheduled", "completed", "unknown")  # fmt: skip


@dataclass(frozen=True)
class TaskRow:
    """What the graph reads of one task run (not its parameters, history or result)."""

    id: UUID
    name: str
    task_name: str
    state_type: str | None
    state_name: str | None
    start_time: dt.datetime | None
    end_time: dt.datetime | None
    task_inputs: Mapping[str, Sequence[str]]


@dataclass(frozen=True)
class TaskGroup:
    """All task runs of one task name in the flow run: counts per state and their time span."""

    task_name: str
    count: int
    states: Mapping[str, int]  # state name -> runs
    state_types: Mapping[str, int]  # state type -> runs
    start_time: dt.datetime | None
    end_time: dt.datetime | None


@dataclass(frozen=True)
class GraphNode:
    id: UUID
    kind: str  # "task" | "subflow" | "group"
    name: str
    href: str | None
    css: str  # state class
    label: str  # second line: state and duration, or counts
    start_time: dt.datetime | None
    end_time: dt.datetime | None
    count: int = 1


@dataclass(frozen=True)
class GraphEdge:
    upstream: UUID
    downstream: UUID
    kind: str  # "data" | "wait" | "subflow"
    label: str


@dataclass(frozen=True)
class ChainNode:
    """A run before (triggered this one) or after (triggered by it) in the chain, placed in the SVG."""

    run: Any  # FlowRun
    x: float
    y: float
    path: str  # the edge between it and the frame around this run's graph


@dataclass
class RunGraph:
    nodes: dict[UUID, GraphNode]
    edges: list[GraphEdge]
    layout: Layout
    grouped: bool
    offset_x: float  # where the frame around this run's nodes starts
    frame_width: float
    frame_height: float
    width: float
    height: float
    upstream: ChainNode | None = None
    downstream: list[ChainNode] = field(default_factory=list)
    more_downstream: int = 0


def _seconds(start: dt.datetime | None, end: dt.datetime | None, now: dt.datetime) -> float | None:
    if start is None:
        return None
    return max(0.0, ((end or now) - start).total_seconds())


def _short(value: float | None) -> str:
    if value is None:
        return "not started"
    if value < 1:
        return f"{value * 1000:.0f} ms"
    if value < 60:
        return f"{value:.1f} s"
    return f"{value / 60:.1f} min"


def row_nodes(
    rows: Sequence[TaskRow], subflows: Sequence[Any], now: dt.datetime
) -> tuple[dict[UUID, GraphNode], list[GraphEdge]]:
    """One node per task run and subflow run; edges from recorded inputs and calling tasks."""
    nodes: dict[UUID, GraphNode] = {}
    for r in rows:
        nodes[r.id] = GraphNode(
            r.id, "task", r.name, f"/task-runs/{r.id}", state_class(r.state_type, r.state_name),
            f"{r.state_name or 'Unknown'} · {_short(_seconds(r.start_time, r.end_time, now))}",
            r.start_time, r.end_time,
        )  # fmt: skip
    for s in subflows:
        nodes[s.id] = GraphNode(
            s.id, "subflow", s.name, f"/runs/{s.id}", state_class(s.state_type, s.state_name),
            f"subflow · {s.state_name or 'Unknown'} · {_short(_seconds(s.start_time, s.end_time, now))}",
            s.start_time, s.end_time,
        )  # fmt: skip
    edges: list[GraphEdge] = []
    for r in rows:
        for parameter, upstreams in r.task_inputs.items():
            for raw in upstreams:
                up = _uuid(raw)
                if up is not None and up in nodes and up != r.id:
                    kind = "wait" if parameter == "wait_for" else "data"
                    edges.append(GraphEdge(up, r.id, kind, parameter))
    for s in subflows:
        parent = getattr(s, "parent_task_run_id", None)
        if parent is not None and parent in nodes:
            edges.append(GraphEdge(parent, s.id, "subflow", "called in"))
    return nodes, edges


def group_id(task_name: str) -> UUID:
    """A stable node id for the group of a task name's runs."""
    return uuid.uuid5(_GROUP_NS, task_name)


def group_nodes(
    groups: Sequence[TaskGroup],
    links: Iterable[tuple[str, str, str]],
    subflows: Sequence[Any],
    parents: Mapping[UUID, str],
    now: dt.datetime,
) -> tuple[dict[UUID, GraphNode], list[GraphEdge]]:
    """One node per task name (the ``GROUP_LIMIT`` most frequent) and per subflow run; ``links`` are
    ``(upstream task name, downstream task name, kind)``; ``parents`` maps a subflow's calling task
    run id to that task's name."""
    shown = sorted(groups, key=lambda g: (-g.count, g.task_name))[:GROUP_LIMIT]
    nodes: dict[UUID, GraphNode] = {}
    for g in shown:
        css = min((state_class(t) for t in g.state_types), key=_rank, default="unknown")
        if "Late" in g.states and _rank("late") < _rank(css):
            css = "late"
        parts = ", ".join(
            f"{n} {name}" for name, n in sorted(g.states.items(), key=lambda i: -i[1])
        )
        nodes[group_id(g.task_name)] = GraphNode(
            group_id(g.task_name), "group", f"{g.task_name} · {g.count} runs", None, css, parts,
            g.start_time, g.end_time, g.count,
        )  # fmt: skip
    for s in subflows:
        nodes[s.id] = GraphNode(
            s.id, "subflow", s.name, f"/runs/{s.id}", state_class(s.state_type, s.state_name),
            f"subflow · {s.state_name or 'Unknown'} · {_short(_seconds(s.start_time, s.end_time, now))}",
            s.start_time, s.end_time,
        )  # fmt: skip
    edges = []
    for up, down, kind in sorted(set(links)):
        a, b = group_id(up), group_id(down)
        if a in nodes and b in nodes and a != b:
            edges.append(GraphEdge(a, b, kind, "wait_for" if kind == "wait" else "data"))
    for s in subflows:
        name = parents.get(getattr(s, "parent_task_run_id", None) or _NIL)
        if name is not None and group_id(name) in nodes:
            edges.append(GraphEdge(group_id(name), s.id, "subflow", "called in"))
    return nodes, edges


_NIL = UUID(int=0)


def _rank(css: str) -> int:
    return _SEVERITY.index(css) if css in _SEVERITY else len(_SEVERITY)


def _uuid(raw: Any) -> UUID | None:
    try:
        return raw if isinstance(raw, UUID) else UUID(str(raw))
    except ValueError:
        return None


NODE_W, NODE_H = 190.0, 46.0
_CHAIN_W, _CHAIN_H, _CHAIN_GAP = 190.0, 50.0, 70.0
_FRAME_PAD, _FRAME_HEAD = 14.0, 30.0


def build_graph(
    nodes: dict[UUID, GraphNode],
    edges: list[GraphEdge],
    grouped: bool,
    upstream: Any | None,
    downstream: Sequence[Any],
) -> RunGraph:
    """Lay the nodes out left to right inside a frame for this run, with the upstream run to the
    frame's left and the first ``CHAIN_LIMIT`` downstream runs to its right."""
    names = {k: n.name for k, n in nodes.items()}
    layout = layered_layout(
        list(nodes), edges, names, node_width=NODE_W, node_height=NODE_H, column_gap=60, row_gap=14
    )
    offset = (_CHAIN_W + _CHAIN_GAP) if upstream is not None else 0.0
    inner_w = layout.width if nodes else 260.0
    inner_h = layout.height if nodes else 40.0
    # Nodes sit at (14, 30) inside the frame; the layout's own 16 px margins are replaced by these.
    frame_w = inner_w - 32 + 2 * _FRAME_PAD + 6
    frame_h = inner_h - 32 + _FRAME_PAD + _FRAME_HEAD + 6
    shown = list(downstream[:CHAIN_LIMIT])
    right = offset + frame_w + _CHAIN_GAP
    chain_h = len(shown) * (_CHAIN_H + 12) - 12 if shown else 0
    height = max(frame_h, _CHAIN_H, chain_h) + 2
    mid = frame_h / 2
    graph = RunGraph(
        nodes=nodes, edges=edges, layout=layout, grouped=grouped, offset_x=offset,
        frame_width=frame_w, frame_height=frame_h,
        width=right + (_CHAIN_W if shown else -_CHAIN_GAP) + 2, height=height,
        more_downstream=max(0, len(downstream) - CHAIN_LIMIT),
    )  # fmt: skip
    if upstream is not None:
        y = mid - _CHAIN_H / 2
        path = _curve(_CHAIN_W, mid, offset, mid)
        graph.upstream = ChainNode(upstream, 0.0, round(y, 1), path)
    for i, run in enumerate(shown):
        y = i * (_CHAIN_H + 12)
        path = _curve(offset + frame_w, mid, right, y + _CHAIN_H / 2)
        graph.downstream.append(ChainNode(run, right, float(y), path))
    return graph


def _curve(x1: float, y1: float, x2: float, y2: float) -> str:
    m = (x1 + x2) / 2
    return f"M {x1:.1f} {y1:.1f} C {m:.1f} {y1:.1f}, {m:.1f} {y2:.1f}, {x2:.1f} {y2:.1f}"


@dataclass(frozen=True)
class TimelineRow:
    node: GraphNode
    y: float
    x: float | None  # bar start (None: not started)
    width: float
    duration: float | None


@dataclass(frozen=True)
class Timeline:
    rows: list[TimelineRow]
    ticks: list[tuple[float, str]]  # x, label (offset from the start)
    width: float
    height: float
    track_x: float
    track_width: float


_ROW_H, _NAME_W, _TIME_W, _TL_W, _AXIS_H = 22.0, 220.0, 80.0, 960.0, 22.0


def build_timeline(
    nodes: Iterable[GraphNode], start: dt.datetime | None, end: dt.datetime | None,
    now: dt.datetime,
) -> Timeline | None:  # fmt: skip
    """A row per node from its start to its end (or now), sorted by start; the span is the flow
    run's (or the nodes')."""
    ordered = sorted(nodes, key=lambda n: (n.start_time is None, n.start_time or now, n.name))
    started = [n for n in ordered if n.start_time is not None]
    if not started:
        return None
    firsts = [n.start_time for n in started if n.start_time is not None]
    begin = min([start, *firsts] if start else firsts)
    finish = max([end or now, *((n.end_time or now) for n in started)])
    span = max((finish - begin).total_seconds(), 1e-3)
    track_x, track_w = _NAME_W, _TL_W - _NAME_W - _TIME_W
    rows = []
    for i, node in enumerate(ordered):
        y = _AXIS_H + i * _ROW_H
        duration = _seconds(node.start_time, node.end_time, now)
        if node.start_time is None:
            rows.append(TimelineRow(node, y, None, 0.0, None))
            continue
        left = (node.start_time - begin).total_seconds() / span * track_w
        width = max(2.0, (duration or 0.0) / span * track_w)
        rows.append(
            TimelineRow(
                node, y, round(track_x + left, 1), round(min(width, track_w - left), 1), duration
            )
        )
    ticks = [
        (round(track_x + f * track_w, 1), "+" + _short(span * f) if f else "0")
        for f in (0, 0.25, 0.5, 0.75, 1)
    ]
    return Timeline(rows, ticks, _TL_W, _AXIS_H + len(rows) * _ROW_H + 4, track_x, track_w)
