"""The dashboard: runs of the last 24 hours by state (counts and an hourly chart), failing runs, late
runs and deployments that no runner serves."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from tideflow.schemas import FlowRunFilter, StateType
from tideflow.schemas.deployments import DeploymentFilter, DeploymentStatus
from tideflow.schemas.states import utcnow
from tideflow.server.storage import deployments as deployment_storage
from tideflow.server.storage import flow_runs as run_storage
from tideflow.server.ui import queries, views
from tideflow.server.ui.rendering import database, render

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

WINDOW = dt.timedelta(hours=24)


@router.get("/", response_class=HTMLResponse)
async def dashboard(request: Request) -> HTMLResponse:
    now = utcnow()
    since = now - WINDOW
    async with database(request).read() as session:
        counts = await queries.state_counts_since(session, since)
        times = await queries.run_times_since(session, since)
        failing = await run_storage.read_flow_runs(
            session,
            FlowRunFilter(
                state_type=[StateType.FAILED, StateType.CRASHED], created_after=since, limit=8
            ),
        )
        late = await run_storage.read_flow_runs(
            session, FlowRunFilter(state_name=["Late"], sort="EXPECTED_START_TIME_ASC", limit=8)
        )
        not_ready = await deployment_storage.read_deployments(
            session, DeploymentFilter(status=DeploymentStatus.NOT_READY, paused=False, limit=8)
        )
    return render(
        request,
        "dashboard.html",
        title="Dashboard",
        counts=counts,
        total=sum(counts.values()),
        bars=views.hourly_chart(times, now),
        failing=failing,
        late=late,
        not_ready=not_ready,
    )
