"""Artifacts: create (a new latest version of its key), read, list with filters, change, delete.

``is_latest`` marks the newest version of each key (keyless artifacts are always latest). Creating a
keyed artifact clears the flag on the key's previous latest in the same transaction; on PostgreSQL a
transaction-scoped advisory lock on the key serialises two creators of one key (SQLite's single
writer already does). Deleting the latest version makes the newest remaining one latest.
"""

from __future__ import annotations

import datetime as dt
import uuid
import zlib
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from tideflow.schemas.artifacts import (
    Artifact,
    ArtifactCreate,
    ArtifactFilter,
    ArtifactUpdate,
    check_artifact_data,
)
from tideflow.server.storage.dialect import dialect_name
from tideflow.server.storage.tables import artifacts

__all__ = [
    "create_artifact",
    "delete_artifact",
    "delete_artifacts_by_key",
    "read_artifact",
    "read_artifacts",
    "read_latest_artifact",
    "update_artifact",
]

_A = artifacts.c
_LOCK_SPACE = 0x7446_4172  # advisory lock namespace ("tFAr"), so keys never collide with others


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _artifact(row: Any) -> Artifact:
    return Artifact.model_validate(dict(row._mapping))


async def _lock_key(session: AsyncSession, key: str) -> None:
    if dialect_name(session) == "postgresql":
        digest = zlib.crc32(key.encode()) - 2**31  # a signed 32-bit integer
        await session.execute(
            sa.text("SELECT pg_advisory_xact_lock(:space, :key)"),
            {"space": _LOCK_SPACE, "key": digest},
        )


async def create_artifact(session: AsyncSession, body: ArtifactCreate) -> Artifact:
    """Store ``body`` as the latest version of its key (or alone, without a key)."""
    now = _now()
    if body.key is not None:
        await _lock_key(session, body.key)
        await session.execute(
            sa.update(artifacts)
            .where(_A.key == body.key, _A.is_latest.is_(True))
            .values(is_latest=False)
        )
    values = {
        **body.model_dump(),
        "id": uuid.uuid4(),
        "type": body.type.value,
        "is_latest": True,
        "created": now,
        "updated": now,
    }
    await session.execute(sa.insert(artifacts).values(**values))
    return Artifact.model_validate(values)


async def read_artifact(session: AsyncSession, artifact_id: UUID) -> Artifact | None:
    row = (await session.execute(sa.select(artifacts).where(_A.id == artifact_id))).first()
    return _artifact(row) if row is not None else None


async def read_latest_artifact(session: AsyncSession, key: str) -> Artifact | None:
    stmt = sa.select(artifacts).where(_A.key == key, _A.is_latest.is_(True))
    row = (await session.execute(stmt)).first()
    return _artifact(row) if row is not None else None


async def read_artifacts(session: AsyncSession, flt: ArtifactFilter) -> list[Artifact]:
    stmt = sa.select(artifacts).order_by(_A.created.desc(), _A.id)
    if flt.key:
        stmt = stmt.where(_A.key.in_(flt.key))
    if flt.type:
        stmt = stmt.where(_A.type.in_([t.value for t in flt.type]))
    if flt.flow_run_id:
        stmt = stmt.where(_A.flow_run_id.in_(flt.flow_run_id))
    if flt.task_run_id:
        stmt = stmt.where(_A.task_run_id.in_(flt.task_run_id))
    if flt.latest_only:
        stmt = stmt.where(_A.is_latest.is_(True))
    stmt = stmt.limit(flt.limit).offset(flt.offset)
    return [_artifact(row) for row in await session.execute(stmt)]


async def update_artifact(
    session: AsyncSession, artifact_id: UUID, body: ArtifactUpdate
) -> Artifact | None:
    """Change the data and/or description ``body`` sets; None when there is no such artifact.

    Raises ValueError when the data does not suit the artifact's type."""
    found = await read_artifact(session, artifact_id)
    if found is None:
        return None
    changes: dict[str, Any] = {"updated": _now()}
    if "data" in body.model_fields_set:
        changes["data"] = check_artifact_data(found.type, body.data)
    if "description" in body.model_fields_set:
        changes["description"] = body.description
    await session.execute(sa.update(artifacts).where(_A.id == artifact_id).values(**changes))
    return found.model_copy(update=changes)


async def delete_artifact(session: AsyncSession, artifact_id: UUID) -> bool:
    """Delete one artifact; when it was its key's latest, the newest remaining version becomes it."""
    found = await read_artifact(session, artifact_id)
    if found is None:
        return False
    if found.key is not None:
        await _lock_key(session, found.key)
    await session.execute(sa.delete(artifacts).where(_A.id == artifact_id))
    if found.key is not None and found.is_latest:
        newest = (
            sa.select(_A.id)
            .where(_A.key == found.key)
            .order_by(_A.created.desc(), _A.id)
            .limit(1)
            .scalar_subquery()
        )
        await session.execute(sa.update(artifacts).where(_A.id == newest).values(is_latest=True))
    return True


async def delete_artifacts_by_key(session: AsyncSession, key: str) -> int:
    """Delete every version of ``key``; how many there were."""
    result = await session.execute(sa.delete(artifacts).where(_A.key == key))
    return int(result.rowcount)  # type: ignore[attr-defined]
