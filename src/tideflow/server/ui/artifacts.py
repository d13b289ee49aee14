"""Artifact pages: the list (latest version of each key, and keyless ones, newest first), one
artifact with its key's versions, and the artifacts section of a flow-run page.

Markdown is rendered by markdown-it (CommonMark, raw HTML shown as text, unsafe link schemes not
linked); large documents render in a worker thread. Tables show at most ``TABLE_ROWS_SHOWN`` rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

import anyio.to_thread
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from markdown_it import MarkdownIt
from markupsafe import Markup
from sqlalchemy.ext.asyncio import AsyncSession

from tideflow.schemas.artifacts import Artifact, ArtifactFilter, ArtifactType, table_rows
from tideflow.server.storage import artifacts as storage
from tideflow.server.ui.rendering import database, not_found, read_by_id, render

__all__ = ["ArtifactView", "artifact_views", "router", "run_artifacts"]

router = APIRouter(include_in_schema=False)

PAGE_SIZE = 50
RUN_ARTIFACTS_SHOWN = 50
VERSIONS_SHOWN = 50
TABLE_ROWS_SHOWN = 500
_THREAD_ABOVE = 32_000  # characters of markdown rendered off the event loop


@dataclass
class ArtifactView:
    """An artifact as a page shows it."""

    artifact: Artifact
    html: Markup | None = None
    columns: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    total_rows: int = 0
    summary: str = ""


def _markdown(text: str) -> Markup:
    # A fresh parser per call: MarkdownIt objects are not documented as thread-safe.
    return Markup(MarkdownIt("commonmark", {"html": False}).enable("table").render(text))


def _cell(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)


async def _view(artifact: Artifact, *, full: bool) -> ArtifactView:
    view = ArtifactView(artifact)
    data = artifact.data
    if artifact.type is ArtifactType.MARKDOWN:
        text = str(data)
        first = text.strip().splitlines()[0] if text.strip() else ""
        view.summary = first.lstrip("# ")[:80]
        if full:
            if len(text) > _THREAD_ABOVE:
                view.html = await anyio.to_thread.run_sync(_markdown, text)
            else:
                view.html = _markdown(text)
    elif artifact.type is ArtifactType.TABLE:
        columns, rows = table_rows(data)
        view.total_rows = len(rows)
        view.summary = f"{len(rows)} row{'' if len(rows) == 1 else 's'}, {len(columns)} columns"
        if full:
            view.columns = columns
            view.rows = [[_cell(v) for v in row] for row in rows[:TABLE_ROWS_SHOWN]]
    elif artifact.type is ArtifactType.LINK:
        view.summary = str(data.get("link_text") or data.get("link"))
    else:
        view.summary = f"{data:g}%"
    return view


async def artifact_views(artifacts: list[Artifact], *, full: bool) -> list[ArtifactView]:
    return [await _view(a, full=full) for a in artifacts]


async def run_artifacts(session: AsyncSession, run_id: UUID) -> list[ArtifactView]:
    """The run's artifacts (newest first, at most RUN_ARTIFACTS_SHOWN), rendered."""
    flt = ArtifactFilter(flow_run_id=[run_id], limit=RUN_ARTIFACTS_SHOWN)
    return await artifact_views(await storage.read_artifacts(session, flt), full=True)


def _page(request: Request) -> int:
    try:
        return min(max(1, int(request.query_params.get("page", "1"))), 100_000)
    except ValueError:
        return 1


@router.get("/artifacts", response_class=HTMLResponse)
async def artifacts_page(request: Request) -> HTMLResponse:
    page = _page(request)
    flt = ArtifactFilter(latest_only=True, limit=PAGE_SIZE + 1, offset=(page - 1) * PAGE_SIZE)
    async with database(request).read() as session:
        found = await storage.read_artifacts(session, flt)
    views = await artifact_views(found[:PAGE_SIZE], full=False)
    return render(
        request, "artifacts.html", title="Artifacts", views=views, page=page,
        more=len(found) > PAGE_SIZE,
    )  # fmt: skip


@router.get("/artifacts/{artifact_id}", response_class=HTMLResponse)
async def artifact_page(request: Request, artifact_id: str) -> HTMLResponse:
    found = await read_by_id(request, artifact_id, storage.read_artifact)
    if found is None:
        return not_found(request, f"artifact {artifact_id}")
    versions: list[Artifact] = []
    if found.key is not None:
        async with database(request).read() as session:
            flt = ArtifactFilter(key=[found.key], limit=VERSIONS_SHOWN)
            versions = await storage.read_artifacts(session, flt)
    [view] = await artifact_views([found], full=True)
    title = found.key or f"{found.type.value} artifact"
    return render(
        request, "artifact.html", title=title, view=view,
        versions=await artifact_views(versions, full=False), rows_shown=TABLE_ROWS_SHOWN,
    )  # fmt: skip
