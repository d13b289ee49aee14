"""Deployment routes: upsert, read by id or name, filter, update, delete, pause/resume, create a run,
the runners' fallback poll, and the deployment's schedules."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Response, status
from pydantic import BaseModel, ConfigDict, Field

from tideflow.schemas import FlowRun
from tideflow.schemas.deployments import (
    Deployment,
    DeploymentCreate,
    DeploymentFilter,
    DeploymentFlowRunCreate,
    DeploymentUpdate,
)
from tideflow.schemas.limits import MAX_OFFSET
from tideflow.schemas.schedules import (
    DeploymentSchedule,
    DeploymentScheduleCreate,
    DeploymentScheduleUpdate,
)
from tideflow.schemas.states import utcnow
from tideflow.server.api.deps import DB, get_context
from tideflow.server.api.validation import InvalidInput
from tideflow.server.context import ServerContext
from tideflow.server.services.scheduler import check_schedules
from tideflow.server.storage import NotFound
from tideflow.server.storage import deployment_runs as runs
from tideflow.server.storage import deployment_schedules as schedules
from tideflow.server.storage import deployments as storage
from tideflow.server.storage.deployments import InvalidDeploymentField, InvalidParameters
from tideflow.server.triggers.owned import delete_owned_automations, sync_owned_automations

__all__ = ["GetScheduledFlowRuns", "router"]

router = APIRouter(prefix="/deployments", tags=["deployments"])

Context = Annotated[ServerContext, Depends(get_context)]


class GetScheduledFlowRuns(BaseModel):
    """The runners' fallback poll: due runs of these deployments (marks them polled)."""

    model_config = ConfigDict(extra="forbid")

    deployment_ids: list[UUID] = Field(min_length=1)
    scheduled_before: dt.datetime | None = Field(None, description="Default: now.")
    limit: int = Field(100, ge=1, le=1000)


def _invalid(exc: InvalidParameters, loc: tuple[str, ...]) -> InvalidInput:
    if isinstance(exc, InvalidDeploymentField):  # job variables, the work pool: named as such
        loc = ("body", exc.field)
    return InvalidInput([(loc, problem) for problem in exc.problems])


async def _require_computable(
    context: ServerContext,
    schedules: Sequence[object],
    loc: tuple[str | int, ...],
    *,
    indexed: bool = True,
    what: str = "schedule",
) -> None:
    """422 naming each schedule whose run times the scheduler could not compute (off the loop)."""
    problems = await check_schedules(schedules, utcnow(), context.settings)
    if problems:
        raise InvalidInput(
            [
                ((*loc, index, "schedule") if indexed else loc, f"{what} cannot be computed: {why}")
                for index, why in problems
            ]
        )


@router.post("/", status_code=status.HTTP_201_CREATED)
async def create_deployment(
    body: DeploymentCreate, db: DB, response: Response, context: Context
) -> Deployment:
    """Create (201) or update (200) the deployment with this flow name and name; its id is kept."""
    await _require_computable(context, [s.schedule for s in body.schedules], ("body", "schedules"))
    try:
        async with db.write() as session:
            deployment, _, created = await storage.upsert_deployment(session, body)
            await sync_owned_automations(session, deployment)
    except InvalidParameters as exc:
        raise _invalid(exc, ("body", "parameters")) from None
    if not created:
        response.status_code = status.HTTP_200_OK
    return deployment


@router.post("/filter")
async def read_deployments(db: DB, body: DeploymentFilter | None = None) -> list[Deployment]:
    async with db.read() as session:
        return await storage.read_deployments(session, body or DeploymentFilter())


@router.post("/get_scheduled_flow_runs")
async def get_scheduled_flow_runs(body: GetScheduledFlowRuns, db: DB) -> list[FlowRun]:
    """Due Scheduled runs of the deployments, oldest first; the deployments count as polled."""
    now = utcnow()
    async with db.write() as session:
        await storage.mark_deployments_polled(session, body.deployment_ids, now)
        return await runs.read_due_runs(
            session, body.deployment_ids, body.scheduled_before or now, body.limit
        )


@router.get("/name/{flow_name}/{deployment_name}")
async def read_deployment_by_name(flow_name: str, deployment_name: str, db: DB) -> Deployment:
    async with db.read() as session:
        found = await storage.read_deployment_by_name(session, flow_name, deployment_name)
    if found is None:
        raise NotFound(f"deployment {flow_name}/{deployment_name} not found")
    return found


@router.get("/{deployment_id}")
async def read_deployment(deployment_id: UUID, db: DB) -> Deployment:
    async with db.read() as session:
        return await storage.require_deployment(session, deployment_id)


