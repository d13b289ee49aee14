"""Task-run routes: record a batch of reports from a flow's process, create a background task run
(``Task.delay``, offered to task workers once committed), cancel a background run, read one, filter,
count."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Body, Request, Response, status

from tideflow.schemas.states import utcnow
from tideflow.schemas.task_runs import TaskRun, TaskRunFilter, TaskRunReport, TaskRunReportResult
from tideflow.schemas.task_workers import TaskRunCreate
from tideflow.server.api.deps import DB, get_context
from tideflow.server.storage import NotFound
from tideflow.server.storage import task_runs as storage
from tideflow.server.storage import task_workers as background

__all__ = ["router"]

router = APIRouter(prefix="/task_runs", tags=["task runs"])

MAX_REPORTS = 5000  # task runs per batch (the SDK sends at most 1,000)


@router.post("/report")
async def report_task_runs(
    db: DB, body: list[TaskRunReport] = Body(max_length=MAX_REPORTS)
) -> TaskRunReportResult:
    """Store the reported task runs and their new states (duplicates skipped, refusals named)."""
    async with db.write() as session:
        return await storage.record_task_run_reports(session, body)


@router.post(
    "/",
    status_code=status.HTTP_201_CREATED,
    responses={
        200: {
            "model": TaskRun,
            "description": "A task run with this id exists: it is returned unchanged.",
        }
    },
)
async def create_task_run(
    body: TaskRunCreate, db: DB, request: Request, response: Response
) -> TaskRun:
    """Enqueue a background task run (Scheduled); 201, or 200 with the stored run for a known id."""
    async with db.write() as session:
        run, created = await background.create_task_run(session, body, utcnow())
    if created:
        get_context(request).task_workers.offer(run)
    else:
        response.status_code = status.HTTP_200_OK
    return run


@router.post(
    "/{task_run_id}/cancel",
    responses={
        409: {
            "description": "The run is final already, or it is a task run of a flow run (cancel "
            "the flow run instead)."
        }
    },
)
async def cancel_task_run(task_run_id: UUID, db: DB, request: Request) -> TaskRun:
    """Cancel a background run: Cancelled at once when no worker holds it, else Cancelling until its
    worker stops it; 409 for a final run or a task run of a flow run."""
    async with db.write() as session:
        run, worker_id = await background.cancel_task_run(session, task_run_id, utcnow())
    if worker_id is not None:
        get_context(request).task_workers.cancel(worker_id, run.id)
    return run


@router.post("/filter")
async def read_task_runs(db: DB, body: TaskRunFilter | None = None) -> list[TaskRun]:
    async with db.read() as session:
        return await storage.read_task_runs(session, body or TaskRunFilter())


@router.post("/count")
async def count_task_runs(db: DB, body: TaskRunFilter | None = None) -> int:
    async with db.read() as session:
        return await storage.count_task_runs(session, body or TaskRunFilter())


@router.get("/{task_run_id}")
async def read_task_run(task_run_id: UUID, db: DB) -> TaskRun:
    async with db.read() as session:
        run = await storage.read_task_run(session, task_run_id)
    if run is None:
        raise NotFound(f"task run {task_run_id} not found")
    return run
