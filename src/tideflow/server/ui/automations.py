"""Automation pages: the list (enabled toggles, last fired), the automation page (trigger and actions
readable and as YAML, firing history with outcomes, "explain against an event"), and the editor
(a YAML document validated by the API, prefilled from an event for "automation from this event")."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import yaml
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from tideflow.schemas.automations import Automation
from tideflow.schemas.deployments import DeploymentFilter
from tideflow.schemas.events import EventFilter, ReceivedEvent
from tideflow.server.context import ServerContext
from tideflow.server.storage import automations as storage
from tideflow.server.storage import deployments as deployment_storage
from tideflow.server.storage import events as event_storage
from tideflow.server.storage.event_names import unknown_event_warnings
from tideflow.server.triggers import state as trigger_state
from tideflow.server.triggers.why import engine_pause, explain_stored
from tideflow.server.ui.automation_editor import editor_context
from tideflow.server.ui.finding import suggestion_filters
from tideflow.server.ui.rendering import database, not_found, read_by_id, render

__all__ = ["automation_yaml", "draft_from_event", "router"]

router = APIRouter(include_in_schema=False)

_EDITABLE = ("name", "description", "enabled", "trigger", "actions", "actions_on_trigger",
             "actions_on_resolve")  # fmt: skip


def _dump(document: dict[str, Any]) -> str:
    return str(yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=100))


def automation_yaml(automation: Automation) -> str:
    """The editable fields of ``automation`` as YAML (empty optional action lists left out)."""
    data = automation.model_dump(mode="json", include=set(_EDITABLE))
    for key in ("actions_on_trigger", "actions_on_resolve"):
        if not data.get(key):
            data.pop(key, None)
    return _dump({key: data[key] for key in _EDITABLE if key in data})


def draft_from_event(event: ReceivedEvent | None) -> str:
    """A new automation's YAML: on ``event``'s name, for the same deployment (or resource)."""
    if event is None:
        trigger: dict[str, Any] = {
            "type": "event",
            "expect": ["tideflow.flow-run.Completed"],
            "match_related": {"tideflow.resource.role": "deployment", "tideflow.resource.name": ""},
        }
        name = "my automation"
    else:
        deployment = next((r for r in event.related if r.role == "deployment"), None)
        trigger = {"type": "event", "expect": [event.event]}
        if deployment is not None and deployment.name:
            trigger["match_related"] = {
                "tideflow.resource.role": "deployment",
                "tideflow.resource.name": deployment.name,
            }
            subject = deployment.name
        elif event.resource.name:
            trigger["match"] = {"tideflow.resource.name": event.resource.name}
            subject = event.resource.name
        else:
            trigger["match"] = {"tideflow.resource.id": event.resource.id}
            subject = event.resource.id
        name = f"after {event.event.rsplit('.', 1)[-1]} of {subject}"
    document = {
        "name": name,
        "description": "",
        "enabled": True,
        "trigger": {**trigger, "posture": "Reactive", "threshold": 1, "within": 0},
        "actions": [{"type": "run-deployment", "deployment_id": None}],
    }
    return _dump(document)


async def _deployment_names(session: AsyncSession) -> dict[str, str]:
    deployments = await deployment_storage.read_deployments(session, DeploymentFilter(limit=1000))
    return {str(d.id): d.full_name for d in sorted(deployments, key=lambda d: d.full_name)}


async def _last_fired(session: AsyncSession, automations: list[Automation]) -> dict[UUID, Any]:
    out = {}
    for automation in automations:
        history = await trigger_state.read_history(session, automation.id, 1)
        fired = [f for f in history if f.kind != "paused"]
        out[automation.id] = fired[0].fired_at if fired else None
    return out


@router.get("/automations", response_class=HTMLResponse)
async def automations_page(request: Request) -> HTMLResponse:
    async with database(request).read() as session:
        automations = await storage.read_all_automations(session)
        last_fired = await _last_fired(session, automations)
        names = await _deployment_names(session)
    automations.sort(key=lambda a: a.name.lower())
    return render(
        request,
        "automations.html",
        title="Automations",
        automations=automations,
        last_fired=last_fired,
        deployment_names=names,
    )


@router.get("/automations/new", response_class=HTMLResponse)
async def new_automation(request: Request) -> HTMLResponse:
    event = None
    raw = request.query_params.get("from_event")
    async with database(request).read() as session:
        if raw:
            try:
                event = await event_storage.read_event(session, UUID(raw))
            except ValueError:
                event = None
            if event is None:
                return not_found(request, f"event {raw}")
        text = draft_from_event(event)
        editor = await editor_context(session, yaml.safe_load(text))
    return render(
        request,
        "automation_edit.html",
        title="New automation",
        automation=None,
        source_event=event,
        text=text,
        **editor,
    )


@router.post("/automations/yaml")
async def yaml_to_json(request: Request) -> JSONResponse:
    """The editor's YAML as JSON (the API then validates it); 422 with the line of a YAML error."""
    text = (await request.body()).decode("utf-8", errors="replace")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        return JSONResponse({"detail": f"not valid YAML{where}: {problem}"}, status_code=422)
    if not isinstance(data, dict):
        return JSONResponse(
            {"detail": "the document must be a mapping with name, trigger and actions"},
            status_code=422,
        )
    return JSONResponse(data)


