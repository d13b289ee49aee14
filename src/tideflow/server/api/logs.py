"""Log routes: accept a batch from a run, filter."""

from __future__ import annotations

from fastapi import APIRouter, Request, status

from tideflow.schemas import Log, LogCreate, LogFilter
from tideflow.server.api.deps import DB
from tideflow.server.api.secrets import redactor
from tideflow.server.api.validation import scrub_logs
from tideflow.server.storage import logs as storage

__all__ = ["router"]

router = APIRouter(prefix="/logs", tags=["logs"])


@router.post("/", status_code=status.HTTP_201_CREATED)
async def create_logs(body: list[LogCreate], db: DB, request: Request) -> dict[str, int]:
    """Store a batch; records of runs that do not exist are dropped and counted (NUL -> U+FFFD);
    stored secret values in messages are masked."""
    records = scrub_logs(body)
    masker = redactor(request)
    if await masker.pattern() is not None:
        records = [r.model_copy(update={"message": await masker.text(r.message)}) for r in records]
    async with db.write() as session:
        accepted, dropped = await storage.create_logs(session, records)
    return {"accepted": accepted, "dropped": dropped}


@router.post("/filter")
async def read_logs(body: LogFilter, db: DB) -> list[Log]:
    async with db.read() as session:
        return await storage.read_logs(session, body)
