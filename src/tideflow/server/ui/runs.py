"""Flow-run pages: the filtered, paginated list (with its table fragment for live refresh) and the
run page (summary, state timeline, parameters, logs, parent and child runs)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.ext.asyncio import AsyncSession

from tideflow.schemas import FlowFilter, FlowRun, FlowRunFilter, LogFilter, StateType
from tideflow.schemas.deployments import DeploymentFilter
from tideflow.schemas.events import EventFilter
from tideflow.schemas.limits import MAX_OFFSET
from tideflow.schemas.states import utcnow
from tideflow.schemas.task_runs import TaskRunFilter
from tideflow.server.storage import NotFound
from tideflow.server.storage import deployments as deployment_storage
from tideflow.server.storage import events as event_storage
from tideflow.server.storage import flow_runs as run_storage
from tideflow.server.storage import flows as flow_storage
from tideflow.server.storage import logs as log_storage
from tideflow.server.storage import task_runs as task_run_storage
from tideflow.server.storage.tables import flow_runs as flow_runs_table
from tideflow.server.ui import queries, run_graph_data
from tideflow.server.ui.artifacts import run_artifacts
from tideflow.server.ui.assets import run_materializations
from tideflow.server.ui.finding import RANGES, TimeRange, bucket_counts, parse_range
from tideflow.server.ui.rendering import database, not_found, render
from tideflow.server.ui.resume import resume_form
from tideflow.server.ui.run_graph import (
    NODE_LIMIT,
    build_graph,
    build_timeline,
    group_nodes,
    row_nodes,
)
from tideflow.server.ui.run_params import resolved_parameters

__all__ = ["RANGES", "RunQuery", "router", "table_context"]

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 25
MAX_PAGE = MAX_OFFSET // PAGE_SIZE + 1


def _uuid(value: str | None) -> UUID | None:
    try:
        return UUID(value) if value else None
    except ValueError:
        return None


@dataclass
class RunQuery:
    """The list's filters as read from the query string; values that do not parse are ignored."""

    state: str = ""
    flow: str = ""
    deployment: str = ""
    tag: str = ""
    range: str = ""
    page: int = 1
    params: dict[str, str] = field(default_factory=dict)
    span: TimeRange = field(default_factory=lambda: TimeRange("", None, None, "", ""))

    @classmethod
    def parse(cls, request: Request, **fixed: str) -> RunQuery:
        """The query from ``request``; ``fixed`` values (a page's own deployment) override it."""
        q = {**request.query_params, **fixed}
        state = q.get("state", "")
        # One state type, LATE, or several types joined by commas ("FAILED,CRASHED").
        if state != "LATE" and not all(p in StateType.__members__ for p in state.split(",")):
            state = ""
        try:
            page = max(1, int(q.get("page", "1")))
        except ValueError:
            page = 1
        if page > MAX_PAGE:  # its offset would overflow the database's integers
            raise HTTPException(422, f"query.page: must be at most {MAX_PAGE}")
        span = parse_range(q, utcnow())
        query = cls(
            state=state,
            flow=q.get("flow", "").strip(),
            deployment=q.get("deployment", "") if _uuid(q.get("deployment")) else "",
            tag=q.get("tag", "").strip(),
            range=span.preset,
            page=page,
            span=span,
        )
        query.params = {
            "state": query.state,
            "flow": query.flow,
            "deployment": query.deployment,
            "tag": query.tag,
            **span.params,
        }
        return query

    def run_filter(self, now: dt.datetime) -> FlowRunFilter:
        flt: dict[str, Any] = {"limit": PAGE_SIZE, "offset": (self.page - 1) * PAGE_SIZE}
        if self.state == "LATE":
            flt["state_name"] = ["Late"]
        elif self.state:
            flt["state_type"] = [StateType(part) for part in self.state.split(",")]
        if self.flow:
            flt["flow_name"] = [self.flow]
        if self.deployment:
            flt["deployment_id"] = [UUID(self.deployment)]
        if self.tag:
            flt["tags_all"] = [self.tag]
        if self.range in RANGES:
            flt["created_after"] = now - RANGES[self.range][1]
        elif self.span.since:
            flt["created_after"] = self.span.since
        if self.span.until:
            flt["created_before"] = self.span.until
        return FlowRunFilter(**flt)

    @property
    def filtered(self) -> bool:
        return any(self.params.values())


