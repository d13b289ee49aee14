"""Helpers for the service tests: a migrated Database on a backend, deployments, claims."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from tideflow.schemas import FlowRun, StateProposal
from tideflow.schemas.deployments import Deployment, DeploymentCreate, DeploymentFlowRunCreate
from tideflow.schemas.states import Pending
from tideflow.server.orchestration import Decision
from tideflow.server.storage import Database, migrate
from tideflow.server.storage.deployment_runs import create_deployment_flow_run
from tideflow.server.storage.deployments import upsert_deployment
from tideflow.server.storage.flow_runs import set_flow_run_state


@asynccontextmanager
async def migrated(url: str) -> AsyncIterator[Database]:
    await migrate.upgrade(url)
    db = Database(url)
    try:
        yield db
    finally:
        await db.dispose()


async def make_deployment(db: Database, **fields: Any) -> Deployment:
    body = DeploymentCreate.model_validate({"flow_name": "f", "name": "d", **fields})
    async with db.write() as session:
        deployment, _, _ = await upsert_deployment(session, body)
    return deployment


async def make_run(db: Database, deployment_id: uuid.UUID, **fields: Any) -> FlowRun:
    async with db.write() as session:
        run, _ = await create_deployment_flow_run(
            session, deployment_id, DeploymentFlowRunCreate.model_validate(fields)
        )
    return run


async def claim(db: Database, run: FlowRun, runner_id: uuid.UUID) -> tuple[Decision, FlowRun]:
    assert run.state is not None
    proposal = StateProposal(
        state=Pending(runner_id=str(runner_id)), expected_state_id=run.state.id
    )
    async with db.write() as session:
        return await set_flow_run_state(session, run.id, proposal)
