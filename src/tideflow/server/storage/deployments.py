"""Deployment queries: upsert by (flow, name), read by id or name, filter, update, pause/resume,
delete, and readiness (``mark_deployments_polled``).

Every change writes its ``tideflow.deployment.*`` event in the same transaction
(``storage.deployment_events``). A deployment's schedules live in ``deployment_schedules`` (see ``storage.deployment_schedules``); a
change to them, or pausing the deployment, removes its future auto-scheduled runs in the same
transaction and wakes the scheduler through the broker topic ``SCHEDULES_TOPIC`` after commit.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from tideflow.schemas.deployments import (
    Deployment,
    DeploymentCreate,
    DeploymentFilter,
    DeploymentStatus,
    DeploymentUpdate,
)
from tideflow.schemas.parameters import validate_parameters
from tideflow.schemas.states import StateType, utcnow
from tideflow.schemas.work_pools import validate_job_variables
from tideflow.server.storage.deployment_events import (
    emit_deployment_event,
    emit_deployment_events_for,
)
from tideflow.server.storage.deployment_schedules import (
    SCHEDULES_TOPIC,
    delete_future_scheduled_runs,
    read_schedules,
    replace_schedules,
    schedules_differ,
)
from tideflow.server.storage.dialect import (
    dialect_name,
    insert_ignoring_conflict,
    json_array_contains_all,
)
from tideflow.server.storage.errors import NotFound, StorageError
from tideflow.server.storage.flows import create_or_get_flow
from tideflow.server.storage.outbox import publish_after_commit
from tideflow.server.storage.tables import deployments, flow_runs, flows, work_pools, work_queues
from tideflow.server.storage.work_pools import read_work_pool, resolve_work_queue

__all__ = [
    "SCHEDULES_TOPIC",
    "InvalidDeploymentField",
    "InvalidParameters",
    "delete_deployment",
    "delete_future_scheduled_runs",
    "lock_deployment",
    "mark_deployments_not_ready",
    "mark_deployments_polled",
    "read_deployment",
    "read_deployment_by_name",
    "read_deployments",
    "require_deployment",
    "set_deployment_paused",
    "update_deployment",
    "upsert_deployment",
]

_SELECT = sa.select(
    deployments,
    flows.c.name.label("flow_name"),
    work_pools.c.name.label("work_pool_name"),
    work_queues.c.name.label("work_queue_name"),
).select_from(
    deployments.join(flows, flows.c.id == deployments.c.flow_id)
    .outerjoin(work_queues, work_queues.c.id == deployments.c.work_queue_id)
    .outerjoin(work_pools, work_pools.c.id == work_queues.c.work_pool_id)
)

# Columns a client sets (DeploymentCreate/DeploymentUpdate fields stored as they are).
_PLAIN = (
    "description",
    "version",
    "tags",
    "parameters",
    "parameter_openapi_schema",
    "enforce_parameter_schema",
    "paused",
    "concurrency_limit",
    "concurrency_options",
    "triggers",
    "job_variables",
    "entrypoint",
    "pull_steps",
)


class InvalidParameters(StorageError):
    """Parameters that do not fit the deployment's schema; ``problems`` each name a parameter (422)."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


class InvalidDeploymentField(InvalidParameters):
    """A problem with another field than ``parameters`` (``field``), e.g. job variables (422)."""

    def __init__(self, field: str, problems: list[str]) -> None:
        self.field = field
        super().__init__(problems)


