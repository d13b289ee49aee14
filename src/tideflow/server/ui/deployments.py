"""Deployment pages: the list (status, paused, schedules, triggers, last run) and the deployment page
(facts, pause/resume, the Run form built from its parameter schema, its runs and its automations)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.ext.asyncio import AsyncSession

from tideflow.schemas import FlowRunFilter
from tideflow.schemas.automations import Automation
from tideflow.schemas.deployments import DeploymentFilter
from tideflow.server.storage import automations as automation_storage
from tideflow.server.storage import deployments as storage
from tideflow.server.storage import flow_runs as run_storage
from tideflow.server.storage import work_pools as pool_storage
from tideflow.server.triggers import state as trigger_state
from tideflow.server.triggers.owned import owner_resource
from tideflow.server.ui.forms import parameter_fields
from tideflow.server.ui.rendering import database, not_found, read_by_id, render
from tideflow.server.ui.runs import RunQuery, table_context

__all__ = ["automations_of", "router"]

router = APIRouter(include_in_schema=False)


def automations_of(deployment_id: UUID, automations: list[Automation]) -> list[Automation]:
    """The automations a deployment owns (its triggers) or that run it."""
    owner = owner_resource(deployment_id)
    out = []
    for automation in automations:
        runs_it = any(
            getattr(a, "type", "") == "run-deployment"
            and getattr(a, "deployment_id", None) == deployment_id
            for a in [*automation.actions, *automation.actions_on_trigger]
        )
        if automation.owner_resource == owner or runs_it:
            out.append(automation)
    return out


async def _last_fired(session: AsyncSession, automations: list[Automation]) -> dict[UUID, Any]:
    out = {}
    for automation in automations:
        history = await trigger_state.read_history(session, automation.id, 1)
        out[automation.id] = history[0].fired_at if history else None
    return out


@router.get("/deployments", response_class=HTMLResponse)
async def deployments_page(request: Request) -> HTMLResponse:
    async with database(request).read() as session:
        deployments = await storage.read_deployments(session, DeploymentFilter(limit=1000))
        last_runs = {}
        for deployment in deployments:
            runs = await run_storage.read_flow_runs(
                session, FlowRunFilter(deployment_id=[deployment.id], limit=1)
            )
            last_runs[deployment.id] = runs[0] if runs else None
    deployments.sort(key=lambda d: d.full_name)
    return render(
        request,
        "deployments.html",
        title="Deployments",
        deployments=deployments,
        last_runs=last_runs,
    )


@router.get("/deployments/{deployment_id}", response_class=HTMLResponse)
async def deployment_page(request: Request, deployment_id: str) -> HTMLResponse:
    deployment = await read_by_id(request, deployment_id, storage.read_deployment)
    if deployment is None:
        return not_found(request, f"deployment {deployment_id}")
    async with database(request).read() as session:
        automations = automations_of(
            deployment.id, await automation_storage.read_all_automations(session)
        )
        last_fired = await _last_fired(session, automations)
        pool = (
            await pool_storage.read_work_pool(session, deployment.work_pool_name)
            if deployment.work_pool_name
            else None
        )
    variables = (pool.base_job_template.get("variables") or {}) if pool else {}
    properties = variables.get("properties") if isinstance(variables, dict) else None
    query = RunQuery.parse(request, deployment=str(deployment.id))
    return render(
        request,
        "deployment.html",
        title=deployment.full_name,
        deployment=deployment,
        fields=parameter_fields(deployment.parameter_openapi_schema, deployment.parameters),
        automations=automations,
        last_fired=last_fired,
        job_variable_names=sorted(properties) if isinstance(properties, dict) else [],
        **await table_context(request, query),
    )
