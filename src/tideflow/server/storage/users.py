"""UI user queries: create (given the argon2 hash of the password, computed by the caller off the
event loop), list, look up by name or id, change the password and delete. Changing the password or
deleting the user deletes its browser sessions in the same transaction."""

from __future__ import annotations

import uuid
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from tideflow.schemas.api_keys import Scope
from tideflow.schemas.states import utcnow
from tideflow.schemas.users import User
from tideflow.server.storage.errors import Conflict, is_unique_violation
from tideflow.server.storage.sessions import USER, delete_principal_sessions
from tideflow.server.storage.tables import users

__all__ = [
    "create_user",
    "delete_user",
    "read_user",
    "read_user_by_name",
    "read_users",
    "set_password_hash",
]


def _user(row: Any) -> User:
    m = row._mapping
    return User(
        id=m["id"],
        name=m["name"],
        scopes=list(m["scopes"]),
        created=m["created"],
        password_changed=m["password_changed"],
    )


async def create_user(
    session: AsyncSession, *, name: str, password_hash: str, scopes: list[Scope]
) -> User:
    """Store a new user; Conflict when the name is taken."""
    now = utcnow()
    values = {
        "id": uuid.uuid4(),
        "name": name,
        "password_hash": password_hash,
        "scopes": list(dict.fromkeys(scopes)),
        "created": now,
        "password_changed": now,
    }
    try:
        async with session.begin_nested():
            await session.execute(sa.insert(users).values(**values))
    except IntegrityError as exc:
        if is_unique_violation(exc):
            raise Conflict(f"a user named {name!r} exists already") from None
        raise
    return User(**{k: v for k, v in values.items() if k != "password_hash"})


async def read_users(
    session: AsyncSession, *, limit: int | None = None, offset: int = 0
) -> list[User]:
    """Users by name, one page at a time."""
    stmt = sa.select(users).order_by(users.c.name).limit(limit).offset(offset)
    return [_user(row) for row in (await session.execute(stmt)).all()]


async def read_user(session: AsyncSession, user_id: UUID) -> User | None:
    row = (await session.execute(sa.select(users).where(users.c.id == user_id))).first()
    return _user(row) if row is not None else None


async def read_user_by_name(session: AsyncSession, name: str) -> tuple[User, str] | None:
    """The user with this name and its stored password hash."""
    row = (await session.execute(sa.select(users).where(users.c.name == name))).first()
    return (_user(row), row._mapping["password_hash"]) if row is not None else None


async def set_password_hash(
    session: AsyncSession, user_id: UUID, password_hash: str
) -> User | None:
    """Replace the user's password (its hash) and end its browser sessions; None: no such user."""
    result = await session.execute(
        sa.update(users)
        .where(users.c.id == user_id)
        .values(password_hash=password_hash, password_changed=utcnow())
    )
    if not getattr(result, "rowcount", 0):
        return None
    await delete_principal_sessions(session, USER, str(user_id))
    return await read_user(session, user_id)


async def delete_user(session: AsyncSession, user_id: UUID) -> User | None:
    """Delete the user and its browser sessions; the user as it was, or None: no such user."""
    found = await read_user(session, user_id)
    if found is None:
        return None
    await session.execute(sa.delete(users).where(users.c.id == user_id))
    await delete_principal_sessions(session, USER, str(user_id))
    return found
