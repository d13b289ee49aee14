"""API key routes (scope ``admin``): create (the answer is the only time the key is shown), list,
revoke. Each change is recorded as a ``tideflow.api-key.created|revoked`` event in the same
transaction."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Query, Request, status

from tideflow.schemas.api_keys import ApiKey, ApiKeyCreate, ApiKeyCreated
from tideflow.schemas.limits import MAX_OFFSET
from tideflow.server.api.deps import DB
from tideflow.server.storage import NotFound
from tideflow.server.storage import api_keys as storage
from tideflow.server.storage.auth_events import emit_api_key_event
from tideflow.server.storage.sessions import API_KEY, delete_principal_sessions

__all__ = ["router"]

router = APIRouter(prefix="/api-keys", tags=["api keys"])


@router.post("/", status_code=status.HTTP_201_CREATED)
async def create_api_key(body: ApiKeyCreate, db: DB) -> ApiKeyCreated:
    """Create a key; its secret is in this answer only (only its argon2 hash is stored)."""
    async with db.write() as session:
        created = await storage.create_api_key(session, body)
        await emit_api_key_event(session, created, "created")
    return created


@router.get("/")
async def read_api_keys(
    db: DB,
    include_revoked: bool = False,
    limit: int = Query(200, ge=1, le=1000, description="Page size."),
    offset: int = Query(0, ge=0, le=MAX_OFFSET, description="Keys to skip, oldest first."),
) -> list[ApiKey]:
    async with db.read() as session:
        return await storage.read_api_keys(
            session, include_revoked=include_revoked, limit=limit, offset=offset
        )


@router.post("/{key_uuid}/revoke")
async def revoke_api_key(key_uuid: UUID, db: DB, request: Request) -> ApiKey:
    """Revoke a key: refused from now on (within a second on other replicas of the server)."""
    async with db.write() as session:
        found = await storage.revoke_api_key(session, key_uuid)
        if found is None:
            raise NotFound(f"no API key {key_uuid}")
        key, revoked_now = found
        if revoked_now:  # revoking again changes nothing, so records nothing
            await emit_api_key_event(session, key, "revoked")
        await delete_principal_sessions(session, API_KEY, key.key_id)  # its UI logins end
    verifier = getattr(request.app.state, "key_verifier", None)
    if verifier is not None:
        verifier.forget(key.key_id)
    sessions = getattr(request.app.state, "browser_sessions", None)
    if sessions is not None:
        sessions.forget()
    return key
