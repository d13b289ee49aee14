"""What the guided automation editor needs from the server: the names of stored events (for
suggestions), the action kinds and deployments it offers, the document it starts from, and the
YAML of a document the form built (the form and the YAML view stay in sync through it)."""

from __future__ import annotations

import json
from typing import Any, get_args

import sqlalchemy as sa
import yaml
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from sqlalchemy.ext.asyncio import AsyncSession

from tideflow.schemas.automations import Action, AutomationFilter
from tideflow.schemas.deployments import DeploymentFilter
from tideflow.schemas.states import StateType
from tideflow.server.storage import automations as automation_storage
from tideflow.server.storage import deployments as deployment_storage
from tideflow.server.storage.event_names import KNOWN_EVENTS
from tideflow.server.storage.tables import events

__all__ = ["ACTION_KINDS", "editor_context", "router", "stored_event_names"]

router = APIRouter(include_in_schema=False)

NAME_STEPS = 300  # distinct stored event names read for the suggestions (one index probe each)
MAX_DOCUMENT = 256 * 1024  # bytes of JSON the YAML view is asked to render

# The action kinds the server runs, in the order the form offers them (from the Action union).
ACTION_KINDS: tuple[str, ...] = tuple(
    str(model.model_fields["type"].default) for model in get_args(get_args(Action)[0])
)


async def stored_event_names(session: AsyncSession, limit: int = NAME_STEPS) -> list[str]:
    """Up to ``limit`` distinct stored event names, in order: each one is a ``min(event) > last``
    probe of the ``(event, occurred)`` index, so 174,000 events cost ``limit`` probes, not a scan."""
    names: list[str] = []
    last = ""
    for _ in range(limit):
        stmt = sa.select(sa.func.min(events.c.event)).where(events.c.event > last)
        value = (await session.execute(stmt)).scalar_one_or_none()
        if value is None:
            break
        names.append(str(value))
        last = str(value)
    return names


async def editor_context(session: AsyncSession, document: dict[str, Any]) -> dict[str, Any]:
    """The template context the editor adds to its page: options and the starting document."""
    deployments = await deployment_storage.read_deployments(session, DeploymentFilter(limit=1000))
    automations = await automation_storage.read_automations(session, AutomationFilter(limit=1000))
    stored = await stored_event_names(session)
    options = {
        "actions": list(ACTION_KINDS),
        "states": [s.value for s in StateType],
        "deployments": sorted(
            ({"id": str(d.id), "name": d.full_name} for d in deployments),
            key=lambda d: d["name"],
        ),
        "automations": sorted(
            ({"id": str(a.id), "name": a.name} for a in automations), key=lambda a: a["name"]
        ),
    }
    return {
        "event_names": sorted(set(stored) | KNOWN_EVENTS),
        "editor_options": json.dumps(options),
        "editor_document": json.dumps(document),
    }


@router.post("/automations/yaml/dump", response_model=None)
async def document_to_yaml(request: Request) -> PlainTextResponse | JSONResponse:
    """The YAML view of the document the form built (JSON in, YAML out, keys in the form's order)."""
    raw = await request.body()
    if len(raw) > MAX_DOCUMENT:
        return JSONResponse({"detail": f"body: at most {MAX_DOCUMENT} bytes"}, status_code=413)
    try:
        data = json.loads(raw)
    except ValueError as exc:
        return JSONResponse({"detail": f"body: not valid JSON: {exc}"}, status_code=422)
    if not isinstance(data, dict):
        return JSONResponse({"detail": "body: expected a JSON object"}, status_code=422)
    text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
    return PlainTextResponse(str(text))
