"""``run_deployment`` / ``arun_deployment``: start a run of a deployment from Python and (by default)
wait for it to finish.

The run is created Scheduled (now, or at ``scheduled_time``) with the given parameters and job
variables over the deployment's; the server validates both and a problem raises ValueError naming
it. ``timeout`` bounds the wait in seconds: ``None`` waits until the run is final, ``0`` returns at
once; either way the run as last read is returned (check ``state``). Waiting reads the run every
``poll_interval`` seconds.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from typing import Any
from uuid import UUID

from tideflow.client import AsyncClient, SyncClient
from tideflow.exceptions import ServerError
from tideflow.schemas import FlowRun
from tideflow.schemas.deployments import DeploymentFlowRunCreate
from tideflow.settings import Settings

__all__ = ["arun_deployment", "run_deployment"]

_POLL = 0.2


def _body(
    parameters: dict[str, Any] | None,
    job_variables: dict[str, Any] | None,
    flow_run_name: str | None,
    tags: list[str] | None,
    scheduled_time: dt.datetime | None,
    idempotency_key: str | None,
) -> DeploymentFlowRunCreate:
    return DeploymentFlowRunCreate(
        parameters=dict(parameters or {}),
        job_variables=dict(job_variables or {}),
        name=flow_run_name,
        tags=list(tags or []),
        scheduled_time=scheduled_time,
        idempotency_key=idempotency_key,
    )


def _check_timeout(timeout: float | None) -> None:
    if timeout is not None and (isinstance(timeout, bool) or timeout < 0):
        raise ValueError(f"timeout must be seconds ≥ 0 or None, got {timeout!r}")


def _is_id(name: str | UUID) -> UUID | None:
    if isinstance(name, UUID):
        return name
    try:
        return UUID(name)
    except ValueError:
        return None


def _refused(exc: ServerError) -> Exception:
    return ValueError(exc.detail) if exc.status_code == 422 else exc


def run_deployment(
    name: str | UUID,
    *,
    parameters: dict[str, Any] | None = None,
    job_variables: dict[str, Any] | None = None,
    timeout: float | None = None,
    flow_run_name: str | None = None,
    tags: list[str] | None = None,
    scheduled_time: dt.datetime | None = None,
    idempotency_key: str | None = None,
    poll_interval: float = _POLL,
    settings: Settings | None = None,
) -> FlowRun:
    """Create a run of deployment ``name`` ('flow/deployment' or its id) and wait for it."""
    _check_timeout(timeout)
    body = _body(parameters, job_variables, flow_run_name, tags, scheduled_time, idempotency_key)
    with SyncClient(settings=settings) as client:
        deployment_id = _is_id(name) or client.read_deployment_by_name(str(name)).id
        try:
            run = client.create_flow_run_from_deployment(deployment_id, body)
        except ServerError as exc:
            raise _refused(exc) from None
        deadline = None if timeout is None else time.monotonic() + timeout
        while run.state is None or not run.state.is_final:
            if deadline is not None and time.monotonic() >= deadline:
                break
            time.sleep(poll_interval)
            run = client.read_flow_run(run.id)
        return run


async def arun_deployment(
    name: str | UUID,
    *,
    parameters: dict[str, Any] | None = None,
    job_variables: dict[str, Any] | None = None,
    timeout: float | None = None,
    flow_run_name: str | None = None,
    tags: list[str] | None = None,
    scheduled_time: dt.datetime | None = None,
    idempotency_key: str | None = None,
    poll_interval: float = _POLL,
    settings: Settings | None = None,
) -> FlowRun:
    """``run_deployment`` for async code."""
    _check_timeout(timeout)
    body = _body(parameters, job_variables, flow_run_name, tags, scheduled_time, idempotency_key)
    async with AsyncClient(settings=settings) as client:
        deployment_id = _is_id(name) or (await client.read_deployment_by_name(str(name))).id
        try:
            run = await client.create_flow_run_from_deployment(deployment_id, body)
        except ServerError as exc:
            raise _refused(exc) from None
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while run.state is None or not run.state.is_final:
            if deadline is not None and loop.time() >= deadline:
                break
            await asyncio.sleep(poll_interval)
            run = await client.read_flow_run(run.id)
        return run