async def _work_queue_id(
    session: AsyncSession,
    pool_name: str | None,
    queue_name: str | None,
    job_variables: dict[str, Any],
) -> UUID | None:
    """The work queue a deployment's runs go to (None: no pool); its job variables are checked
    against the pool's template. A deployment without a pool takes no job variables: nothing
    would use them, and an option must never be silently ignored."""
    if pool_name is None:
        if queue_name is not None:
            raise InvalidDeploymentField(
                "work_queue_name", ["a work queue needs a work pool (work_pool_name)"]
            )
        if job_variables:
            raise InvalidDeploymentField(
                "job_variables",
                [
                    "job variables need a work pool (work_pool_name): a deployment served by "
                    "serve() runs in the serving process's environment"
                ],
            )
        return None
    pool = await read_work_pool(session, pool_name)
    if pool is None:
        raise InvalidDeploymentField(
            "work_pool_name",
            [
                f"work pool {pool_name!r} not found; create it with: tideflow work-pool create "
                f"{pool_name} --type process"
            ],
        )
    problems = validate_job_variables(pool.base_job_template, job_variables, partial=True)
    if problems:
        raise InvalidDeploymentField("job_variables", problems)
    _, queue = await resolve_work_queue(session, pool_name, queue_name)
    return queue.id


async def _deployment(session: AsyncSession, row: Any, *, schedules: bool = True) -> Deployment:
    values = dict(row._mapping)
    values["schedules"] = await read_schedules(session, values["id"]) if schedules else []
    return Deployment.model_validate(values)


async def read_deployment(session: AsyncSession, deployment_id: UUID) -> Deployment | None:
    row = (await session.execute(_SELECT.where(deployments.c.id == deployment_id))).first()
    return await _deployment(session, row) if row is not None else None


async def require_deployment(
    session: AsyncSession, deployment_id: UUID, *, schedules: bool = True
) -> Deployment:
    """The deployment, or NotFound naming it. ``schedules=False`` leaves its ``schedules`` empty
    (one query fewer, for callers such as run creation that never look at them)."""
    row = (await session.execute(_SELECT.where(deployments.c.id == deployment_id))).first()
    if row is None:
        raise NotFound(f"deployment {deployment_id} not found")
    return await _deployment(session, row, schedules=schedules)


async def read_deployment_by_name(
    session: AsyncSession, flow_name: str, name: str
) -> Deployment | None:
    stmt = _SELECT.where(flows.c.name == flow_name, deployments.c.name == name)
    row = (await session.execute(stmt)).first()
    return await _deployment(session, row) if row is not None else None


async def read_deployments(session: AsyncSession, flt: DeploymentFilter) -> list[Deployment]:
    """Deployments matching ``flt``, sorted by flow name then name."""
    c = deployments.c
    stmt = _SELECT
    if flt.id is not None:
        stmt = stmt.where(c.id.in_(flt.id))
    if flt.flow_id is not None:
        stmt = stmt.where(c.flow_id.in_(flt.flow_id))
    if flt.flow_name is not None:
        stmt = stmt.where(flows.c.name.in_(flt.flow_name))
    if flt.name is not None:
        stmt = stmt.where(c.name.in_(flt.name))
    if flt.name_like is not None:
        stmt = stmt.where(c.name.icontains(flt.name_like, autoescape=True))
    if flt.tags_all:
        stmt = stmt.where(json_array_contains_all(c.tags, flt.tags_all, dialect_name(session)))
    if flt.paused is not None:
        stmt = stmt.where(c.paused == flt.paused)
    if flt.status is not None:
        stmt = stmt.where(c.status == flt.status.value)
    stmt = stmt.order_by(flows.c.name, c.name, c.id).limit(flt.limit).offset(flt.offset)
    return [await _deployment(session, row) for row in await session.execute(stmt)]


def _check_defaults(values: dict[str, Any]) -> None:
    schema, defaults = values["parameter_openapi_schema"], values["parameters"]
    if schema and defaults and values["enforce_parameter_schema"]:
        problems = validate_parameters(schema, defaults, partial=True)
        if problems:
            raise InvalidParameters([f"invalid default parameters: {p}" for p in problems])


async def lock_deployment(session: AsyncSession, deployment_id: UUID) -> Any:
    """The deployment's row, locked for this transaction on PostgreSQL; None when it is gone.

    Pausing, changing schedules and the scheduler's step take this lock, so they never interleave.
    """
    stmt = sa.select(deployments).where(deployments.c.id == deployment_id)
    if dialect_name(session) == "postgresql":
        # FOR NO KEY UPDATE: exclusive among lockers, but it lets foreign-key checks (runs and
        # firings referencing the row take FOR KEY SHARE) through, so an action creating a run of
        # this deployment cannot deadlock against an API call that holds this lock.
        stmt = stmt.with_for_update(key_share=True)
    return (await session.execute(stmt)).first()


