"""The dashboard: runs of the last 24 hours by state (counts and an hourly chart), failing runs, late
runs, deployments that no runner serves and automations that fired recently."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.ext.asyncio import AsyncSession

from tideflow.schemas import FlowRunFilter, StateType
from tideflow.schemas.automations import Automation, FiringRecord
from tideflow.schemas.deployments import DeploymentFilter, DeploymentStatus
from tideflow.schemas.states import utcnow
from tideflow.server.storage import automations as automation_storage
from tideflow.server.storage import deployments as deployment_storage
from tideflow.server.storage import flow_runs as run_storage
from tideflow.server.triggers import state as trigger_state
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
        fired = await _fired_recently(session, since)
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
        fired=fired,
    )


async def _fired_recently(
    session: AsyncSession, since: dt.datetime
) -> list[tuple[Automation, FiringRecord]]:
    """Automations that fired since ``since`` with their latest firing, most recent first."""
    out = []
    for automation in await automation_storage.read_all_automations(session):
        history = await trigger_state.read_history(session, automation.id, 1)
        if history and history[0].fired_at >= since:
            out.append((automation, history[0]))
    out.sort(key=lambda pair: pair[1].fired_at, reverse=True)
    return out[:8]
