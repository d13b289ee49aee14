"""Flow runs of deployments: creating one (API, scheduler and automations alike), and finding the
runs a runner should start (due Scheduled runs, the oldest run waiting for a concurrency slot) or a
work pool's workers should start (due runs of its unpaused queues, by queue priority).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from tideflow.schemas import FlowRun, FlowRunCreate, FlowRunFilter
from tideflow.schemas.deployments import (
    Deployment,
    DeploymentFlowRunCreate,
    deployment_run_parameters,
)
from tideflow.schemas.states import Scheduled, StateType, utcnow
from tideflow.schemas.work_pools import (
    job_variable_defaults,
    merge_job_variables,
    validate_job_variables,
)
from tideflow.server.orchestration import ACTIVE_TYPES
from tideflow.server.storage.deployments import (
    InvalidDeploymentField,
    InvalidParameters,
    require_deployment,
)
from tideflow.server.storage.errors import Conflict
from tideflow.server.storage.flow_runs import create_flow_run, read_flow_runs
from tideflow.server.storage.tables import deployments, flow_runs, work_pools, work_queues

__all__ = [
    "NOT_OFFERED",
    "WAITING",
    "create_deployment_flow_run",
    "read_due_pool_runs",
    "read_due_runs",
    "read_oldest_waiting_run",
    "read_upcoming_pool_runs",
    "read_upcoming_runs",
]

WAITING = "AwaitingConcurrencySlot"
# Scheduled-type states no runner may claim on an offer: AwaitingRetry belongs to the process that
# is retrying the run in place; waiting runs are offered one at a time as slots free.
NOT_OFFERED = (WAITING, "AwaitingRetry")


async def create_deployment_flow_run(
    session: AsyncSession,
    deployment_id: UUID,
    body: DeploymentFlowRunCreate,
    *,
    triggering_event_id: UUID | None = None,
) -> tuple[FlowRun, bool]:
    """Create a run of the deployment, Scheduled at ``body.scheduled_time`` (default now).

    Parameters are the deployment's defaults merged with ``body.parameters`` and validated against
    its schema (``InvalidParameters`` names each bad parameter). A repeated ``idempotency_key``
    returns the existing run with False. Raises NotFound for an unknown deployment.
    """
    deployment = await require_deployment(session, deployment_id, schedules=False)
    parameters, problems = deployment_run_parameters(deployment, body.parameters)
    if problems:
        raise InvalidParameters(problems)
    work_queue = await _run_job_variables(session, deployment, body.job_variables)
    create = FlowRunCreate(
        flow_id=deployment.flow_id,
        name=body.name,
        parameters=parameters,
        tags=list(dict.fromkeys([*deployment.tags, *body.tags])),
        state=Scheduled(scheduled_time=body.scheduled_time or utcnow()),
        idempotency_key=body.idempotency_key,
        created_by=body.created_by,
    )
    run, created = await create_flow_run(
        session,
        create,
        deployment_id=deployment_id,
        triggering_event_id=triggering_event_id,
        names=(deployment.flow_name, deployment.name),  # read with the deployment
        work_queue=work_queue,
    )
    if not created and run.deployment_id != deployment_id:
        raise Conflict(
            f"idempotency key {body.idempotency_key!r} already names run {run.id} of another "
            "deployment of this flow"
        )
    return run, created


async def _run_job_variables(
    session: AsyncSession, deployment: Deployment, job_variables: dict[str, Any]
) -> tuple[UUID, dict[str, Any]] | None:
    """(work queue id, the run's job variables) for a work-pool deployment's run, the variables
    (merged over the pool's defaults and the deployment's) checked against the pool's template."""
    if deployment.work_queue_id is None:
        if job_variables:
            raise InvalidDeploymentField(
                "job_variables",
                [
                    f"deployment {deployment.full_name!r} has no work pool: job variables need one "
                    "(a deployment served by serve() runs in the serving process's environment)"
                ],
            )
        return None
    stmt = (
        sa.select(work_pools.c.base_job_template)
        .join(work_queues, work_queues.c.work_pool_id == work_pools.c.id)
        .where(work_queues.c.id == deployment.work_queue_id)
    )
    template = (await session.execute(stmt)).scalar_one_or_none() or {}
    merged = merge_job_variables(
        job_variable_defaults(template), deployment.job_variables, job_variables
    )
    unknown = validate_job_variables(template, job_variables, partial=True)
    problems = unknown or validate_job_variables(template, merged, partial=False)
    if problems:
        raise InvalidDeploymentField("job_variables", problems)
    return deployment.work_queue_id, dict(job_variables)


def _scheduled(deployment_ids: Sequence[UUID]) -> list[sa.ColumnElement[bool]]:
    return [
        flow_runs.c.deployment_id.in_(deployment_ids),
        flow_runs.c.state_type == StateType.SCHEDULED.value,
    ]


async def _runs_by_id(session: AsyncSession, ids: list[UUID]) -> list[FlowRun]:
    """The runs with ``ids``, in that order (read through flow_runs' query, names joined)."""
    if not ids:
        return []
    found = await read_flow_runs(session, FlowRunFilter(id=ids, limit=len(ids)))
    order = {run_id: i for i, run_id in enumerate(ids)}
    return sorted(found, key=lambda run: order[run.id])


async def _free_slots(session: AsyncSession, deployment_ids: Sequence[UUID]) -> dict[UUID, int]:
    """Free concurrency slots of the given deployments that have a limit."""
    active = (
        sa.select(flow_runs.c.deployment_id, sa.func.count().label("n"))
        .where(
            flow_runs.c.deployment_id.in_(deployment_ids),
            flow_runs.c.state_type.in_([t.value for t in ACTIVE_TYPES]),
        )
        .group_by(flow_runs.c.deployment_id)
        .subquery()
    )
    stmt = (
        sa.select(deployments.c.id, deployments.c.concurrency_limit, active.c.n)
        .outerjoin(active, active.c.deployment_id == deployments.c.id)
        .where(deployments.c.id.in_(deployment_ids), deployments.c.concurrency_limit.is_not(None))
    )
    return {
        row.id: max(0, row.concurrency_limit - (row.n or 0)) for row in await session.execute(stmt)
    }


async def read_due_runs(
    session: AsyncSession, deployment_ids: Sequence[UUID], before: dt.datetime, limit: int = 1000
) -> list[FlowRun]:
    """Scheduled runs of these deployments due at ``before``, oldest first, for runners to claim.

    Runs waiting for a concurrency slot are included only as far as their deployment has free slots;
    runs awaiting an in-place retry never are.
    """
    if not deployment_ids:
        return []
    c = flow_runs.c
    limit = max(1, min(limit, 1000))
    stmt = (
        sa.select(c.id)
        .where(
            *_scheduled(deployment_ids),
            c.next_scheduled_start_time <= before,
            c.state_name.not_in(NOT_OFFERED),
        )
        .order_by(c.next_scheduled_start_time, c.id)
        .limit(limit)
    )
    ids = [row.id for row in await session.execute(stmt)]
    for deployment_id, free in (await _free_slots(session, deployment_ids)).items():
        if free and len(ids) < limit:
            ids += await _waiting(session, deployment_id, min(free, limit - len(ids)))
    return await _runs_by_id(session, ids)


async def _waiting(session: AsyncSession, deployment_id: UUID, count: int) -> list[UUID]:
    c = flow_runs.c
    stmt = (
        sa.select(c.id)
        .where(*_scheduled([deployment_id]), c.state_name == WAITING)
        .order_by(c.next_scheduled_start_time, c.id)
        .limit(count)
    )
    return [row.id for row in await session.execute(stmt)]


async def read_oldest_waiting_run(session: AsyncSession, deployment_id: UUID) -> FlowRun | None:
    """The run that waited longest for a slot of the deployment, if one is free now."""
    free = (await _free_slots(session, [deployment_id])).get(deployment_id, 0)
    if not free:
        return None
    runs = await _runs_by_id(session, await _waiting(session, deployment_id, 1))
    return runs[0] if runs else None


async def read_due_pool_runs(
    session: AsyncSession, pool_id: UUID, before: dt.datetime, limit: int = 1000
) -> list[tuple[FlowRun, int]]:
    """(run, its queue's priority) of due Scheduled runs in the pool's unpaused queues, highest
    priority (lowest number) then oldest first; none while the pool is paused."""
    c, q, p = flow_runs.c, work_queues.c, work_pools.c
    stmt = (
        sa.select(c.id, q.priority)
        .join(work_queues, q.id == c.work_queue_id)
        .join(work_pools, p.id == q.work_pool_id)
        .where(
            q.work_pool_id == pool_id,
            q.is_paused.is_(False),
            p.is_paused.is_(False),
            c.state_type == StateType.SCHEDULED.value,
            c.next_scheduled_start_time <= before,
            c.state_name.not_in(NOT_OFFERED),
        )
        .order_by(q.priority, c.next_scheduled_start_time, c.id)
        .limit(max(1, min(limit, 1000)))
    )
    found = [(row.id, row.priority) for row in await session.execute(stmt)]
    priority = dict(found)
    runs = await _runs_by_id(session, [run_id for run_id, _ in found])
    return [(run, priority[run.id]) for run in runs]


async def read_upcoming_pool_runs(
    session: AsyncSession, pool_id: UUID, after: dt.datetime, limit: int = 1000
) -> list[tuple[dt.datetime, UUID, UUID, UUID]]:
    """(scheduled time, run id, state id, deployment id) of the pool's Scheduled runs due later."""
    c, q = flow_runs.c, work_queues.c
    stmt = (
        sa.select(c.next_scheduled_start_time, c.id, c.state_id, c.deployment_id)
        .join(work_queues, q.id == c.work_queue_id)
        .where(
            q.work_pool_id == pool_id,
            c.state_type == StateType.SCHEDULED.value,
            c.next_scheduled_start_time > after,
            c.state_name.not_in(NOT_OFFERED),
        )
        .order_by(c.next_scheduled_start_time)
        .limit(limit)
    )
    return [(r[0], r[1], r[2], r[3]) for r in await session.execute(stmt)]


async def read_upcoming_runs(
    session: AsyncSession, deployment_ids: Sequence[UUID], after: dt.datetime, limit: int = 1000
) -> list[tuple[dt.datetime, UUID, UUID, UUID]]:
    """(scheduled time, run id, state id, deployment id) of Scheduled runs due after ``after``."""
    if not deployment_ids:
        return []
    c = flow_runs.c
    stmt = (
        sa.select(c.next_scheduled_start_time, c.id, c.state_id, c.deployment_id)
        .where(
            *_scheduled(deployment_ids),
            c.next_scheduled_start_time > after,
            c.state_name.not_in(NOT_OFFERED),
        )
        .order_by(c.next_scheduled_start_time)
        .limit(limit)
    )
    return [(r[0], r[1], r[2], r[3]) for r in await session.execute(stmt)]