async def _lock(session: AsyncSession, deployment_id: UUID) -> Any:
    row = await lock_deployment(session, deployment_id)
    if row is None:
        raise NotFound(f"deployment {deployment_id} not found")
    return row


async def upsert_deployment(
    session: AsyncSession, body: DeploymentCreate
) -> tuple[Deployment, list[str], bool]:
    """Create the deployment, or update the one with the same (flow, name) keeping its id.

    Returns the deployment, the names of the fields that changed and whether it was created.
    """
    flow, _ = await create_or_get_flow(session, body.flow_name)
    now = utcnow()
    values = body.model_dump(mode="json", include=set(_PLAIN))
    _check_defaults(values)
    values["work_queue_id"] = await _work_queue_id(
        session, body.work_pool_name, body.work_queue_name, values["job_variables"]
    )
    stmt = sa.select(deployments.c.id).where(
        deployments.c.flow_id == flow.id, deployments.c.name == body.name
    )
    existing = (await session.execute(stmt)).scalar_one_or_none()
    if existing is None:
        deployment_id = uuid.uuid4()
        inserted = await _insert(session, deployment_id, flow.id, body.name, values, now)
        if inserted:
            await replace_schedules(session, deployment_id, body.schedules, now)
            _wake_scheduler(session, deployment_id)
            deployment = await require_deployment(session, deployment_id)
            await emit_deployment_event(session, deployment, "created")
            return deployment, [], True
        existing = (await session.execute(stmt)).scalar_one()
    changed = await _apply(session, existing, values, body.schedules, now)
    return await require_deployment(session, existing), changed, False


async def _insert(
    session: AsyncSession,
    deployment_id: UUID,
    flow_id: UUID,
    name: str,
    values: dict[str, Any],
    now: dt.datetime,
) -> bool:
    row = {
        "id": deployment_id,
        "flow_id": flow_id,
        "name": name,
        **values,
        "status": DeploymentStatus.NOT_READY.value,
        "last_polled": None,
        "created": now,
        "updated": now,
    }
    # A concurrent registration of the same (flow, name) may win: then this one updates it.
    return await insert_ignoring_conflict(session, deployments, row, ["flow_id", "name"])


async def _apply(
    session: AsyncSession,
    deployment_id: UUID,
    values: dict[str, Any],
    schedules: Sequence[Any] | None,
    now: dt.datetime,
) -> list[str]:
    """Write the fields of ``values`` that differ (and the schedules when given and different)."""
    row = (await _lock(session, deployment_id))._mapping
    changes = {k: v for k, v in values.items() if row[k] != v}
    changed = sorted(changes)
    if schedules is not None and schedules_differ(
        await read_schedules(session, deployment_id), schedules
    ):
        await replace_schedules(session, deployment_id, schedules, now)
        changed = sorted([*changed, "schedules"])
    if not changed:
        return []
    await session.execute(
        sa.update(deployments)
        .where(deployments.c.id == deployment_id)
        .values(**changes, updated=now)
    )
    if "work_queue_id" in changes:
        # Its waiting runs follow it to the new queue (or out of any pool), so they run there.
        await session.execute(
            sa.update(flow_runs)
            .where(
                flow_runs.c.deployment_id == deployment_id,
                flow_runs.c.state_type == StateType.SCHEDULED.value,
            )
            .values(work_queue_id=changes["work_queue_id"])
        )
    if "schedules" in changed or changes.get("paused") is True:
        await delete_future_scheduled_runs(session, deployment_id, now)
    if {"schedules", "paused"} & set(changed):
        _wake_scheduler(session, deployment_id)
    await emit_deployment_events_for(session, [deployment_id], "updated", {"changed": changed}, now)
    if "paused" in changes:
        # a microsecond later, so feeds order it after the "updated" event
        after = now + dt.timedelta(microseconds=1)
        verb = "paused" if changes["paused"] else "resumed"
        await emit_deployment_events_for(session, [deployment_id], verb, None, after)
    return changed


