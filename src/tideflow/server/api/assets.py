"""Asset routes: list with filters, read one by key (with its recent materializations), lineage
around a key, delete. Keys are URIs, so they travel as the ``key`` query parameter."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from tideflow.schemas.assets import (
    ASSET_EVENT_PREFIX,
    MAX_ASSET_KEY_LENGTH,
    MAX_LINEAGE_DEPTH,
    AssetFilter,
    AssetLineage,
    AssetRecord,
    asset_key_problem,
)
from tideflow.schemas.events import EventFilter, ReceivedEvent
from tideflow.server.api.deps import DB
from tideflow.server.api.validation import InvalidInput
from tideflow.server.storage import NotFound
from tideflow.server.storage import assets as storage
from tideflow.server.storage.events import read_events

__all__ = ["router"]

router = APIRouter(prefix="/assets", tags=["assets"])

KeyParam = Annotated[
    str, Query(max_length=MAX_ASSET_KEY_LENGTH, description="The asset key (a URI).")
]


def _checked(key: str) -> str:
    problem = asset_key_problem(key)
    if problem:
        raise InvalidInput([(("query", "key"), problem)])
    return key


@router.post("/filter")
async def read_assets(db: DB, body: AssetFilter | None = None) -> list[AssetRecord]:
    """Catalogued assets by key, narrowed by the filter."""
    async with db.read() as session:
        return await storage.read_assets(session, body or AssetFilter())


@router.get("/key")
async def read_asset(db: DB, key: KeyParam) -> AssetRecord:
    """One asset with its latest materialization, upstreams and downstreams."""
    async with db.read() as session:
        found = await storage.read_asset(session, _checked(key))
    if found is None:
        raise NotFound(f"no asset with key {key!r}")
    return found


@router.get("/key/materializations")
async def read_materializations(
    db: DB, key: KeyParam, limit: Annotated[int, Query(ge=1, le=200)] = 50
) -> list[ReceivedEvent]:
    """The newest materialization events of ``key`` (as long as events are retained)."""
    flt = EventFilter(
        resource_ids=[_checked(key)], event_prefixes=[ASSET_EVENT_PREFIX], limit=limit
    )
    async with db.read() as session:
        return (await read_events(session, flt)).events


@router.delete("/key", status_code=status.HTTP_204_NO_CONTENT)
async def delete_asset(db: DB, key: KeyParam) -> None:
    """Forget an asset and its dependency edges; its events stay. 404 when it is not catalogued."""
    async with db.write() as session:
        if not await storage.delete_asset(session, _checked(key)):
            raise NotFound(f"no asset with key {key!r}")


@router.get("/lineage")
async def read_lineage(
    db: DB,
    key: Annotated[str | None, Query(max_length=MAX_ASSET_KEY_LENGTH)] = None,
    depth: Annotated[int, Query(ge=1, le=MAX_LINEAGE_DEPTH)] = 3,
) -> AssetLineage:
    """The assets up to ``depth`` edges around ``key`` (or the whole catalogue, bounded) and the
    edges among them."""
    async with db.read() as session:
        if key is not None and await storage.read_asset(session, _checked(key)) is None:
            raise NotFound(f"no asset with key {key!r}")
        return await storage.read_lineage(session, key, depth)
