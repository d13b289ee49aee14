"""The chain graph, pure: which deployments automations link (deployment -> trigger -> deployment),
through the upstream's own events or the custom events it emits, in plain, compound and sequence
triggers; proactive triggers ("did not happen in time") are alarms, drawn apart, ending at the
deployment they run or at the automation itself. Plus a layered left-to-right layout of them for
an SVG (longest-path layers, barycentre order)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from uuid import UUID

__all__ = [
    "Edge",
    "Layout",
    "Link",
    "NodeBox",
    "PathBox",
    "chain_edges",
    "custom_names",
    "layered_layout",
]

_ROLE = "tideflow.resource.role"
_NAME = "tideflow.resource.name"
_ID = "tideflow.resource.id"


@dataclass(frozen=True)
class Edge:
    """An automation whose trigger watches ``upstream`` and whose action runs ``downstream`` (an
    alarm with no deployment to run ends at its automation: ``downstream == automation_id``)."""

    upstream: UUID
    downstream: UUID
    automation_id: UUID
    automation_name: str
    enabled: bool
    kind: str = "trigger"  # "trigger" | "alarm" (a proactive trigger: the events did not come)
    via: str = ""  # the custom event names the link goes through ("" for the deployment's own)


def _values(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def _watched(
    trigger: Mapping[str, Any], by_name: Mapping[str, list[UUID]], ids: set[UUID]
) -> set[UUID]:
    """Deployments a trigger's ``match_related`` (or ``match``) names, in composites too."""
    out: set[UUID] = set()
    for child in trigger.get("triggers") or []:
        if isinstance(child, Mapping):
            out |= _watched(child, by_name, ids)
    related = trigger.get("match_related") or []
    specs = [
        s for s in (related if isinstance(related, list) else [related]) if isinstance(s, Mapping)
    ]
    match = trigger.get("match")
    if isinstance(match, Mapping) and _ID in match:
        # A trigger on deployment events themselves (tideflow.deployment.<id> as the resource).
        specs.append({_ROLE: "deployment", _ID: match[_ID]})
    for spec in specs:
        roles = _values(spec.get(_ROLE, "deployment"))
        if "deployment" not in roles:
            continue
        for name in _values(spec[_NAME]) if _NAME in spec else []:
            out.update(by_name.get(name, []))
        for rid in _values(spec[_ID]) if _ID in spec else []:
            try:
                candidate = UUID(rid.removeprefix("tideflow.deployment."))
            except ValueError:
                continue
            if candidate in ids:
                out.add(candidate)
    return out