@router.patch("/{deployment_id}")
async def update_deployment(
    deployment_id: UUID, body: DeploymentUpdate, db: DB, context: Context
) -> Deployment:
    """Change the fields sent; ``schedules`` replaces the whole list."""
    if body.schedules is not None:
        wanted = [s.schedule for s in body.schedules]
        await _require_computable(context, wanted, ("body", "schedules"))
    try:
        async with db.write() as session:
            deployment, _ = await storage.update_deployment(session, deployment_id, body)
            await sync_owned_automations(session, deployment)
    except InvalidParameters as exc:
        raise _invalid(exc, ("body",)) from None
    return deployment


@router.delete("/{deployment_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_deployment(deployment_id: UUID, db: DB) -> Response:
    """Delete it with its schedules and future auto-scheduled runs; past runs are kept."""
    async with db.write() as session:
        await storage.delete_deployment(session, deployment_id)
        await delete_owned_automations(session, deployment_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{deployment_id}/pause")
async def pause_deployment(deployment_id: UUID, db: DB) -> Deployment:
    """Stop scheduling (future auto-scheduled runs are removed; schedules are kept)."""
    async with db.write() as session:
        deployment, _ = await storage.set_deployment_paused(session, deployment_id, True)
        await sync_owned_automations(session, deployment)
    return deployment


@router.post("/{deployment_id}/resume")
async def resume_deployment(deployment_id: UUID, db: DB) -> Deployment:
    async with db.write() as session:
        deployment, _ = await storage.set_deployment_paused(session, deployment_id, False)
        await sync_owned_automations(session, deployment)
    return deployment


@router.post("/{deployment_id}/create_flow_run", status_code=status.HTTP_201_CREATED)
async def create_flow_run(
    deployment_id: UUID, body: DeploymentFlowRunCreate, db: DB, response: Response
) -> FlowRun:
    """A run Scheduled at ``scheduled_time`` (default now): 201, or 200 for a known idempotency key.

    Parameters are merged over the deployment's defaults and validated: 422 names each bad one.
    """
    try:
        async with db.write() as session:
            run, created = await runs.create_deployment_flow_run(session, deployment_id, body)
    except InvalidParameters as exc:
        raise _invalid(exc, ("body", "parameters")) from None
    if not created:
        response.status_code = status.HTTP_200_OK
    return run


@router.get("/{deployment_id}/schedules")
async def read_schedules(
    deployment_id: UUID,
    db: DB,
    limit: int = Query(200, ge=1, le=1000, description="Page size."),
    offset: int = Query(0, ge=0, le=MAX_OFFSET, description="Schedules to skip, in order."),
) -> list[DeploymentSchedule]:
    async with db.read() as session:
        await storage.require_deployment(session, deployment_id)
        return await schedules.read_schedules(session, deployment_id, limit=limit, offset=offset)


@router.post("/{deployment_id}/schedules", status_code=status.HTTP_201_CREATED)
async def create_schedules(
    deployment_id: UUID, body: list[DeploymentScheduleCreate], db: DB, context: Context
) -> list[DeploymentSchedule]:
    """Attach schedules (a list) after the existing ones; the new ones with their ids.

    422 for a schedule whose run times cannot be computed within the scheduler's bounds.
    """
    await _require_computable(context, [s.schedule for s in body], ("body",))
    async with db.write() as session:
        return await schedules.add_schedules(session, deployment_id, body)


@router.patch("/{deployment_id}/schedules/{schedule_id}")
async def update_schedule(
    deployment_id: UUID,
    schedule_id: UUID,
    body: DeploymentScheduleUpdate,
    db: DB,
    context: Context,
) -> DeploymentSchedule:
    """Change a schedule or (de)activate it; its future auto-scheduled runs are recreated.

    422 for a schedule (sent, or stored and being activated, say after a quarantine) whose run
    times cannot be computed within the scheduler's bounds.
    """
    if body.schedule is not None:
        await _require_computable(context, [body.schedule], ("body", "schedule"), indexed=False)
    elif body.active:
        async with db.read() as session:
            stored = await schedules.read_schedule_row(session, deployment_id, schedule_id)
        if stored is not None:
            await _require_computable(
                context,
                [stored.schedule],
                ("body", "active"),
                indexed=False,
                what="the stored schedule",
            )
    async with db.write() as session:
        return await schedules.update_schedule(session, deployment_id, schedule_id, body)


@router.delete("/{deployment_id}/schedules/{schedule_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_schedule(deployment_id: UUID, schedule_id: UUID, db: DB) -> Response:
    async with db.write() as session:
        await schedules.delete_schedule(session, deployment_id, schedule_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
