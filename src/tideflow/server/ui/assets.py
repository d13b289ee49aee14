"""Asset pages: the catalogue with its lineage graph, one asset (properties, latest
materialization, lineage around it, history), and the "materialized" section of a flow-run page.

The graph reuses the chains page's layered layout (``ui.graph``); asset keys become node ids
through a name-based UUID, so the layout code needs no change.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import NAMESPACE_URL, UUID, uuid5

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.ext.asyncio import AsyncSession

from tideflow.schemas.assets import (
    ASSET_EVENT_PREFIX,
    AssetFilter,
    AssetLineage,
    AssetRecord,
    asset_key_problem,
)
from tideflow.schemas.events import EventFilter, ReceivedEvent
from tideflow.server.storage import assets as storage
from tideflow.server.storage.events import read_events
from tideflow.server.ui.graph import Layout, layered_layout
from tideflow.server.ui.rendering import database, not_found, render

__all__ = ["AssetGraph", "asset_graph", "router", "run_materializations"]

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 100
HISTORY_SHOWN = 50
RUN_MATERIALIZATIONS_SHOWN = 100
GRAPH_DEPTH = 2


@dataclass(frozen=True)
class _Link:
    upstream: UUID
    downstream: UUID


@dataclass
class AssetGraph:
    """A lineage laid out for the SVG: node boxes by id, and each id's asset."""

    layout: Layout
    assets: dict[UUID, AssetRecord]
    focus: UUID | None


def node_id(key: str) -> UUID:
    return uuid5(NAMESPACE_URL, f"tideflow.asset.{key}")


def asset_graph(lineage: AssetLineage) -> AssetGraph | None:
    """The layout of ``lineage``; None when it has no edge to draw."""
    if not lineage.edges:
        return None
    linked = {e.upstream for e in lineage.edges} | {e.downstream for e in lineage.edges}
    if lineage.root is not None:
        linked.add(lineage.root)
    by_id = {node_id(n.key): n for n in lineage.nodes if n.key in linked}
    links = [
        _Link(node_id(e.upstream), node_id(e.downstream))
        for e in lineage.edges
        if node_id(e.upstream) in by_id and node_id(e.downstream) in by_id
    ]
    names = {i: a.properties.name or a.key for i, a in by_id.items()}
    layout = layered_layout(sorted(by_id, key=lambda i: by_id[i].key), links, names)
    focus = node_id(lineage.root) if lineage.root is not None else None
    return AssetGraph(layout, by_id, focus)


async def run_materializations(session: AsyncSession, run_id: UUID) -> list[ReceivedEvent]:
    """The materialization events of flow run ``run_id``, newest first."""
    flt = EventFilter(
        event_prefixes=[ASSET_EVENT_PREFIX],
        related_ids=[f"tideflow.flow-run.{run_id}"],
        limit=RUN_MATERIALIZATIONS_SHOWN,
    )
    return (await read_events(session, flt)).events


def _page(request: Request) -> int:
    try:
        return min(max(1, int(request.query_params.get("page", "1"))), 100_000)
    except ValueError:
        return 1


@router.get("/assets", response_class=HTMLResponse)
async def assets_page(request: Request) -> HTMLResponse:
    page = _page(request)
    prefix = request.query_params.get("prefix", "")[:512] or None
    flt = AssetFilter(key_prefix=prefix, limit=PAGE_SIZE + 1, offset=(page - 1) * PAGE_SIZE)
    async with database(request).read() as session:
        found = await storage.read_assets(session, flt)
        lineage = await storage.read_lineage(session, None, 1)
    return render(
        request, "assets.html", title="Assets", assets=found[:PAGE_SIZE], page=page,
        more=len(found) > PAGE_SIZE, graph=asset_graph(lineage), prefix=prefix or "",
        truncated=lineage.truncated,
    )  # fmt: skip


@router.get("/assets/asset", response_class=HTMLResponse)
async def asset_page(request: Request) -> HTMLResponse:
    key = request.query_params.get("key", "")
    if asset_key_problem(key):
        return not_found(request, f"asset {key[:80]!r}")
    async with database(request).read() as session:
        found = await storage.read_asset(session, key)
        if found is None:
            return not_found(request, f"asset {key!r}")
        lineage = await storage.read_lineage(session, key, GRAPH_DEPTH)
        history = await read_events(
            session,
            EventFilter(
                resource_ids=[key], event_prefixes=[ASSET_EVENT_PREFIX], limit=HISTORY_SHOWN
            ),
        )
    return render(
        request, "asset.html", title=found.properties.name or key, asset=found,
        graph=asset_graph(lineage), history=history.events,
    )  # fmt: skip
