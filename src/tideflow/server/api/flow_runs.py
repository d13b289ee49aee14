"""Flow-run routes: create, read, filter, count, rename, state history, set_state, delete."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Query, Request, Response, status

from tideflow.schemas import (
    FlowRun,
    FlowRunCreate,
    FlowRunFilter,
    FlowRunUpdate,
    OrchestrationResult,
    SetStateStatus,
    State,
    StateProposal,
)
from tideflow.schemas.limits import MAX_OFFSET
from tideflow.server.api.deps import DB
from tideflow.server.api.secrets import redactor
from tideflow.server.api.validation import (
    check_flow_run_create,
    check_flow_run_update,
    check_state_proposal,
)
from tideflow.server.storage import Conflict, NotFound
from tideflow.server.storage import flow_runs as storage

__all__ = ["router"]

router = APIRouter(prefix="/flow_runs", tags=["flow runs"])


@router.post("/", status_code=status.HTTP_201_CREATED)
async def create_flow_run(
    body: FlowRunCreate, db: DB, response: Response, request: Request
) -> FlowRun:
    """Create a run (201); a repeated ``(flow, idempotency_key)`` returns the existing run (200).
    Stored secret values in its parameters are masked."""
    check_flow_run_create(body)
    if body.parameters:
        masked = await redactor(request).value(body.parameters)
        if masked != body.parameters:
            body = body.model_copy(update={"parameters": masked})
    async with db.write() as session:
        run, created = await storage.create_flow_run(session, body)
    if not created:
        response.status_code = status.HTTP_200_OK
    return run


@router.post("/filter")
async def read_flow_runs(db: DB, body: FlowRunFilter | None = None) -> list[FlowRun]:
    async with db.read() as session:
        return await storage.read_flow_runs(session, body or FlowRunFilter())


@router.post("/count")
async def count_flow_runs(db: DB, body: FlowRunFilter | None = None) -> int:
    async with db.read() as session:
        return await storage.count_flow_runs(session, body or FlowRunFilter())


@router.get("/{run_id}")
async def read_flow_run(run_id: UUID, db: DB) -> FlowRun:
    async with db.read() as session:
        run = await storage.read_flow_run(session, run_id)
    if run is None:
        raise NotFound(f"flow run {run_id} not found")
    return run


@router.patch("/{run_id}")
async def update_flow_run(run_id: UUID, body: FlowRunUpdate, db: DB) -> FlowRun:
    """Rename a run (the engine applies a flow's ``flow_run_name`` to a deployment's run)."""
    check_flow_run_update(body)
    async with db.write() as session:
        return await storage.rename_flow_run(session, run_id, body.name)


@router.get("/{run_id}/states")
async def read_flow_run_states(
    run_id: UUID,
    db: DB,
    limit: int = Query(1000, ge=1, le=10_000, description="Page size."),
    offset: int = Query(0, ge=0, le=MAX_OFFSET, description="States to skip, oldest first."),
) -> list[State]:
    """The run's state history, oldest first, one page at a time."""
    async with db.read() as session:
        return await storage.read_flow_run_states(session, run_id, limit=limit, offset=offset)


@router.post("/{run_id}/set_state")
async def set_flow_run_state(run_id: UUID, body: StateProposal, db: DB) -> OrchestrationResult:
    """Propose a state: 200 with the result when accepted, 409 with the reason when refused."""
    check_state_proposal(body)
    async with db.write() as session:
        decision, run = await storage.set_flow_run_state(session, run_id, body)
    if decision.status is SetStateStatus.REJECT:
        raise Conflict(decision.reason or "the proposed state was refused")
    return OrchestrationResult(
        status=decision.status, state=decision.state, reason=decision.reason, run=run
    )


@router.delete("/{run_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_flow_run(run_id: UUID, db: DB) -> Response:
    """Delete a run with its state history and logs."""
    async with db.write() as session:
        await storage.delete_flow_run(session, run_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
