"""Artifact routes: create (a new latest version of its key), list with filters (newest first),
read by id or the latest of a key, change data/description (progress), delete one or a key's
versions."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Path, status

from tideflow.schemas.artifacts import (
    ARTIFACT_KEY_PATTERN,
    Artifact,
    ArtifactCreate,
    ArtifactFilter,
    ArtifactUpdate,
)
from tideflow.server.api.deps import DB
from tideflow.server.api.validation import InvalidInput
from tideflow.server.storage import NotFound
from tideflow.server.storage import artifacts as storage

__all__ = ["router"]

router = APIRouter(prefix="/artifacts", tags=["artifacts"])

Key = Path(pattern=ARTIFACT_KEY_PATTERN, description="The artifact key.")


def _missing(artifact_id: UUID) -> NotFound:
    return NotFound(f"no artifact with id {artifact_id}")


@router.post("/", status_code=status.HTTP_201_CREATED)
async def create_artifact(body: ArtifactCreate, db: DB) -> Artifact:
    """Create an artifact; with a ``key``, it becomes that key's latest version."""
    async with db.write() as session:
        return await storage.create_artifact(session, body)


@router.post("/filter")
async def read_artifacts(db: DB, body: ArtifactFilter | None = None) -> list[Artifact]:
    """Artifacts, newest first, narrowed by the filter."""
    async with db.read() as session:
        return await storage.read_artifacts(session, body or ArtifactFilter())


@router.get("/key/{key}")
async def read_latest_artifact(db: DB, key: str = Key) -> Artifact:
    """The latest version of ``key``."""
    async with db.read() as session:
        found = await storage.read_latest_artifact(session, key)
    if found is None:
        raise NotFound(f"no artifact with key {key!r}")
    return found


@router.delete("/key/{key}")
async def delete_artifacts_by_key(db: DB, key: str = Key) -> dict[str, int]:
    """Delete every version of ``key``; 404 when it has none."""
    async with db.write() as session:
        deleted = await storage.delete_artifacts_by_key(session, key)
    if not deleted:
        raise NotFound(f"no artifact with key {key!r}")
    return {"deleted": deleted}


@router.get("/{artifact_id}")
async def read_artifact(artifact_id: UUID, db: DB) -> Artifact:
    async with db.read() as session:
        found = await storage.read_artifact(session, artifact_id)
    if found is None:
        raise _missing(artifact_id)
    return found


@router.patch("/{artifact_id}")
async def update_artifact(artifact_id: UUID, body: ArtifactUpdate, db: DB) -> Artifact:
    """Change the data (it must suit the artifact's type) and/or the description."""
    try:
        async with db.write() as session:
            found = await storage.update_artifact(session, artifact_id, body)
    except ValueError as exc:
        raise InvalidInput([(("body", "data"), str(exc))]) from None
    if found is None:
        raise _missing(artifact_id)
    return found


@router.delete("/{artifact_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_artifact(artifact_id: UUID, db: DB) -> None:
    """Delete one version; when it was its key's latest, the newest remaining one becomes it."""
    async with db.write() as session:
        if not await storage.delete_artifact(session, artifact_id):
            raise _missing(artifact_id)
