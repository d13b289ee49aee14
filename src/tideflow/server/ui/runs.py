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
from tideflow.server.ui import queries
from tideflow.server.ui.artifacts import run_artifacts
from tideflow.server.ui.rendering import database, not_found, render
from tideflow.server.ui.run_params import resolved_parameters
from tideflow.server.ui.task_graph import GRAPH_LIMIT, task_graph, task_timeline

__all__ = ["RANGES", "RunQuery", "router", "table_context"]

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 25
TASK_RUNS_SHOWN = 1000  # task runs listed on a run page (counted beyond)
MAX_PAGE = MAX_OFFSET // PAGE_SIZE + 1
RANGES: dict[str, tuple[str, dt.timedelta]] = {
    "1h": ("Last hour", dt.timedelta(hours=1)),
    "24h": ("Last 24 hours", dt.timedelta(hours=24)),
    "7d": ("Last 7 days", dt.timedelta(days=7)),
    "30d": ("Last 30 days", dt.timedelta(days=30)),
}


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
        rng = q.get("range", "")
        query = cls(
            state=state,
            flow=q.get("flow", "").strip(),
            deployment=q.get("deployment", "") if _uuid(q.get("deployment")) else "",
            tag=q.get("tag", "").strip(),
            range=rng if rng in RANGES else "",
            page=page,
        )
        query.params = {
            "state": query.state,
            "flow": query.flow,
            "deployment": query.deployment,
            "tag": query.tag,
            "range": query.range,
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
        if self.range:
            flt["created_after"] = now - RANGES[self.range][1]
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
    context = await table_context(request, RunQuery.parse(request))
    async with database(request).read() as session:
        flows = await flow_storage.read_flows(session, FlowFilter(limit=1000))
        deployments = await deployment_storage.read_deployments(
            session, DeploymentFilter(limit=1000)
        )
    deployments.sort(key=lambda d: d.full_name)
    return render(
        request,
        "runs.html",
        title="Flow runs",
        flows=flows,
        deployments=deployments,
        ranges=RANGES,
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
            states = await run_storage.read_flow_run_states(session, run_id)
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
        tasks = await _task_runs(session, run)
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
        "shown_parameters": shown,
        "states": states,
        "parent": parent,
        "children": children,
        **chain,
        **tasks,
    }


async def _task_runs(session: AsyncSession, run: FlowRun) -> dict[str, Any]:
    """The run's task runs (first TASK_RUNS_SHOWN by start) with their graph and timeline."""
    flt = TaskRunFilter(flow_run_id=[run.id], sort="START_TIME_ASC", limit=TASK_RUNS_SHOWN)
    task_runs = await task_run_storage.read_task_runs(session, flt)
    total = (
        await task_run_storage.count_task_runs(session, TaskRunFilter(flow_run_id=[run.id]))
        if len(task_runs) == TASK_RUNS_SHOWN
        else len(task_runs)
    )
    counts: dict[str, int] = {}
    for task_run in task_runs:
        key = task_run.state_name or "Unknown"
        counts[key] = counts.get(key, 0) + 1
    return {
        "task_runs": task_runs,
        "task_by_id": {task_run.id: task_run for task_run in task_runs},
        "task_total": total,
        "task_counts": counts,
        "task_graph": task_graph(task_runs),
        "task_bars": task_timeline(task_runs, run.start_time, run.end_time),
        "graph_limit": GRAPH_LIMIT,
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
    return render(
        request, "run.html", title=context["run"].name, logs=logs, artifacts=artifacts, **context
    )


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
