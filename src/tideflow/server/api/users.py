"""UI user routes (scope ``admin``): create, list, change a password, delete. Passwords are hashed
with argon2 off the event loop; each change is recorded as a ``tideflow.user.*`` event in the same
transaction, and changing a password or deleting a user ends its browser sessions."""

from __future__ import annotations

import asyncio
from uuid import UUID

from fastapi import APIRouter, Query, Request, Response, status

from tideflow.schemas.limits import MAX_OFFSET
from tideflow.schemas.users import User, UserCreate, UserPassword
from tideflow.server.api.deps import DB
from tideflow.server.storage import NotFound
from tideflow.server.storage import users as storage
from tideflow.server.storage.api_keys import hasher
from tideflow.server.storage.auth_events import emit_user_event

__all__ = ["router"]

router = APIRouter(prefix="/users", tags=["users"])


async def _hash(request: Request, password: str) -> str:
    verifier = getattr(request.app.state, "key_verifier", None)
    if verifier is not None:  # auth on: shares the bound on concurrent argon2 work
        password_hash: str = await verifier.hash(password)
        return password_hash
    return await asyncio.to_thread(hasher.hash, password)


def _sessions_changed(request: Request) -> None:
    sessions = getattr(request.app.state, "browser_sessions", None)
    if sessions is not None:
        sessions.forget()


@router.post(
    "/",
    status_code=status.HTTP_201_CREATED,
    responses={409: {"description": "A user of that name exists already."}},
)
async def create_user(body: UserCreate, db: DB, request: Request) -> User:
    """Create a user who logs in to the UI with this name and password (409: the name is taken)."""
    password_hash = await _hash(request, body.password)
    async with db.write() as session:
        user = await storage.create_user(
            session, name=body.name, password_hash=password_hash, scopes=body.scopes
        )
        await emit_user_event(session, user, "created")
    return user


@router.get("/")
async def read_users(
    db: DB,
    limit: int = Query(200, ge=1, le=1000, description="Page size."),
    offset: int = Query(0, ge=0, le=MAX_OFFSET, description="Users to skip, by name."),
) -> list[User]:
    async with db.read() as session:
        return await storage.read_users(session, limit=limit, offset=offset)


@router.post("/{user_id}/password")
async def set_password(user_id: UUID, body: UserPassword, db: DB, request: Request) -> User:
    """Replace the user's password; its browser sessions end."""
    password_hash = await _hash(request, body.password)
    async with db.write() as session:
        user = await storage.set_password_hash(session, user_id, password_hash)
        if user is None:
            raise NotFound(f"no user {user_id}")
        await emit_user_event(session, user, "password-changed")
    _sessions_changed(request)
    return user


@router.delete("/{user_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_user(user_id: UUID, db: DB, request: Request) -> Response:
    """Delete the user; its browser sessions end."""
    async with db.write() as session:
        user = await storage.delete_user(session, user_id)
        if user is None:
            raise NotFound(f"no user {user_id}")
        await emit_user_event(session, user, "deleted")
    _sessions_changed(request)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
