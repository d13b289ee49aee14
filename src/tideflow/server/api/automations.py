"""Automation routes: create, read (id, name, filter), update, pause/resume, delete, explain, history.

Bodies are checked with ``parse_automation`` and ``automation_template_problems`` so a bad trigger,
action or template is a 422 whose detail names the field (``trigger.threshold: ...``). A webhook URL
whose host is an address the egress policy refuses (``http://169.254.169.254/``) is a 422 too; a
host name is judged each time the action runs, since what it resolves to can change.
"""

from __future__ import annotations

import asyncio
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Body, Depends, HTTPException, Query, Response, status
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from tideflow.schemas.automations import (
    Automation,
    AutomationCreate,
    AutomationFilter,
    AutomationUpdate,
    CallWebhook,
    FiringRecord,
    MetricTrigger,
    describe_validation_error,
    parse_automation,
)
from tideflow.schemas.states import utcnow
from tideflow.server.api.deps import DB, Actor, get_context
from tideflow.server.context import ServerContext
from tideflow.server.services.metric_triggers import measure
from tideflow.server.storage import NotFound
from tideflow.server.storage import automations as storage
from tideflow.server.storage.change_events import emit_change_event
from tideflow.server.storage.event_names import unknown_event_warnings
from tideflow.server.storage.events import read_event
from tideflow.server.triggers import state as trigger_state
from tideflow.server.triggers.backfill import backfill_firings
from tideflow.server.triggers.egress import AllowList, check_literal_url, parse_allow_list
from tideflow.server.triggers.explain import Explanation
from tideflow.server.triggers.replay import Replay, replay_stored, replay_window
from tideflow.server.triggers.template_budget import TemplateLimits
from tideflow.server.triggers.templates import automation_template_problems
from tideflow.server.triggers.why import explain_stored

__all__ = ["AutomationExplanation", "ReplayRequest", "router"]

router = APIRouter(prefix="/automations", tags=["automations"])


class AutomationExplanation(BaseModel):
    """Why an automation did or would (not) fire on one stored event."""

    automation_id: UUID
    event_id: UUID
    explanation: Explanation
    lines: list[str]
    firings: list[FiringRecord]


class ReplayRequest(BaseModel):
    """A window of stored events to replay a trigger over (``until`` defaults to now)."""

    model_config = ConfigDict(extra="forbid")

    since: AwareDatetime
    until: AwareDatetime | None = None
    automation: dict[str, Any] | None = Field(
        None, description="An automation to try before saving it (POST /automations/replay)."
    )
    backfill: bool = Field(
        False,
        description="Record the firings found that were never recorded and run their actions "
        "(stored automations only; at most 200 a request; running it again records nothing).",
    )


def _unprocessable(message: str) -> HTTPException:
    return HTTPException(422, detail=message)


def _refused_urls(body: AutomationCreate | Automation, allowed: AllowList) -> list[str]:
    out = []
    for field in ("actions", "actions_on_trigger", "actions_on_resolve"):
        for index, action in enumerate(getattr(body, field)):
            if isinstance(action, CallWebhook):
                refused = check_literal_url(action.url, allowed)
                if refused is not None:
                    out.append(f"{field}[{index}].url: {refused}")
    return out


def _checked(body: AutomationCreate | Automation, allowed: AllowList) -> None:
    problems = _refused_urls(body, allowed)
    problems += automation_template_problems(AutomationCreate.model_validate(
        body.model_dump(exclude={"id", "created", "updated", "warnings", "event_warnings"})
    ))  # fmt: skip
    if problems:
        raise _unprocessable("; ".join(problems))


async def _advised(session: Any, automation: Automation) -> Automation:
    """``automation`` with its event_warnings (names no stored event has) filled in."""
    return automation.model_copy(
        update={"event_warnings": await unknown_event_warnings(session, automation)}
    )


def _allowed(context: ServerContext) -> AllowList:
    return parse_allow_list(context.settings.webhooks_allowed_networks)


def parse_create(data: Any, allowed: AllowList) -> AutomationCreate:
    if not isinstance(data, dict):
        raise _unprocessable(f"body: expected a JSON object, got {type(data).__name__}")
    try:
        body = parse_automation(data)
    except ValueError as exc:
        head, _, rest = str(exc).partition(":\n  ")
        raise _unprocessable(
            f"{head}: {'; '.join(rest.split(chr(10) + '  '))}" if rest else head
        ) from None
    _checked(body, allowed)
    return body


