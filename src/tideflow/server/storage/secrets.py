"""Secrets: store (create, or replace with overwrite), list and read without the value, read the
stored token, delete. Only encrypted tokens reach this module (see server/secret_box.py)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from tideflow.schemas.secrets import SecretFilter, SecretInfo
from tideflow.server.storage.errors import Conflict, is_unique_violation
from tideflow.server.storage.tables import secrets

__all__ = ["delete_secret", "read_secret", "read_secret_token", "read_secrets", "set_secret"]

_S = secrets.c
_INFO = (_S.id, _S.name, _S.created, _S.updated)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _info(row: Any) -> SecretInfo:
    return SecretInfo(id=row.id, name=row.name, created=row.created, updated=row.updated)


async def set_secret(
    session: AsyncSession, name: str, token: str, *, overwrite: bool
) -> tuple[SecretInfo, bool]:
    """Store ``token`` under ``name``; ``(secret, created)``. Conflict when it exists and not
    ``overwrite``."""
    now = _now()
    if overwrite:
        result = await session.execute(
            sa.update(secrets).where(_S.name == name).values(token=token, updated=now)
        )
        exists = bool(result.rowcount)  # type: ignore[attr-defined]
    else:
        row = (await session.execute(sa.select(_S.id).where(_S.name == name))).first()
        exists = row is not None
    if exists and not overwrite:
        raise Conflict(f"a secret named {name!r} exists already; set overwrite to replace it")
    if not exists:
        try:
            await session.execute(
                sa.insert(secrets).values(
                    id=uuid.uuid4(), name=name, token=token, created=now, updated=now
                )
            )
        except IntegrityError as exc:  # set at the same moment by another request
            if is_unique_violation(exc):
                raise Conflict(
                    f"a secret named {name!r} was set at the same time; try again"
                ) from None
            raise
    info = await read_secret(session, name)
    assert info is not None
    return info, not exists


async def read_secret(session: AsyncSession, name: str) -> SecretInfo | None:
    row = (await session.execute(sa.select(*_INFO).where(_S.name == name))).first()
    return _info(row) if row is not None else None


async def read_secret_token(session: AsyncSession, name: str) -> str | None:
    return (await session.execute(sa.select(_S.token).where(_S.name == name))).scalar()


async def read_secrets(session: AsyncSession, flt: SecretFilter) -> list[SecretInfo]:
    stmt = sa.select(*_INFO).order_by(_S.name).limit(flt.limit).offset(flt.offset)
    if flt.name_like:
        stmt = stmt.where(_S.name.icontains(flt.name_like, autoescape=True))
    return [_info(row) for row in await session.execute(stmt)]


async def delete_secret(session: AsyncSession, name: str) -> bool:
    result = await session.execute(sa.delete(secrets).where(_S.name == name))
    return bool(result.rowcount)  # type: ignore[attr-defined]
