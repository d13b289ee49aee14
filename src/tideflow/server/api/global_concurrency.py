"""Global concurrency and rate limit routes: limits by name (create, list, read, change, delete,
reset) and the leases that ``concurrency()`` takes, renews and releases (``rate_limit()`` takes
slots that drain)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Path, status

from tideflow.schemas.global_concurrency import (
    GCL_NAME_PATTERN,
    GlobalConcurrencyLimit,
    GlobalConcurrencyLimitCreate,
    GlobalConcurrencyLimitFilter,
    GlobalConcurrencyLimitUpdate,
    LeaseAnswer,
    LeaseRelease,
    LeaseRenew,
    SlotRequest,
)
from tideflow.server.api.deps import DB
from tideflow.server.storage import NotFound
from tideflow.server.storage import global_concurrency as storage

__all__ = ["router"]

router = APIRouter(prefix="/global_concurrency_limits", tags=["global concurrency limits"])

Name = Path(pattern=GCL_NAME_PATTERN, description="The limit's name.")
_CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"description": "The request can never be granted by this limit."}
}


def _missing(name: str) -> NotFound:
    return NotFound(f"no global concurrency limit named {name!r}")


@router.post(
    "/",
    status_code=status.HTTP_201_CREATED,
    responses={409: {"description": "A limit of that name exists."}},
)
async def create_limit(body: GlobalConcurrencyLimitCreate, db: DB) -> GlobalConcurrencyLimit:
    async with db.write() as session:
        return await storage.create_limit(session, body)


@router.post("/filter")
async def read_limits(
    db: DB, body: GlobalConcurrencyLimitFilter | None = None
) -> list[GlobalConcurrencyLimit]:
    """Limits sorted by name, with the slots occupied now."""
    async with db.read() as session:
        return await storage.read_limits(session, body or GlobalConcurrencyLimitFilter())


@router.get("/name/{name}")
async def read_limit(db: DB, name: str = Name) -> GlobalConcurrencyLimit:
    async with db.read() as session:
        found = await storage.read_limit(session, name)
    if found is None:
        raise _missing(name)
    return found


@router.patch("/name/{name}")
async def update_limit(
    body: GlobalConcurrencyLimitUpdate, db: DB, name: str = Name
) -> GlobalConcurrencyLimit:
    async with db.write() as session:
        found = await storage.update_limit(session, name, body)
    if found is None:
        raise _missing(name)
    return found


@router.delete("/name/{name}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_limit(db: DB, name: str = Name) -> None:
    async with db.write() as session:
        if not await storage.delete_limit(session, name):
            raise _missing(name)


@router.post("/name/{name}/reset")
async def reset_limit(db: DB, name: str = Name) -> GlobalConcurrencyLimit:
    """Free every slot of the limit (leases and rate slots)."""
    async with db.write() as session:
        found = await storage.reset_limit(session, name)
    if found is None:
        raise _missing(name)
    return found


@router.post("/acquire", responses=_CONFLICT)
async def acquire(body: SlotRequest, db: DB) -> LeaseAnswer:
    """Take the slots of every named active limit, all or none (limits that do not exist are
    named in ``missing`` and hold nothing)."""
    async with db.write() as session:
        return await storage.acquire(session, body)


@router.post("/renew", responses={404: {"description": "The lease expired or was released."}})
async def renew(body: LeaseRenew, db: DB) -> dict[str, int]:
    """Extend a lease; 404 when it expired or was released (its slots may be taken)."""
    async with db.write() as session:
        held = await storage.renew(session, body.lease_id, body.lease_seconds)
    if not held:
        raise NotFound(f"no lease {body.lease_id} (it expired or was released)")
    return {"limits": held}


@router.post("/release")
async def release(body: LeaseRelease, db: DB) -> dict[str, int]:
    async with db.write() as session:
        return {"released": await storage.release(session, body.lease_id)}
