"""Flow-run input routes (send, read, list, acknowledge, delete) and resuming a paused run.

``POST /flow_runs/{id}/resume`` checks the input against the JSON schema the pause stored before
anything changes: a bad input is a 422 naming the field, and the run stays paused.
"""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Path, Response, status

from tideflow.schemas import FlowRun
from tideflow.schemas.run_inputs import (
    INPUT_KEY_PATTERN,
    FlowRunInput,
    FlowRunInputCreate,
    FlowRunInputFilter,
    ResumeFlowRun,
)
from tideflow.schemas.states import utcnow
from tideflow.server.api.deps import DB
from tideflow.server.api.validation import InvalidInput, check_storable
from tideflow.server.orchestration.run_input import run_input_errors
from tideflow.server.storage import Conflict, NotFound
from tideflow.server.storage import flow_run_inputs as storage

__all__ = ["router"]

router = APIRouter(prefix="/flow_runs", tags=["flow run inputs"])

Key = Path(pattern=INPUT_KEY_PATTERN)


@router.post(
    "/{run_id}/input",
    status_code=status.HTTP_201_CREATED,
    responses={409: {"description": "The run has an input with this key already."}},
)
async def create_flow_run_input(run_id: UUID, body: FlowRunInputCreate, db: DB) -> FlowRunInput:
    """Send an input to a run (409 when the run has that key already)."""
    check_storable(body.value, ("body", "value"))
    async with db.write() as session:
        return await storage.create_input(session, run_id, body)


@router.post("/{run_id}/input/filter")
async def filter_flow_run_inputs(
    run_id: UUID, db: DB, body: FlowRunInputFilter | None = None
) -> list[FlowRunInput]:
    async with db.read() as session:
        return await storage.filter_inputs(session, run_id, body or FlowRunInputFilter())


@router.get("/{run_id}/input/{key}")
async def read_flow_run_input(run_id: UUID, db: DB, key: str = Key) -> FlowRunInput:
    async with db.read() as session:
        found = await storage.read_input(session, run_id, key)
    if found is None:
        raise NotFound(f"flow run {run_id} has no input with key {key!r}")
    return found


@router.post("/{run_id}/input/{key}/ack")
async def ack_flow_run_input(run_id: UUID, db: DB, key: str = Key) -> FlowRunInput:
    """Mark an input received: ``receive_input(with_ack=True)`` does not deliver it again."""
    async with db.write() as session:
        return await storage.ack_input(session, run_id, key)


@router.delete("/{run_id}/input/{key}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_flow_run_input(run_id: UUID, db: DB, key: str = Key) -> Response:
    async with db.write() as session:
        await storage.delete_input(session, run_id, key)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{run_id}/resume",
    responses={409: {"description": "The run is not paused or suspended, or its pause expired."}},
)
async def resume_flow_run(run_id: UUID, db: DB, body: ResumeFlowRun | None = None) -> FlowRun:
    """Resume a paused or suspended run with the input it waits for (422 naming the field when
    the input does not fit; 409 when the run is not paused, or its pause expired: then it fails)."""
    run_input = body.run_input if body is not None else None
    if run_input is not None:
        check_storable(run_input, ("body", "run_input"))
    async with db.write() as session:
        pause = await storage.read_pause(session, run_id, utcnow())
        if not pause.expired:
            if pause.schema is not None:
                if run_input is None:
                    raise InvalidInput(
                        [(("body", "run_input"), "this run waits for input: send run_input")]
                    )
                errors = run_input_errors(pause.schema, run_input)
                if errors:
                    raise InvalidInput([(("body", *loc), msg) for loc, msg in errors])
            elif run_input is not None:
                raise InvalidInput([(("body", "run_input"), "this run does not wait for input")])
        _, run = await storage.resume_flow_run(session, pause, run_input)
    if pause.expired:  # the Failed state is committed above; the resume itself is refused
        raise Conflict(f"{storage.expired_message(pause.state)}; it is now Failed")
    return run
