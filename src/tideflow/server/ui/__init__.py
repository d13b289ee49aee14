"""The web UI served at the server's root: server-rendered Jinja2 pages, one router module per page
group, and static CSS/JS shipped in the wheel (no build step, no CDN, works offline).

The pages are loaded on the first request the API does not answer, not at start: their modules,
YAML and the Jinja2 environment cost ~35 ms and ~2 MiB that an API-only server never needs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, NoMatchFound
from starlette.types import Receive, Scope, Send

__all__ = ["install_ui"]


def install_ui(app: FastAPI) -> None:
    """Serve the pages at ``/`` and their assets at ``/ui/static`` on ``app`` (loaded on first use).

    Call after the API's error handlers are installed: a browser asking for a page that does not
    exist gets the UI's 404 page; everything else keeps the API's JSON error.
    """
    app.router.routes.append(_LazyUI(app))
    api_handler = app.exception_handlers.get(HTTPException)
    app.add_exception_handler(HTTPException, _page_not_found(api_handler))


_NOT_PAGES = ("/api/", "/ui/static/", "/docs", "/redoc")


def _page_not_found(
    api_handler: Callable[[Request, Any], Awaitable[Response] | Response] | None,
) -> Callable[[Request, Exception], Awaitable[Response]]:
    async def handle(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        path = request.url.path
        if (
            exc.status_code == 404
            and request.method in ("GET", "HEAD")
            and not path.startswith(_NOT_PAGES)
            and path != "/api"
            and "text/html" in request.headers.get("accept", "")
        ):
            from tideflow.server.ui.rendering import not_found

            return not_found(request, f"page at {path}")
        if api_handler is None:
            return Response(status_code=exc.status_code, headers=exc.headers)
        response = api_handler(request, exc)
        return await response if isinstance(response, Awaitable) else response

    return handle


def load_ui(app: FastAPI) -> None:
    """Add the page routers, the static mount and the template environment to ``app`` now."""
    from fastapi.staticfiles import StaticFiles

    from tideflow.server.ui import (
        access,
        artifacts,
        assets,
        automation_editor,
        automations,
        chains,
        configuration,
        dashboard,
        deployments,
        events,
        login,
        runs,
        webhooks,
        work_pools,
    )
    from tideflow.server.ui.rendering import STATIC_DIR, build_environment

    app.state.ui_templates = build_environment()
    app.mount("/ui/static", StaticFiles(directory=STATIC_DIR), name="ui-static")
    app.include_router(automation_editor.router)  # before automations: its paths are more specific
    for module in (
        dashboard, runs, deployments, events, automations, chains, login, artifacts, assets,
    ):  # fmt: skip
        app.include_router(module.router)
    app.include_router(work_pools.router)
    app.include_router(access.router)
    app.include_router(webhooks.router)
    app.include_router(configuration.router)


class _LazyUI(BaseRoute):
    """Last route of the app: matches any HTTP request nothing before it took, loads the UI in its
    place, then routes the request again (so it reaches a page, an API 404 or a slash redirect)."""

    def __init__(self, app: FastAPI) -> None:
        self._app = app

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        return (Match.FULL, {}) if scope["type"] == "http" else (Match.NONE, {})

    def url_path_for(self, name: str, /, **path_params: object) -> str:  # type: ignore[override]
        raise NoMatchFound(name, path_params)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        routes = self._app.router.routes
        if self in routes:  # no await before this: one request loads the UI, once
            routes.remove(self)
            load_ui(self._app)
        await self._app.router.app(scope, receive, send)
