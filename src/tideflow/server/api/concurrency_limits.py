"""Tag-based task concurrency routes: limits by tag (create/update, list, read, delete, reset) and
the slot leases task runs take, renew and release."""

from __future__ import annotations

from fastapi import APIRouter, Path, Response, status
from pydantic import BaseModel, ConfigDict, Field

from tideflow.schemas.concurrency import (
    TAG_PATTERN,
    ConcurrencyLimit,
    ConcurrencyLimitCreate,
    SlotAcquire,
    SlotAnswer,
    SlotRelease,
    SlotRenew,
)
from tideflow.schemas.limits import MAX_OFFSET
from tideflow.server.api.deps import DB
from tideflow.server.storage import NotFound
from tideflow.server.storage import concurrency_limits as storage

__all__ = ["router"]

router = APIRouter(prefix="/concurrency_limits", tags=["concurrency limits"])

Tag = Path(pattern=TAG_PATTERN, description="The task tag.")


@router.post("/", status_code=status.HTTP_201_CREATED)
async def upsert_limit(
    body: ConcurrencyLimitCreate, db: DB, response: Response
) -> ConcurrencyLimit:
    """Create a tag's limit (201), or change the limit the tag has (200)."""
    async with db.write() as session:
        limit, created = await storage.upsert_limit(session, body)
    if not created:
        response.status_code = status.HTTP_200_OK
    return limit


class LimitPage(BaseModel):
    """One page of the tag limits, ordered by tag."""

    model_config = ConfigDict(extra="forbid")
    limit: int = Field(200, ge=1, le=1000)
    offset: int = Field(0, ge=0, le=MAX_OFFSET)


@router.post("/filter")
async def read_limits(db: DB, body: LimitPage | None = None) -> list[ConcurrencyLimit]:
    page = body or LimitPage()
    async with db.read() as session:
        return await storage.read_limits(session, limit=page.limit, offset=page.offset)


@router.get("/tag/{tag}")
async def read_limit(db: DB, tag: str = Tag) -> ConcurrencyLimit:
    async with db.read() as session:
        limit = await storage.read_limit(session, tag)
    if limit is None:
        raise NotFound(f"no concurrency limit for tag {tag!r}")
    return limit


@router.delete("/tag/{tag}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_limit(db: DB, tag: str = Tag) -> None:
    async with db.write() as session:
        if not await storage.delete_limit(session, tag):
            raise NotFound(f"no concurrency limit for tag {tag!r}")


@router.post("/tag/{tag}/reset")
async def reset_limit(db: DB, tag: str = Tag) -> ConcurrencyLimit:
    """Free every slot of the tag's limit."""
    async with db.write() as session:
        limit = await storage.reset_limit(session, tag)
    if limit is None:
        raise NotFound(f"no concurrency limit for tag {tag!r}")
    return limit


@router.post("/acquire")
async def acquire_slots(body: SlotAcquire, db: DB) -> SlotAnswer:
    """One slot of each limited tag for the holder, all or none (tags without a limit are free)."""
    async with db.write() as session:
        return await storage.acquire_slots(session, body.tags, body.holder, body.lease_seconds)


@router.post("/renew")
async def renew_slots(body: SlotRenew, db: DB) -> dict[str, int]:
    async with db.write() as session:
        return {"slots": await storage.renew_slots(session, body.holder, body.lease_seconds)}


@router.post("/release")
async def release_slots(body: SlotRelease, db: DB) -> dict[str, int]:
    async with db.write() as session:
        return {"released": await storage.release_slots(session, body.holder)}
