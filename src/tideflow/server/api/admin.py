"""Server-level routes: health and version."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

import tideflow
from tideflow.server.api.deps import get_context

__all__ = ["API_VERSION", "router"]

API_VERSION = "1"

router = APIRouter(tags=["server"])


@router.get("/health")
async def health(request: Request) -> dict[str, str]:
    """Answers ``{"status": "ok"}`` while the server is up and can store data; 503 with a
    ``detail`` once its SQLite database file was deleted or replaced under it."""
    get_context(request).database.check_file()
    return {"status": "ok"}


@router.get("/version")
async def version(request: Request) -> dict[str, Any]:
    """tideflow's version, the API version and the database dialect.

    Only the dialect: the database's host, user, name or file path are not for anyone who can
    reach the API (``tideflow server status`` shows the local server's from its pid file)."""
    db = get_context(request).database
    return {
        "version": tideflow.__version__,
        "api_version": API_VERSION,
        "database": db.dialect,
    }