async def update_deployment(
    session: AsyncSession, deployment_id: UUID, body: DeploymentUpdate
) -> tuple[Deployment, list[str]]:
    """Change the fields sent in ``body``; the deployment and the names of the fields that changed."""
    current = await require_deployment(session, deployment_id)
    sent = body.model_dump(mode="json", exclude_unset=True)
    schedules = body.schedules if "schedules" in sent else None
    sent.pop("schedules", None)
    for key in ("tags", "parameters", "parameter_openapi_schema", "triggers", "job_variables"):
        if key in sent and sent[key] is None:
            raise InvalidParameters([f"{key} must not be null"])
    for key in ("enforce_parameter_schema", "paused"):
        if key in sent and sent[key] is None:
            raise InvalidParameters([f"{key} must not be null"])
    merged = {**current.model_dump(mode="json", include=set(_PLAIN)), **sent}
    _check_defaults(merged)
    placement = {"work_pool_name", "work_queue_name", "job_variables"}
    if placement & set(sent):
        pool_name = sent.pop("work_pool_name", current.work_pool_name)
        same_pool = pool_name == current.work_pool_name
        queue_name = sent.pop("work_queue_name", current.work_queue_name if same_pool else None)
        sent["work_queue_id"] = await _work_queue_id(
            session, pool_name, queue_name, merged["job_variables"]
        )
    changed = await _apply(session, deployment_id, sent, schedules, utcnow())
    return await require_deployment(session, deployment_id), changed


async def set_deployment_paused(
    session: AsyncSession, deployment_id: UUID, paused: bool
) -> tuple[Deployment, bool]:
    """Pause or resume; the flag says whether it changed. Schedules are kept either way."""
    changed = await _apply(session, deployment_id, {"paused": paused}, None, utcnow())
    return await require_deployment(session, deployment_id), bool(changed)


async def delete_deployment(session: AsyncSession, deployment_id: UUID) -> Deployment:
    """Delete it with its schedules and future auto-scheduled runs; other runs keep existing."""
    found = await require_deployment(session, deployment_id)
    await delete_future_scheduled_runs(session, deployment_id, utcnow())
    await session.execute(sa.delete(deployments).where(deployments.c.id == deployment_id))
    await emit_deployment_event(session, found, "deleted")
    return found


def _wake_scheduler(session: AsyncSession, deployment_id: UUID) -> None:
    publish_after_commit(session, SCHEDULES_TOPIC, deployment_id)


async def mark_deployments_polled(
    session: AsyncSession, deployment_ids: Sequence[UUID], now: dt.datetime
) -> list[UUID]:
    """Record that a runner served these deployments at ``now``; the ids that became READY."""
    if not deployment_ids:
        return []
    c = deployments.c
    became = await session.execute(
        sa.select(c.id).where(c.id.in_(deployment_ids), c.status != DeploymentStatus.READY.value)
    )
    ready = [row.id for row in became]
    await session.execute(
        sa.update(deployments)
        .where(c.id.in_(deployment_ids))
        .values(status=DeploymentStatus.READY.value, last_polled=now)
    )
    await emit_deployment_events_for(session, ready, "ready")
    return ready


async def mark_deployments_not_ready(
    session: AsyncSession, silent_since: dt.datetime
) -> list[UUID]:
    """READY deployments not polled since ``silent_since`` become NOT_READY; their ids."""
    c = deployments.c
    stmt = (
        sa.update(deployments)
        .where(
            c.status == DeploymentStatus.READY.value,
            sa.or_(c.last_polled.is_(None), c.last_polled < silent_since),
        )
        .values(status=DeploymentStatus.NOT_READY.value)
        .returning(c.id)
    )
    ids = [row.id for row in await session.execute(stmt)]
    await emit_deployment_events_for(session, ids, "not-ready")
    return ids
