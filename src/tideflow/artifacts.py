"""Artifacts from Python: markdown, tables, links and progress a run publishes for people to see.

Called inside a flow or task run, each artifact is attached to that run (shown on its page); called
outside a run, it stands alone. With a ``key`` (lowercase letters, digits, ``-``), each call adds a
new version of that key and the newest is shown as its latest (``tideflow artifact inspect KEY``).
Each function returns the new artifact's id; the ``a``-prefixed functions are the async pairs. The
names and arguments follow Prefect's ``prefect.artifacts``.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from tideflow.client import AsyncClient
from tideflow.engine.clients import sync_client
from tideflow.engine.context import current_run, current_task_run
from tideflow.schemas.artifacts import (
    ArtifactCreate,
    ArtifactType,
    ArtifactUpdate,
    check_artifact_data,
)
from tideflow.settings import get_settings

__all__ = [
    "acreate_link_artifact",
    "acreate_markdown_artifact",
    "acreate_progress_artifact",
    "acreate_table_artifact",
    "aupdate_progress_artifact",
    "create_link_artifact",
    "create_markdown_artifact",
    "create_progress_artifact",
    "create_table_artifact",
    "update_progress_artifact",
]


def _body(
    kind: ArtifactType, data: Any, key: str | None, description: str | None
) -> ArtifactCreate:
    flow_ctx, task_ctx = current_run(), current_task_run()
    task_run = task_ctx.task_run if task_ctx is not None else None
    flow_run_id = flow_ctx.flow_run.id if flow_ctx is not None else None
    if flow_run_id is None and task_run is not None:  # a background task run's own flow run
        flow_run_id = getattr(task_run, "flow_run_id", None)
    return ArtifactCreate(
        key=key,
        type=kind,
        data=data,
        description=description,
        flow_run_id=flow_run_id,
        task_run_id=task_run.id if task_run is not None else None,
    )


def _create(body: ArtifactCreate) -> UUID:
    return sync_client(get_settings()).create_artifact(body).id


async def _acreate(body: ArtifactCreate) -> UUID:
    async with AsyncClient() as client:
        return (await client.create_artifact(body)).id


def _link(link: str, link_text: str | None) -> dict[str, Any]:
    return {"link": link, "link_text": link_text}


# -- sync ------------------------------------------------------------------------------------


def create_markdown_artifact(
    markdown: str, key: str | None = None, description: str | None = None
) -> UUID:
    """Publish ``markdown`` (rendered safely: raw HTML is shown as text)."""
    return _create(_body(ArtifactType.MARKDOWN, markdown, key, description))


def create_table_artifact(
    table: list[dict[str, Any]] | dict[str, list[Any]] | list[list[Any]],
    key: str | None = None,
    description: str | None = None,
) -> UUID:
    """Publish a table: a list of row objects, an object of columns, or a list of row lists."""
    return _create(_body(ArtifactType.TABLE, table, key, description))


def create_link_artifact(
    link: str, link_text: str | None = None, key: str | None = None, description: str | None = None
) -> UUID:
    """Publish a link (http, https or mailto)."""
    return _create(_body(ArtifactType.LINK, _link(link, link_text), key, description))


def create_progress_artifact(
    progress: float, key: str | None = None, description: str | None = None
) -> UUID:
    """Publish a progress value from 0 to 100; move it with :func:`update_progress_artifact`."""
    return _create(_body(ArtifactType.PROGRESS, progress, key, description))


def update_progress_artifact(
    artifact_id: UUID, progress: float, description: str | None = None
) -> UUID:
    """Set the progress (0 to 100) of the progress artifact ``artifact_id``."""
    update = _progress_update(progress, description)
    return sync_client(get_settings()).update_artifact(artifact_id, update).id


def _progress_update(progress: float, description: str | None) -> ArtifactUpdate:
    check_artifact_data(ArtifactType.PROGRESS, progress)
    if description is None:
        return ArtifactUpdate(data=progress)
    return ArtifactUpdate(data=progress, description=description)


# -- async -----------------------------------------------------------------------------------


async def acreate_markdown_artifact(
    markdown: str, key: str | None = None, description: str | None = None
) -> UUID:
    """Async :func:`create_markdown_artifact`."""
    return await _acreate(_body(ArtifactType.MARKDOWN, markdown, key, description))


async def acreate_table_artifact(
    table: list[dict[str, Any]] | dict[str, list[Any]] | list[list[Any]],
    key: str | None = None,
    description: str | None = None,
) -> UUID:
    """Async :func:`create_table_artifact`."""
    return await _acreate(_body(ArtifactType.TABLE, table, key, description))


async def acreate_link_artifact(
    link: str, link_text: str | None = None, key: str | None = None, description: str | None = None
) -> UUID:
    """Async :func:`create_link_artifact`."""
    return await _acreate(_body(ArtifactType.LINK, _link(link, link_text), key, description))


async def acreate_progress_artifact(
    progress: float, key: str | None = None, description: str | None = None
) -> UUID:
    """Async :func:`create_progress_artifact`."""
    return await _acreate(_body(ArtifactType.PROGRESS, progress, key, description))


async def aupdate_progress_artifact(
    artifact_id: UUID, progress: float, description: str | None = None
) -> UUID:
    """Async :func:`update_progress_artifact`."""
    update = _progress_update(progress, description)
    async with AsyncClient() as client:
        return (await client.update_artifact(artifact_id, update)).id