@router.post("/", status_code=status.HTTP_201_CREATED)
async def create_automation(
    db: DB, data: Any = Body(...), context: ServerContext = Depends(get_context)
) -> Automation:
    """Create an automation (a fresh id, even when the name is taken)."""
    # Parsing and the template check are bounded but can take a noticeable fraction of a second
    # for a hostile body: never on the event loop.
    body = await asyncio.to_thread(parse_create, data, _allowed(context))
    async with db.write() as session:
        return await _advised(session, await storage.create_automation(session, body))


async def _replay(
    db: DB, context: ServerContext, automation: AutomationCreate, body: ReplayRequest
) -> Replay:
    until = body.until or utcnow()
    limits = TemplateLimits(
        timeout=context.settings.templates_render_timeout,
        max_output=context.settings.templates_max_output,
    )
    async with db.read() as session:
        try:
            return await replay_stored(session, automation, body.since, until, limits)
        except ValueError as exc:
            raise _unprocessable(f"body: {exc}") from None


@router.post("/replay")
async def replay_new_automation(
    db: DB, body: ReplayRequest, context: ServerContext = Depends(get_context)
) -> Replay:
    """Dry-run an unsaved automation (``automation``) over the stored events of a window: the
    firings it would have made and its actions' rendered templates; nothing is stored or run."""
    if body.automation is None:
        raise _unprocessable("body.automation: the automation to replay is required here")
    if body.backfill:
        raise _unprocessable("body.backfill: only a saved automation can be backfilled")
    parsed = await asyncio.to_thread(parse_create, body.automation, _allowed(context))
    return await _replay(db, context, parsed, body)


@router.post("/filter")
async def read_automations(db: DB, body: AutomationFilter | None = None) -> list[Automation]:
    """Automations matching the filter, sorted by name."""
    async with db.read() as session:
        return await storage.read_automations(session, body or AutomationFilter())


@router.get("/name/{name:path}")
async def read_automation_by_name(name: str, db: DB) -> Automation:
    """The automation called ``name``; 409 when several share it (use the id then)."""
    async with db.read() as session:
        found = await storage.read_automations_by_name(session, name)
        if not found:
            raise NotFound(f"automation {name!r} not found")
        if len(found) > 1:
            ids = ", ".join(str(a.id) for a in found)
            raise HTTPException(
                status.HTTP_409_CONFLICT,
                detail=f"{len(found)} automations are called {name!r} ({ids}); use an id",
            )
        return await _advised(session, found[0])


@router.get("/{automation_id}")
async def read_automation(automation_id: UUID, db: DB) -> Automation:
    async with db.read() as session:
        automation = await storage.read_automation(session, automation_id)
        if automation is None:
            raise NotFound(f"automation {automation_id} not found")
        return await _advised(session, automation)


@router.patch("/{automation_id}")
async def update_automation(
    automation_id: UUID,
    db: DB,
    data: Any = Body(...),
    context: ServerContext = Depends(get_context),
) -> Automation:
    """Change the fields sent; the result is validated as a whole (422 naming the field)."""
    try:
        update = AutomationUpdate.model_validate(data)
    except ValidationError as exc:
        raise _unprocessable("; ".join(describe_validation_error(exc))) from None
    async with db.write() as session:
        try:
            automation = await storage.update_automation(session, automation_id, update)
        except ValidationError as exc:
            raise _unprocessable("; ".join(describe_validation_error(exc))) from None
        await asyncio.to_thread(_checked, automation, _allowed(context))
        return await _advised(session, automation)


async def _set_enabled(db: DB, automation_id: UUID, enabled: bool, by: str | None) -> Automation:
    """Enable or disable it; a change is recorded as ``tideflow.automation.enabled|disabled``."""
    async with db.write() as session:
        before = await storage.read_automation(session, automation_id)
        automation = await storage.set_automation_enabled(session, automation_id, enabled)
        if before is not None and before.enabled != enabled:
            verb = "enabled" if enabled else "disabled"
            await emit_change_event(session, kind="automation", object_id=automation.id,
                                    name=automation.name, verb=verb, by=by)  # fmt: skip
        return automation


@router.post("/{automation_id}/pause")
async def pause_automation(automation_id: UUID, db: DB, by: Actor) -> Automation:
    return await _set_enabled(db, automation_id, False, by)


@router.post("/{automation_id}/resume")
async def resume_automation(automation_id: UUID, db: DB, by: Actor) -> Automation:
    """Enable it again; its trigger starts counting afresh."""
    return await _set_enabled(db, automation_id, True, by)


