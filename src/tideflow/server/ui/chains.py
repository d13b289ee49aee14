"""The chains page: deployments linked by automations (deployment -> trigger -> deployment, also
through custom events their runs emit, and alarms of proactive triggers) drawn as a layered graph,
each edge with its last firing, firings in the last 24 h and the lag from the upstream run's
Completed event to the downstream run Running."""

from __future__ import annotations

import datetime as dt
import statistics
from dataclasses import dataclass
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.ext.asyncio import AsyncSession

from tideflow.schemas import FlowRunFilter
from tideflow.schemas.deployments import DeploymentFilter
from tideflow.schemas.events import EventFilter
from tideflow.schemas.states import utcnow
from tideflow.server.storage import automations as automation_storage
from tideflow.server.storage import deployments as deployment_storage
from tideflow.server.storage import events as event_storage
from tideflow.server.storage import flow_runs as run_storage
from tideflow.server.triggers import state as trigger_state
from tideflow.server.ui.graph import Edge, chain_edges, custom_names, layered_layout
from tideflow.server.ui.rendering import database, render

__all__ = ["EdgeStats", "router"]

router = APIRouter(include_in_schema=False)

WINDOW = dt.timedelta(hours=24)
LAG_SAMPLES = 20
HISTORY = 500
CUSTOM_NAMES = 50  # custom event names looked up for emitters
EMITTER_SAMPLE = 50  # latest events of each custom name read to find who emits it


@dataclass(frozen=True)
class EdgeStats:
    last_fired: dt.datetime | None
    fired_24h: int
    lag_median: float | None  # seconds, upstream Completed -> downstream Running
    lag_last: float | None
    lag_samples: int


async def _stats(
    session: AsyncSession, automation_id: UUID, downstream: UUID, now: dt.datetime
) -> EdgeStats:
    fired = [
        f
        for f in await trigger_state.read_history(session, automation_id, HISTORY)
        if f.kind == "fired"
    ]
    recent = fired[:LAG_SAMPLES]
    run_to_event = {
        a.flow_run_id: f.triggering_event_id
        for f in recent
        for a in f.actions
        if a.flow_run_id is not None and f.triggering_event_id is not None
    }
    lags: list[float] = []
    if run_to_event:
        runs = await run_storage.read_flow_runs(
            session, FlowRunFilter(id=list(run_to_event), limit=len(run_to_event))
        )
        events = await event_storage.read_events(
            session,
            EventFilter(ids=list(set(run_to_event.values())), limit=min(500, len(run_to_event))),
        )
        occurred = {e.id: e.occurred for e in events.events}
        for run in sorted(runs, key=lambda r: r.created, reverse=True):
            event_time = occurred.get(run_to_event[run.id])
            if run.deployment_id == downstream and run.start_time and event_time:
                lags.append(max(0.0, (run.start_time - event_time).total_seconds()))
    return EdgeStats(
        last_fired=fired[0].fired_at if fired else None,
        fired_24h=sum(1 for f in fired if f.fired_at >= now - WINDOW),
        lag_median=statistics.median(lags) if lags else None,
        lag_last=lags[0] if lags else None,
        lag_samples=len(lags),
    )


async def _emitters(session: AsyncSession, names: list[str]) -> dict[str, set[UUID]]:
    """For each custom event name, the deployments that emitted it lately: a related deployment,
    or the deployment of a related (or the resource) flow run, in its latest events."""
    out: dict[str, set[UUID]] = {}
    run_of: dict[UUID, set[str]] = {}
    for name in names[:CUSTOM_NAMES]:
        page = await event_storage.read_events(
            session, EventFilter(event_names=[name], limit=EMITTER_SAMPLE)
        )
        for event in page.events:
            for resource in [event.resource, *event.related]:
                rid = resource.id
                if rid.startswith("tideflow.deployment."):
                    parsed = _uuid(rid.removeprefix("tideflow.deployment."))
                    if parsed:
                        out.setdefault(name, set()).add(parsed)
                elif rid.startswith("tideflow.flow-run."):
                    parsed = _uuid(rid.removeprefix("tideflow.flow-run."))
                    if parsed:
                        run_of.setdefault(parsed, set()).add(name)
    if run_of:
        runs = await run_storage.read_flow_runs(
            session, FlowRunFilter(id=list(run_of)[:1000], limit=1000)
        )
        for run in runs:
            if run.deployment_id is not None:
                for name in run_of[run.id]:
                    out.setdefault(name, set()).add(run.deployment_id)
    return out


def _uuid(text: str) -> UUID | None:
    try:
        return UUID(text)
    except ValueError:
        return None


@router.get("/chains", response_class=HTMLResponse)
async def chains_page(request: Request) -> HTMLResponse:
    now = utcnow()
    async with database(request).read() as session:
        deployments = await deployment_storage.read_deployments(
            session, DeploymentFilter(limit=1000)
        )
        automations = await automation_storage.read_all_automations(session)
        names = sorted(
            {n for a in automations for n in custom_names(a.trigger.model_dump(mode="json"))}
        )
        edges = chain_edges(automations, deployments, await _emitters(session, names))
        stats: dict[tuple[UUID, UUID], EdgeStats] = {}
        for edge in edges:
            key = (edge.automation_id, edge.downstream)
            if key not in stats:
                stats[key] = await _stats(session, edge.automation_id, edge.downstream, now)
    by_id = {d.id: d for d in deployments}
    alarms = {a.id: a for a in automations if any(e.downstream == a.id for e in edges)}
    linked = sorted({e.upstream for e in edges} | {e.downstream for e in edges}, key=str)
    node_names = {n: by_id[n].full_name if n in by_id else alarms[n].name for n in linked}
    layout = layered_layout(linked, edges, node_names)
    return render(
        request,
        "chains.html",
        title="Chains",
        layout=layout,
        deployments=by_id,
        alarms=alarms,
        node_names=node_names,
        edges=sorted(edges, key=lambda e: (node_names[e.upstream], node_names[e.downstream])),
        stats=stats,
        edge_key=_edge_key,
    )


def _edge_key(edge: Edge) -> tuple[UUID, UUID]:
    return (edge.automation_id, edge.downstream)