async def table_context(request: Request, query: RunQuery) -> dict[str, Any]:
    """What ``_runs_table.html`` shows for ``query``: one page of runs and the totals."""
    flt = query.run_filter(utcnow())
    async with database(request).read() as session:
        runs = await run_storage.read_flow_runs(session, flt)
        total = await run_storage.count_flow_runs(session, flt)
    pages = max(1, -(-total // PAGE_SIZE))
    return {"query": query, "runs": runs, "total": total, "pages": pages}


@router.get("/runs", response_class=HTMLResponse)
async def runs_page(request: Request) -> HTMLResponse:
    query = RunQuery.parse(request)
    context = await table_context(request, query)
    now = utcnow()
    flt = query.run_filter(now)
    async with database(request).read() as session:
        flows = await flow_storage.read_flows(session, FlowFilter(limit=1000))
        deployments = await deployment_storage.read_deployments(
            session, DeploymentFilter(limit=1000)
        )
        # Runs created per bucket over the chosen range (the last 24 h if none).
        chart = await bucket_counts(
            session,
            flow_runs_table.c.created,
            run_storage.filter_clauses(flt, session.get_bind().dialect.name),
            flt.created_after or now - RANGES["24h"][1],
            flt.created_before or now,
            flow_runs_table,
        )
    deployments.sort(key=lambda d: d.full_name)
    return render(
        request,
        "runs.html",
        title="Flow runs",
        flows=flows,
        deployments=deployments,
        ranges=RANGES,
        chart=chart,
        **context,
    )


@router.get("/runs/table", response_class=HTMLResponse)
async def runs_table(request: Request) -> HTMLResponse:
    """The table part of the list, fetched by the page every few seconds."""
    return render(
        request, "_runs_table.html", **await table_context(request, RunQuery.parse(request))
    )


async def _run_context(request: Request, run_id: UUID) -> dict[str, Any] | None:
    async with database(request).read() as session:
        run = await run_storage.read_flow_run(session, run_id)
        if run is None:
            return None
        try:
            states = await run_storage.read_flow_run_states(session, run_id, limit=1000)
        except NotFound:
            return None
        parent = (
            await run_storage.read_flow_run(session, run.parent_flow_run_id)
            if run.parent_flow_run_id
            else None
        )
        children = await run_storage.read_flow_runs(
            session, FlowRunFilter(parent_flow_run_id=run_id, sort="CREATED_ASC", limit=100)
        )
        chain = await _chain(session, run)
        tasks = await _graph(session, run, children, chain)
        placement = await queries.run_placement(session, run.work_queue_id, _claimers(states))
        deployment = (
            await deployment_storage.read_deployment(session, run.deployment_id)
            if run.deployment_id
            else None
        )
    shown = (
        resolved_parameters(
            run.parameters, deployment.parameter_openapi_schema, deployment.parameters
        )
        if deployment is not None
        else resolved_parameters(run.parameters)
    )
    return {
        "run": run,
        "placement": placement,
        "shown_parameters": shown,
        "states": states,
        "parent": parent,
        "children": children,
        **chain,
        **tasks,
    }


def _claimers(states: list[Any]) -> list[UUID]:
    """The runners that claimed the run (Pending with a ``runner_id``), latest first."""
    found: list[UUID] = []
    for state in sorted(states, key=lambda s: s.timestamp, reverse=True):
        extra = (state.details.model_extra or {}) if state.details is not None else {}
        runner = _uuid(str(extra.get("runner_id") or ""))
        if runner is not None and runner not in found:
            found.append(runner)
    return found


async def _graph(
    session: AsyncSession, run: FlowRun, children: list[FlowRun], chain: dict[str, Any]
) -> dict[str, Any]:
    """The run's graph (task runs one by one, or grouped by task name past NODE_LIMIT) with its
    chain, and its timeline."""
    now = utcnow()
    total = await task_run_storage.count_task_runs(session, TaskRunFilter(flow_run_id=[run.id]))
    subflow_total = (
        await run_graph_data.count_subflows(session, run.id)
        if len(children) >= 100
        else len(children)
    )
    counts: dict[str, int] = {}
    if total + len(children) <= NODE_LIMIT:
        rows = await run_graph_data.task_rows(session, run.id, NODE_LIMIT)
        nodes, edges = row_nodes(rows, children, now)
        for row in rows:
            key = row.state_name or "Unknown"
            counts[key] = counts.get(key, 0) + 1
        grouped = False
    else:
        groups = await run_graph_data.task_groups(session, run.id)
        links = await run_graph_data.group_links(session, run.id)
        callers = [c.parent_task_run_id for c in children if c.parent_task_run_id]
        parents = await run_graph_data.task_names_of(session, callers)
        nodes, edges = group_nodes(groups, links, children, parents, now)
        for g in groups:
            for name, n in g.states.items():
                counts[name] = counts.get(name, 0) + n
        grouped = True
    upstream, downstream = chain["upstream"], chain["downstream"]
    graph = (
        build_graph(nodes, edges, grouped, upstream, downstream)
        if nodes or upstream or downstream
        else None
    )
    return {
        "run_graph": graph,
        "run_timeline": build_timeline(nodes.values(), run.start_time, run.end_time, now),
        "task_total": total,
        "subflow_total": subflow_total,
        "task_counts": counts,
        "node_limit": NODE_LIMIT,
    }


async def _chain(session: AsyncSession, run: FlowRun) -> dict[str, Any]:
    """The run's events, what triggered it (event, automation, upstream run) and what it triggered."""
    events = (
        await event_storage.read_events(
            session, EventFilter(resource_ids=[f"tideflow.flow-run.{run.id}"], limit=100)
        )
    ).events
    trigger_event = None
    upstream = None
    event_id = await queries.triggering_event_id(session, run.id)
    if event_id is not None:
        trigger_event = await event_storage.read_event(session, event_id)
        if trigger_event is not None:
            upstream_id = _uuid(trigger_event.resource.id.removeprefix("tideflow.flow-run."))
            if trigger_event.resource.id.startswith("tideflow.flow-run.") and upstream_id:
                upstream = await run_storage.read_flow_run(session, upstream_id)
    automation = None
    if run.created_by is not None and run.created_by.type == "automation":
        automation_id = _uuid(run.created_by.id.removeprefix("tideflow.automation."))
        automation = {"id": automation_id, "name": run.created_by.name or run.created_by.id}
    downstream_ids = await queries.runs_triggered_by(session, [e.id for e in events])
    downstream = (
        await run_storage.read_flow_runs(
            session, FlowRunFilter(id=downstream_ids, sort="CREATED_ASC", limit=100)
        )
        if downstream_ids
        else []
    )
    return {
        "events": events,
        "trigger_event": trigger_event,
        "upstream": upstream,
        "automation": automation,
        "downstream": downstream,
    }


@router.get("/runs/{run_id}", response_class=HTMLResponse)
async def run_page(request: Request, run_id: str) -> HTMLResponse:
    parsed = _uuid(run_id)
    context = await _run_context(request, parsed) if parsed else None
    if context is None:
        return not_found(request, f"flow run {run_id}")
    async with database(request).read() as session:
        logs = await log_storage.read_logs(
            session, LogFilter(flow_run_id=[context["run"].id], limit=2000)
        )
        artifacts = await run_artifacts(session, context["run"].id)
        materializations = await run_materializations(session, context["run"].id)
        resume = await resume_form(session, context["run"])
    return render(
        request, "run.html", title=context["run"].name, logs=logs, artifacts=artifacts,
        materializations=materializations, resume=resume, **context,
    )  # fmt: skip


@router.get("/runs/{run_id}/summary", response_class=HTMLResponse)
async def run_summary(request: Request, run_id: str) -> HTMLResponse:
    """The run page's live part (summary, timeline, child runs), fetched while the run is active."""
    parsed = _uuid(run_id)
    context = await _run_context(request, parsed) if parsed else None
    if context is None:
        return not_found(request, f"flow run {run_id}")
    return render(request, "_run_summary.html", **context)


@router.get("/task-runs/{task_run_id}", response_class=HTMLResponse)
async def task_run_page(request: Request, task_run_id: str) -> HTMLResponse:
    """A task run: its flow run, state history, parameters, upstream task runs, result and logs."""
    parsed = _uuid(task_run_id)
    async with database(request).read() as session:
        task_run = await task_run_storage.read_task_run(session, parsed) if parsed else None
        if task_run is None:
            return not_found(request, f"task run {task_run_id}")
        flow_run = (
            await run_storage.read_flow_run(session, task_run.flow_run_id)
            if task_run.flow_run_id
            else None
        )
        upstream_ids = [u for ids in task_run.task_inputs.values() for u in ids]
        upstream = (
            await task_run_storage.read_task_runs(
                session, TaskRunFilter(id=upstream_ids, limit=1000)
            )
            if upstream_ids
            else []
        )
        # A background task run (task.delay()) has no flow run: its records carry the task run only.
        logs = await log_storage.read_logs(
            session,
            LogFilter(
                flow_run_id=[flow_run.id] if flow_run else None,
                task_run_id=[task_run.id],
                limit=2000,
            ),
        )
    by_id = {u.id: u for u in upstream}
    inputs = {
        parameter: [by_id.get(u) or u for u in ids]
        for parameter, ids in task_run.task_inputs.items()
    }
    return render(
        request, "task_run.html", title=task_run.name, task_run=task_run, flow_run=flow_run,
        inputs=inputs, logs=logs,
    )  # fmt: skip