@router.get("/automations/{automation_id}", response_class=HTMLResponse)
async def automation_page(request: Request, automation_id: str) -> HTMLResponse:
    automation = await read_by_id(request, automation_id, storage.read_automation)
    if automation is None:
        return not_found(request, f"automation {automation_id}")
    async with database(request).read() as session:
        history = await trigger_state.read_history(session, automation.id, 50)
        names = await _deployment_names(session)
        event_warnings = await unknown_event_warnings(session, automation)
        suggested = await _suggested_events(session, automation)
        recent = await event_storage.read_events(session, EventFilter(limit=20))
        explained = await _explained(request, session, automation)
    return render(
        request,
        "automation.html",
        title=automation.name,
        automation=automation,
        trigger=automation.trigger.model_dump(mode="json"),
        yaml_text=automation_yaml(automation),
        history=history,
        engine_pause=engine_pause(automation, history),
        deployment_names=names,
        recent_events=suggested or recent.events,
        suggested=suggested,
        explained=explained,
        event_warnings=event_warnings,
    )


SUGGESTIONS = 8


async def _suggested_events(session: AsyncSession, automation: Automation) -> list[ReceivedEvent]:
    """Stored events that match the trigger's ``expect`` (with its labels when any do), newest
    first: the ones worth explaining it against. At most four bounded reads."""
    seen: dict[UUID, ReceivedEvent] = {}
    for flt in suggestion_filters(automation.trigger.model_dump(mode="json"), SUGGESTIONS)[:4]:
        for event in (await event_storage.read_events(session, flt)).events:
            seen.setdefault(event.id, event)
        if len(seen) >= SUGGESTIONS:
            break
    return sorted(seen.values(), key=lambda e: e.occurred, reverse=True)[:SUGGESTIONS]


async def _explained(
    request: Request, session: AsyncSession, automation: Automation
) -> dict[str, Any] | None:
    """``?explain=<event id>``: the explanation rendered in the page (the suggestions link here)."""
    raw = request.query_params.get("explain", "").strip()
    if not raw:
        return None
    try:
        event = await event_storage.read_event(session, UUID(raw))
    except ValueError:
        return {"error": f"{raw!r} is not an event id"}
    if event is None:
        return {"error": f"event {raw} not found"}
    result, fired = await explain_stored(
        session, automation, event, max_causal_depth=_max_depth(request)
    )
    return {"error": None, "event": event, "explanation": result, "firings": fired}


def _max_depth(request: Request) -> int:
    context: ServerContext = request.app.state.context
    return context.settings.automations_max_causal_depth


@router.get("/automations/{automation_id}/edit", response_class=HTMLResponse)
async def edit_automation(request: Request, automation_id: str) -> HTMLResponse:
    automation = await read_by_id(request, automation_id, storage.read_automation)
    if automation is None:
        return not_found(request, f"automation {automation_id}")
    text = automation_yaml(automation)
    async with database(request).read() as session:
        editor = await editor_context(session, yaml.safe_load(text))
    return render(
        request,
        "automation_edit.html",
        title=f"Edit {automation.name}",
        automation=automation,
        source_event=None,
        text=text,
        **editor,
    )


@router.get("/automations/{automation_id}/explain", response_class=HTMLResponse)
async def explain_fragment(request: Request, automation_id: str) -> HTMLResponse:
    """Each criterion of the trigger against one stored event (the same evaluation as the API's)."""
    automation = await read_by_id(request, automation_id, storage.read_automation)
    if automation is None:
        return not_found(request, f"automation {automation_id}")
    raw = request.query_params.get("event_id", "").strip()
    try:
        event_id = UUID(raw)
    except ValueError:
        return render(
            request, "_explain.html", status_code=422, error=f"{raw!r} is not an event id"
        )
    async with database(request).read() as session:
        event = await event_storage.read_event(session, event_id)
        if event is None:
            return render(request, "_explain.html", status_code=404, error=f"event {raw} not found")
        result, fired = await explain_stored(
            session, automation, event, max_causal_depth=_max_depth(request)
        )
    return render(
        request, "_explain.html", error=None, event=event, explanation=result, firings=fired
    )
