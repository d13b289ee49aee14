"""The web UI served at the server's root: server-rendered Jinja2 pages, one router module per page
group, and static CSS/JS shipped in the wheel (no build step, no CDN, works offline)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from tideflow.server.ui import automations, chains, dashboard, deployments, events, runs
from tideflow.server.ui.rendering import STATIC_DIR, build_environment

__all__ = ["install_ui"]


def install_ui(app: FastAPI) -> None:
    """Serve the pages at ``/`` and their assets at ``/ui/static`` on ``app``."""
    app.state.ui_templates = build_environment()
    app.mount("/ui/static", StaticFiles(directory=STATIC_DIR), name="ui-static")
    for module in (dashboard, runs, deployments, events, automations, chains):
        app.include_router(module.router)
