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
async def health() -> dict[str, str]:
    """Answers ``{"status": "ok"}`` while the server is up."""
    return {"status": "ok"}


@router.get("/version")
async def version(request: Request) -> dict[str, Any]:
    """tideflow's version, the API version, and the database in use (password masked)."""
    db = get_context(request).database
    return {
        "version": tideflow.__version__,
        "api_version": API_VERSION,
        "database": db.dialect,
        "database_url": db.masked_url,
    }