def _leaves(trigger: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The event triggers inside a trigger (itself, or those of a compound or sequence)."""
    children = trigger.get("triggers")
    if isinstance(children, list):
        return [leaf for c in children if isinstance(c, Mapping) for leaf in _leaves(c)]
    return [trigger]


def custom_names(trigger: Mapping[str, Any]) -> set[str]:
    """Event names a trigger expects that the server does not emit itself (no wildcards)."""
    return {
        str(name)
        for leaf in _leaves(trigger)
        for name in leaf.get("expect") or []
        if not str(name).startswith("tideflow.") and "*" not in str(name)
    }


def chain_edges(
    automations: Iterable[Any],
    deployments: Iterable[Any],
    emitters: Mapping[str, set[UUID]] | None = None,
) -> list[Edge]:
    """Edges for ``automations`` (Automation objects) between ``deployments`` (Deployment objects);
    ``emitters`` maps a custom event name to the deployments whose runs emitted it. An automation
    that runs a deployment chosen at firing time ("inferred") has no fixed edge."""
    deployments = list(deployments)
    emitters = emitters or {}
    ids = {d.id for d in deployments}
    by_name: dict[str, list[UUID]] = {}
    for d in deployments:
        by_name.setdefault(d.name, []).append(d.id)
        by_name.setdefault(d.full_name, []).append(d.id)
    edges: dict[tuple[UUID, UUID, UUID, str], Edge] = {}
    for automation in automations:
        trigger = automation.trigger.model_dump(mode="json")
        targets = [
            a.deployment_id
            for a in automation.actions
            if getattr(a, "type", "") == "run-deployment"
            and isinstance(getattr(a, "deployment_id", None), UUID)
            and a.deployment_id in ids
        ]
        for leaf in _leaves(trigger):
            alarm = leaf.get("posture") == "Proactive"
            kind = "alarm" if alarm else "trigger"
            sources = {u: "" for u in _watched(leaf, by_name, ids)}
            for name in sorted(custom_names(leaf)):
                for u in emitters.get(name, set()) & ids:
                    sources[u] = ", ".join(filter(None, [sources.get(u, ""), name]))
            # An alarm that runs nothing still belongs on the picture: it ends at its automation.
            ends = targets or ([automation.id] if alarm else [])
            for upstream in sorted(sources, key=str):
                for target in ends:
                    key = (upstream, target, automation.id, kind)
                    via = sources[upstream]
                    if key in edges:  # another leaf of the same trigger: one edge, names merged
                        before = edges[key].via
                        via = ", ".join(sorted(set(filter(None, [*before.split(", "), via]))))
                    edges[key] = Edge(upstream, target, automation.id, automation.name,
                                      automation.enabled, kind, via)  # fmt: skip
    return list(edges.values())


class Link(Protocol):
    """What the layout reads of an edge (chain Edges, task-run dependencies)."""

    @property
    def upstream(self) -> UUID: ...

    @property
    def downstream(self) -> UUID: ...


@dataclass(frozen=True)
class NodeBox:
    id: UUID
    layer: int
    x: float
    y: float


@dataclass(frozen=True)
class PathBox:
    edge: Any  # the Link it draws
    d: str  # the SVG path
    label_x: float
    label_y: float


@dataclass(frozen=True)
class Layout:
    nodes: list[NodeBox]
    paths: list[PathBox]
    width: float
    height: float
    node_width: float
    node_height: float


def _layers(nodes: Sequence[UUID], edges: Sequence[Link]) -> dict[UUID, int]:
    layer = dict.fromkeys(nodes, 0)
    # Longest path from the sources; at most len(nodes) rounds, so a cycle cannot loop forever.
    for _ in range(len(nodes)):
        changed = False
        for e in edges:
            if e.upstream != e.downstream and layer[e.downstream] < layer[e.upstream] + 1:
                if layer[e.upstream] + 1 < len(nodes):
                    layer[e.downstream] = layer[e.upstream] + 1
                    changed = True
        if not changed:
            break
    return layer


def layered_layout(
    nodes: Sequence[UUID],
    edges: Sequence[Link],
    names: Mapping[UUID, str],
    *,
    node_width: float = 220,
    node_height: float = 58,
    column_gap: float = 170,
    row_gap: float = 46,
    margin: float = 16,
) -> Layout:
    """Left-to-right columns by longest path; in each column, nodes ordered by the mean row of
    their upstreams (then name) to keep edges short and uncrossed where it is easy."""
    layer = _layers(nodes, edges)
    columns: dict[int, list[UUID]] = {}
    for node in sorted(nodes, key=lambda n: names.get(n, str(n))):
        columns.setdefault(layer[node], []).append(node)
    row: dict[UUID, float] = {}
    for index in sorted(columns):

        def key(n: UUID) -> tuple[float, str]:
            ups = [row[e.upstream] for e in edges if e.downstream == n and e.upstream in row]
            return (sum(ups) / len(ups) if ups else float("inf"), names.get(n, str(n)))

        columns[index].sort(key=key)
        for position, node in enumerate(columns[index]):
            row[node] = position
    rows = max((len(c) for c in columns.values()), default=0)
    boxes = {
        node: NodeBox(
            node,
            layer[node],
            margin + layer[node] * (node_width + column_gap),
            margin + row[node] * (node_height + row_gap),
        )
        for node in nodes
    }
    paths = []
    for e in edges:
        a, b = boxes[e.upstream], boxes[e.downstream]
        x1, y1 = a.x + node_width, a.y + node_height / 2
        x2, y2 = b.x, b.y + node_height / 2
        if b.layer <= a.layer:  # a back edge (cycle) or self-loop: go around below
            below = max(a.y, b.y) + node_height + row_gap / 2
            d = f"M {x1:.1f} {y1:.1f} C {x1 + 60:.1f} {below:.1f}, {x2 - 60:.1f} {below:.1f}, {x2:.1f} {y2:.1f}"
            label = ((x1 + x2) / 2, below)
        else:
            mid = (x1 + x2) / 2
            d = f"M {x1:.1f} {y1:.1f} C {mid:.1f} {y1:.1f}, {mid:.1f} {y2:.1f}, {x2:.1f} {y2:.1f}"
            label = (mid, (y1 + y2) / 2)
        paths.append(PathBox(e, d, round(label[0], 1), round(label[1], 1)))
    width = (
        margin * 2
        + (max(columns, default=0) + 1) * node_width
        + max(columns, default=0) * column_gap
    )
    height = margin * 2 + rows * node_height + max(rows - 1, 0) * row_gap + row_gap / 2
    return Layout(list(boxes.values()), paths, width, height, node_width, node_height)
