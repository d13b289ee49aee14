"""Flow routes: create-or-get, read by id or name, filter."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Response, status

from tideflow.schemas import Flow, FlowCreate, FlowFilter
from tideflow.server.api.deps import DB
from tideflow.server.api.validation import check_flow_create
from tideflow.server.storage import NotFound
from tideflow.server.storage import flows as storage

__all__ = ["router"]

router = APIRouter(prefix="/flows", tags=["flows"])


@router.post("/", status_code=status.HTTP_201_CREATED)
async def create_flow(body: FlowCreate, db: DB, response: Response) -> Flow:
    """Create a flow (201), or return the existing flow of that name (200)."""
    check_flow_create(body)
    async with db.write() as session:
        flow, created = await storage.create_or_get_flow(session, body.name, body.tags)
    if not created:
        response.status_code = status.HTTP_200_OK
    return flow


@router.post("/filter")
async def read_flows(db: DB, body: FlowFilter | None = None) -> list[Flow]:
    """Flows matching the filter, sorted by name."""
    async with db.read() as session:
        return await storage.read_flows(session, body or FlowFilter())


@router.get("/name/{name:path}")
async def read_flow_by_name(name: str, db: DB) -> Flow:
    async with db.read() as session:
        flow = await storage.read_flow_by_name(session, name)
    if flow is None:
        raise NotFound(f"flow {name!r} not found")
    return flow


@router.get("/{flow_id}")
async def read_flow(flow_id: UUID, db: DB) -> Flow:
    async with db.read() as session:
        flow = await storage.read_flow(session, flow_id)
    if flow is None:
        raise NotFound(f"flow {flow_id} not found")
    return flow
