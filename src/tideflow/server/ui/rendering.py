"""The UI's Jinja2 environment (autoescaped, loaded from the package's templates) and the helpers
every page handler uses to answer: ``render`` a page, ``not_found`` for unknown ids."""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse
from sqlalchemy.ext.asyncio import AsyncSession

import tideflow
from tideflow.schemas.api_keys import grants
from tideflow.server.context import ServerContext
from tideflow.server.storage import Database
from tideflow.server.ui import views

__all__ = ["STATIC_DIR", "build_environment", "database", "not_found", "render"]

UI_DIR = Path(__file__).parent
STATIC_DIR = UI_DIR / "static"


def _iso(value: dt.datetime | None) -> str:
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def build_environment() -> jinja2.Environment:
    """A fresh environment for one app (no module-level state: each app builds its own)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(UI_DIR / "templates"),
        autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        iso=_iso,
        state_class=views.state_class,
        seconds=views.seconds,
        level_name=views.level_name,
        pretty_json=views.pretty_json,
        compact_json=views.compact_json,
        trigger_summary=views.trigger_summary,
        resource_link=views.resource_link,
        event_tone=views.event_tone,
    )
    env.globals.update(
        version=tideflow.__version__,
        query_string=views.query_string,
        STATE_ORDER=views.STATE_ORDER,
        EVENT_TONES=views.EVENT_TONES,
    )
    return env


def database(request: Request) -> Database:
    context: ServerContext = request.app.state.context
    return context.database


T = TypeVar("T")


async def read_by_id(
    request: Request, raw_id: str, read: Callable[[AsyncSession, UUID], Awaitable[T | None]]
) -> T | None:
    """The object whose id is in the URL, or None when the id is malformed or unknown (a 404)."""
    try:
        parsed = UUID(raw_id)
    except ValueError:
        return None
    async with database(request).read() as session:
        return await read(session, parsed)


def render(
    request: Request, template: str, *, status_code: int = 200, **context: Any
) -> HTMLResponse:
    env: jinja2.Environment = request.app.state.ui_templates
    # Who is logged in through a browser session (None with auth off or with a key header): the
    # header's logout button, and the CSRF token the page's scripts and forms send back.
    identity = request.scope.get("state", {}).get("identity")
    session = identity if identity is not None and identity.csrf_token else None
    # Action buttons only for who may use them (no identity: auth is off, anyone may).
    can_act = identity is None or grants(identity.scopes, "write")
    html = env.get_template(template).render(
        request=request, path=request.url.path, session=session, can_act=can_act, **context
    )
    return HTMLResponse(html, status_code=status_code)


def not_found(request: Request, what: str) -> HTMLResponse:
    """The 404 page, saying what was not found."""
    return render(request, "404.html", status_code=404, title="Not found", what=what)