@router.delete("/{automation_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_automation(automation_id: UUID, db: DB, by: Actor) -> Response:
    """Delete it with its state and firing history (the event ``tideflow.automation.deleted``
    remains)."""
    async with db.write() as session:
        found = await storage.read_automation(session, automation_id)
        await storage.delete_automation(session, automation_id)
        if found is not None:
            await emit_change_event(session, kind="automation", object_id=automation_id,
                                    name=found.name, verb="deleted", by=by)  # fmt: skip
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{automation_id}/explain")
async def explain_automation(
    automation_id: UUID,
    db: DB,
    context: ServerContext = Depends(get_context),
    event_id: UUID = Query(..., description="A stored event's id."),
) -> AutomationExplanation:
    """Each criterion of the trigger against the event, with the values compared, and a verdict
    from the real evaluation on the automation's current state; plus the firings it caused."""
    async with db.read() as session:
        automation = await storage.read_automation(session, automation_id)
        if automation is None:
            raise NotFound(f"automation {automation_id} not found")
        event = await read_event(session, event_id)
        if event is None:
            raise NotFound(f"event {event_id} not found")
        result, fired = await explain_stored(
            session, automation, event,
            max_causal_depth=context.settings.automations_max_causal_depth,
        )  # fmt: skip
    lines = result.lines()
    for f in fired:
        outcomes = (
            ", ".join(
                f"{a.action_type} {a.status}" + (f" ({a.detail})" if a.status == "failed" else "")
                for a in f.actions
            )
            or "no actions"
        )
        lines.append(f"this event {f.kind} firing {f.id} at {f.fired_at.isoformat()}: {outcomes}")
    return AutomationExplanation(
        automation_id=automation_id,
        event_id=event_id,
        explanation=result,
        lines=lines,
        firings=fired,
    )


@router.post("/{automation_id}/replay")
async def replay_automation(
    automation_id: UUID, db: DB, body: ReplayRequest, context: ServerContext = Depends(get_context)
) -> Replay:
    """Dry-run a stored automation over the stored events of a window: "it would have fired N
    times", with each firing's events and rendered action templates; nothing is stored or run."""
    if body.automation is not None:
        raise _unprocessable("body.automation: not allowed here (the stored automation is used)")
    async with db.read() as session:
        automation = await storage.read_automation(session, automation_id)
    if automation is None:
        raise NotFound(f"automation {automation_id} not found")
    trigger = automation.trigger
    if isinstance(trigger, MetricTrigger):
        raise _unprocessable(
            "automation: a metric trigger measures stored runs, not events: it has nothing to "
            f"replay (GET /api/automations/{automation_id}/metric says what it measures now)"
        )
    as_create = AutomationCreate.model_validate(
        automation.model_dump(exclude={"id", "created", "updated", "warnings", "event_warnings"})
    )
    replay = await _replay(db, context, as_create, body)
    if not body.backfill:
        return replay
    until = replay.until
    async with db.read() as session:
        _, firings, _, _ = await replay_window(session, trigger, body.since, until)
    async with db.write() as session:
        recorded = await backfill_firings(session, automation, firings, utcnow())
    times = "none" if not recorded else f"{len(recorded)}"
    return replay.model_copy(
        update={
            "backfilled": len(recorded),
            "summary": f"{replay.summary}; backfilled {times} not recorded before",
        }
    )


@router.get("/{automation_id}/metric")
async def automation_metric(
    automation_id: UUID, db: DB, context: ServerContext = Depends(get_context)
) -> dict[str, Any]:
    """What a metric trigger measures now: the value over its range, the runs counted, whether
    it breaches, its open firing, and readable ``lines`` (the explain of a metric trigger)."""
    async with db.read() as session:
        automation = await storage.read_automation(session, automation_id)
        if automation is None:
            raise NotFound(f"automation {automation_id} not found")
        if not isinstance(automation.trigger, MetricTrigger):
            raise _unprocessable("automation: its trigger is not a metric trigger")
        return dict(await measure(session, automation, utcnow()))


@router.get("/{automation_id}/history")
async def automation_history(
    automation_id: UUID, db: DB, limit: int = Query(20, ge=1, le=500)
) -> list[FiringRecord]:
    """Recent firings (newest first), each with its triggering event, actions and created runs."""
    async with db.read() as session:
        if await storage.read_automation(session, automation_id) is None:
            raise NotFound(f"automation {automation_id} not found")
        return await trigger_state.read_history(session, automation_id, limit)
