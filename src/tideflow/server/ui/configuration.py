"""Configuration pages: variables (list, create, edit, delete), secrets (list, set or replace,
delete; values are never read here, so no page can show one) and notification destinations (list,
send a test, delete). Changes go through the API from the page's script, with the CSRF token."""

from __future__ import annotations

import json

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from tideflow.schemas.notifications import NotificationDestinationFilter
from tideflow.schemas.secrets import SecretFilter
from tideflow.schemas.variables import VariableFilter
from tideflow.server.storage import notification_destinations as destination_storage
from tideflow.server.storage import secrets as secret_storage
from tideflow.server.storage import variables as variable_storage
from tideflow.server.ui.rendering import database, render

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

SHOWN = 500  # rows per page; these are small, hand-made collections
VALUE_SHOWN = 200  # characters of a variable's JSON in the table


def _target(config: object) -> str:
    """Where a destination sends, naming its secrets, never reading them."""
    kind = getattr(config, "type", "")
    if kind in ("slack", "teams"):
        return f"URL in secret {getattr(config, 'webhook_url_secret', '')}"
    if kind == "email":
        to = ", ".join(getattr(config, "to", []))
        return f"{to} via {getattr(config, 'host', '')}:{getattr(config, 'port', '')}"
    return f"{getattr(config, 'method', '')} {getattr(config, 'url', '')}"


@router.get("/variables", response_class=HTMLResponse)
async def variables_page(request: Request) -> HTMLResponse:
    async with database(request).read() as session:
        found = await variable_storage.read_variables(session, VariableFilter(limit=SHOWN))
    rows = []
    for variable in found:
        text = json.dumps(variable.value, ensure_ascii=False)
        rows.append(
            (variable, text, text if len(text) <= VALUE_SHOWN else text[:VALUE_SHOWN] + "…")
        )
    return render(request, "variables.html", title="Variables", rows=rows)


@router.get("/secrets", response_class=HTMLResponse)
async def secrets_page(request: Request) -> HTMLResponse:
    async with database(request).read() as session:
        found = await secret_storage.read_secrets(session, SecretFilter(limit=SHOWN))
    return render(request, "secrets.html", title="Secrets", secrets=found)


@router.get("/notifications", response_class=HTMLResponse)
async def notifications_page(request: Request) -> HTMLResponse:
    async with database(request).read() as session:
        found = await destination_storage.read_destinations(
            session, NotificationDestinationFilter(limit=SHOWN)
        )
    rows = [(d, _target(d.config)) for d in found]
    return render(request, "notifications.html", title="Notifications", rows=rows)
