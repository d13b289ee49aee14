"""The action runner: runs each action of a firing at most once, and records the outcome.

Actions that only touch the database (run-deployment, pause/resume, flow-run state changes,
do-nothing) run INSIDE the transaction that records their firing (``execute_in``, each in a
savepoint so one failure cannot undo the others): the firing, the downstream run and the action's
record commit together or not at all, so a crash before the commit leaves nothing and the replayed
event fires again — exactly once, and no second transaction on the hot path. A webhook cannot be
rolled back: its row is recorded ``pending`` with the firing, claimed (pending -> running, a
compare-and-set) in its own transaction before the request, and one left ``running`` by a crash is
recorded as failed, never sent twice. A failing action records ``tideflow.automation.action.failed``
with the reason and never stops the engine.

A webhook or a notification connects only through ``outbound.Egress`` (the SSRF policy, with the
checked address pinned); a notification's credentials are read from secrets when it is sent
(``notifier``) and never appear in a recorded reason.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from pydantic import TypeAdapter
from sqlalchemy.ext.asyncio import AsyncSession

from tideflow.schemas import Creator, StateProposal
from tideflow.schemas.automations import (
    Action,
    Automation,
    CallWebhook,
    CancelFlowRun,
    ChangeFlowRunState,
    DoNothing,
    PauseAutomation,
    PauseDeployment,
    ResumeAutomation,
    ResumeDeployment,
    RunDeployment,
    SendNotification,
    SuspendFlowRun,
)
from tideflow.schemas.deployments import DeploymentFlowRunCreate
from tideflow.schemas.events import Event
from tideflow.schemas.objects import SetStateStatus
from tideflow.schemas.states import Cancelled, Cancelling, Paused, State
from tideflow.server.storage import Database, StorageError
from tideflow.server.storage import automations as automation_storage
from tideflow.server.storage.deployment_runs import create_deployment_flow_run
from tideflow.server.storage.deployments import read_deployment, set_deployment_paused
from tideflow.server.storage.events import insert_events
from tideflow.server.storage.flow_runs import read_flow_run, set_flow_run_state
from tideflow.server.storage.flows import read_flow
from tideflow.server.triggers import state as store
from tideflow.server.triggers.egress import AllowList, parse_allow_list
from tideflow.server.triggers.emitted import action_event, find_resource_id
from tideflow.server.triggers.evaluate import Firing, Resolution
from tideflow.server.triggers.notifier import Notifier, NotifyFailed
from tideflow.server.triggers.outbound import Egress, EgressRefused, Resolver, resolve_host
from tideflow.server.triggers.owned import sync_owned_automations
from tideflow.server.triggers.template_variables import read_template_variables
from tideflow.server.triggers.templates import (
    TemplateError,
    TemplateLimits,
    arender_value,
    base_context,
)
from tideflow.settings import get_settings

__all__ = [
    "ActionFailed",
    "ActionRunner",
    "Outcome",
    "Resolver",
    "idempotency_key",
    "resolve_host",
    "runs_in_transaction",
]

_ACTION = TypeAdapter(Action)
_log = logging.getLogger("tideflow.server.actions")


class ActionFailed(Exception):
    """An action could not be carried out; the message is the recorded reason."""


@dataclass
class Outcome:
    detail: str | None = None
    flow_run_id: UUID | None = None
    flow_run_name: str | None = None
    deployment_id: UUID | None = None


def idempotency_key(automation_id: UUID, firing_id: UUID, index: int) -> str:
    """The run-deployment idempotency key of one action of one firing."""
    return f"automation {automation_id} firing {firing_id} action {index}"


def _events_of(firing: Firing | Resolution) -> list[Event]:
    out: list[Event] = []
    if firing.triggering_event is not None:
        out.append(firing.triggering_event)
    for child in getattr(firing, "child_firings", []):
        out.extend(e for e in _events_of(child) if e not in out)
    return out


def _mentions(value: Any, names: tuple[str, ...]) -> bool:
    if isinstance(value, str):
        return "{" in value and any(n in value for n in names)
    if isinstance(value, dict):
        return any(_mentions(v, names) for v in value.values())
    if isinstance(value, list):
        return any(_mentions(v, names) for v in value)
    return False


class ActionRunner:
    """Runs actions against one database; ``clock`` gives 'now', ``crash_at`` is a test hook."""

    def __init__(
        self,
        database: Database,
        *,
        clock: Callable[[], dt.datetime],
        crash: Callable[[str], None] = lambda point: None,
        template_limits: TemplateLimits | None = None,
        allowed_networks: AllowList | None = None,
        resolve: Resolver = resolve_host,
    ) -> None:
        self.database = database
        self.clock = clock
        self.crash = crash
        if template_limits is None or allowed_networks is None:
            settings = get_settings()
        if allowed_networks is None:
            allowed_networks = parse_allow_list(settings.webhooks_allowed_networks)
        if template_limits is None:
            template_limits = TemplateLimits(
                timeout=settings.templates_render_timeout,
                max_output=settings.templates_max_output,
            )
        # Templates render in a worker thread within these limits (see templates.arender_value).
        self.template_limits = template_limits
        self.egress = Egress(allowed_networks, resolve)
        self.notifier = Notifier(database, self.egress, template_limits)

    @property
    def allowed_networks(self) -> AllowList:
        return self.egress.allowed_networks

    @allowed_networks.setter
    def allowed_networks(self, value: AllowList) -> None:
        self.egress.allowed_networks = value

    @property
    def resolve(self) -> Resolver:
        return self.egress.resolve

    @resolve.setter
    def resolve(self, value: Resolver) -> None:
        self.egress.resolve = value

    async def close(self) -> None:
        await self.egress.close()

    async def run(
        self, automation: Automation, firing: Firing | Resolution, indexes: list[int]
    ) -> None:
        """Run the listed actions of this firing, in order; each failure is recorded, not raised."""
        actions = (
            automation.actions_on_resolve
            if isinstance(firing, Resolution)
            else automation.firing_actions()
        )
        for index in indexes:
            if index < len(actions):
                await self.run_one(automation, firing, index, actions[index])

    async def run_one(
        self, automation: Automation, firing: Firing | Resolution, index: int, action: Action
    ) -> None:
        try:
            if isinstance(action, CallWebhook | SendNotification):
                await self._external(automation, firing, index, action)
            else:
                await self._in_transaction(automation, firing, index, action)
        except Exception:  # the engine must go on; the row stays pending and is retried at start
            _log.exception("action %d of automation %s failed to run", index, automation.id)

    async def resume(self, pending: store.PendingAction) -> None:
        """Finish an action a stopped process left: run it if pending, fail it if a webhook was sent."""
        async with self.database.read() as session:
            automation = await automation_storage.read_automation(session, pending.automation_id)
            firing = await store.read_firing(session, pending.automation_id, pending.firing_id)
        if automation is None or firing is None:
            return
        action = _ACTION.validate_python(pending.action)
        if pending.status == "running":
            reason = "interrupted by a server restart; not retried (it may or may not have run)"
            async with self.database.write() as session:
                await self._finish(session, automation, firing, pending.action_index, action,
                                   ActionFailed(reason))  # fmt: skip
            return
        await self.run_one(automation, firing, pending.action_index, action)

    # -- the two execution paths --------------------------------------------------------------

    async def execute_in(
        self,
        session: AsyncSession,
        automation: Automation,
        firing: Firing | Resolution,
        index: int,
        action: Action,
    ) -> Outcome | ActionFailed:
        """Run a database action in ``session`` (a savepoint of it); the outcome, never raising for
        the action's own failure."""
        if isinstance(action, DoNothing):
            return Outcome(detail="did nothing")  # touches nothing: no savepoint round trips
        try:
            async with session.begin_nested():
                return await self._execute(session, automation, firing, index, action)
        except ActionFailed as exc:
            return exc
        except (StorageError, TemplateError, ValueError) as exc:
            return ActionFailed(str(exc))

    def outcome_event(
        self,
        automation: Automation,
        firing: Firing | Resolution,
        index: int,
        action: Action,
        result: Outcome | ActionFailed,
    ) -> Event:
        """``tideflow.automation.action.executed`` or ``.failed`` for an outcome."""
        failed = isinstance(result, ActionFailed)
        outcome = Outcome(detail=str(result)) if isinstance(result, ActionFailed) else result
        if failed:
            _log.warning("automation %r action %d (%s) failed: %s", automation.name, index,
                         action.type, outcome.detail)  # fmt: skip
        return action_event(
            automation, firing, index, action.type, "failed" if failed else "executed",
            self.clock(), detail=outcome.detail, flow_run_id=outcome.flow_run_id,
            flow_run_name=outcome.flow_run_name, deployment_id=outcome.deployment_id,
        )  # fmt: skip

    async def _in_transaction(
        self, automation: Automation, firing: Firing | Resolution, index: int, action: Action
    ) -> None:
        async with self.database.write() as session:
            if not await store.claim_action(session, automation.id, firing.id, index, self.clock()):
                return
            result = await self.execute_in(session, automation, firing, index, action)
            self.crash("before-action-commit")
            await self._finish(session, automation, firing, index, action, result)

    async def _external(
        self,
        automation: Automation,
        firing: Firing | Resolution,
        index: int,
        action: CallWebhook | SendNotification,
    ) -> None:
        async with self.database.write() as session:
            if not await store.claim_action(session, automation.id, firing.id, index, self.clock()):
                return
        result: Outcome | ActionFailed
        try:
            if isinstance(action, SendNotification):
                result = await self._send_notification(automation, firing, action)
            else:
                result = await self._call_webhook(automation, firing, action)
        except ActionFailed as exc:
            result = exc
        async with self.database.write() as session:
            await self._finish(session, automation, firing, index, action, result)

    async def _finish(
        self,
        session: AsyncSession,
        automation: Automation,
        firing: Firing | Resolution,
        index: int,
        action: Action,
        result: Outcome | ActionFailed,
    ) -> None:
        failed = isinstance(result, ActionFailed)
        outcome = Outcome(detail=str(result)) if isinstance(result, ActionFailed) else result
        await store.finish_action(
            session, automation.id, firing.id, index,
            status="failed" if failed else "executed", detail=outcome.detail,
            flow_run_id=outcome.flow_run_id, now=self.clock(),
        )  # fmt: skip
        await insert_events(
            session, [self.outcome_event(automation, firing, index, action, result)]
        )

    # -- what each action does ----------------------------------------------------------------

    async def _context(
        self, session: AsyncSession | None, automation: Automation, firing: Firing | Resolution,
        values: Any,
    ) -> dict[str, Any]:  # fmt: skip
        now = self.clock()
        variables: dict[str, Any] = {}
        if _mentions(values, ("variables",)):
            if session is None:
                async with self.database.read() as reader:
                    variables = await read_template_variables(reader, values)
            else:
                variables = await read_template_variables(session, values)
        context = base_context(
            automation.model_dump(mode="json"), _as_firing(firing), _events_of(firing), now,
            variables,
        )  # fmt: skip
        if session is None or not _mentions(values, ("flow_run", "flow", "deployment")):
            return context
        run_id = find_resource_id(firing.triggering_event, "flow-run")
        run = await read_flow_run(session, run_id) if run_id else None
        if run is not None:
            context["flow_run"] = run.model_dump(mode="json")
            flow = await read_flow(session, run.flow_id)
            context["flow"] = flow.model_dump(mode="json") if flow else None
        deployment_id = (run.deployment_id if run else None) or find_resource_id(
            firing.triggering_event, "deployment"
        )
        deployment = await read_deployment(session, deployment_id) if deployment_id else None
        context["deployment"] = deployment.model_dump(mode="json") if deployment else None
        return context

    async def _render(self, value: Any, context: dict[str, Any], where: str) -> Any:
        return await arender_value(value, context, where=where, limits=self.template_limits)

    async def _execute(
        self,
        session: AsyncSession,
        automation: Automation,
        firing: Firing | Resolution,
        index: int,
        action: Action,
    ) -> Outcome:
        event = firing.triggering_event
        if isinstance(action, RunDeployment):
            return await self._run_deployment(session, automation, firing, index, action)
        if isinstance(action, PauseDeployment):  # ResumeDeployment derives from it
            target = action.deployment_id or find_resource_id(event, "deployment")
            if target is None:
                raise ActionFailed("no deployment: the triggering event names none")
            pause = not isinstance(action, ResumeDeployment)
            deployment, _ = await set_deployment_paused(session, target, pause)
            await sync_owned_automations(session, deployment)
            return Outcome(detail=f"{'paused' if pause else 'resumed'} deployment {target}",
                           deployment_id=target)  # fmt: skip
        if isinstance(action, PauseAutomation):  # ResumeAutomation derives from it
            target = action.automation_id or automation.id
            enable = isinstance(action, ResumeAutomation)
            await automation_storage.set_automation_enabled(session, target, enable)
            return Outcome(detail=f"{'resumed' if enable else 'paused'} automation {target}")
        if isinstance(action, CancelFlowRun | SuspendFlowRun | ChangeFlowRunState):
            return await self._change_run(session, automation, firing, action)
        if isinstance(action, DoNothing):
            return Outcome(detail="did nothing")
        raise ActionFailed(f"action type {action.type!r} cannot run in a transaction")

    async def _run_deployment(
        self,
        session: AsyncSession,
        automation: Automation,
        firing: Firing | Resolution,
        index: int,
        action: RunDeployment,
    ) -> Outcome:
        event = firing.triggering_event
        target = action.deployment_id or find_resource_id(event, "deployment")
        if target is None:
            raise ActionFailed("no deployment to run: the triggering event names none")
        values = {"parameters": action.parameters, "job_variables": action.job_variables}
        context = await self._context(session, automation, firing, values)
        parameters = (
            await self._render(action.parameters, context, "parameters")
            if action.parameters is not None
            else {}
        )
        job_variables = (
            await self._render(action.job_variables, context, "job_variables")
            if action.job_variables is not None
            else {}
        )
        if not isinstance(parameters, dict) or not isinstance(job_variables, dict):
            raise ActionFailed("parameters and job_variables must render to JSON objects")
        body = DeploymentFlowRunCreate(
            parameters=parameters,
            job_variables=job_variables,
            scheduled_time=self.clock() + dt.timedelta(seconds=action.schedule_after),
            idempotency_key=idempotency_key(automation.id, firing.id, index),
            created_by=Creator(
                type="automation", id=f"tideflow.automation.{automation.id}", name=automation.name
            ),
        )
        run, created = await create_deployment_flow_run(
            session, target, body, triggering_event_id=event.id if event is not None else None
        )
        verb = "created" if created else "found existing"
        return Outcome(
            detail=f"{verb} flow run {run.name} ({run.id})",
            flow_run_id=run.id,
            flow_run_name=run.name,
            deployment_id=target,
        )

    async def _change_run(
        self,
        session: AsyncSession,
        automation: Automation,
        firing: Firing | Resolution,
        action: CancelFlowRun | SuspendFlowRun | ChangeFlowRunState,
    ) -> Outcome:
        run_id = find_resource_id(firing.triggering_event, "flow-run")
        run = await read_flow_run(session, run_id) if run_id else None
        if run is None:
            raise ActionFailed("no flow run: the triggering event is not about an existing run")
        why = f"by automation {automation.name!r}"
        state: State
        if isinstance(action, CancelFlowRun):
            state = (
                Cancelling(f"cancelled {why}")
                if run.deployment_id
                else Cancelled(f"cancelled {why}")
            )
        elif isinstance(action, SuspendFlowRun):
            state = Paused(f"suspended {why}", name="Suspended")
        else:
            context = await self._context(session, automation, firing, action.message)
            message = (
                await self._render(action.message, context, "message")
                if action.message is not None
                else f"set {why}"
            )
            state = State(type=action.state, name=action.name or "", message=str(message))
        decision, after = await set_flow_run_state(session, run.id, StateProposal(state=state))
        if decision.status is SetStateStatus.REJECT:
            raise ActionFailed(
                f"flow run {run.name} ({run.id}) refused {state.name}: {decision.reason}"
            )
        return Outcome(
            detail=f"flow run {run.name} ({run.id}) is now {after.state_name}",
            flow_run_id=run.id,
            flow_run_name=run.name,
        )

    async def _call_webhook(
        self, automation: Automation, firing: Firing | Resolution, action: CallWebhook
    ) -> Outcome:
        import httpx  # loaded on the first outgoing request, not at server start

        try:
            templated = [action.headers, action.body]
            context = await self._context(None, automation, firing, templated)
            headers = await self._render(action.headers, context, "headers")
            body = await self._render(action.body, context, "body")
        except TemplateError as exc:
            raise ActionFailed(str(exc)) from None
        kwargs: dict[str, Any] = {"headers": {k: str(v) for k, v in headers.items()}}
        if isinstance(body, str):
            kwargs["content"] = body
        elif body is not None:
            kwargs["json"] = body
        url = action.url
        try:
            url, response = await self.egress.request(action.method, url, kwargs, action.timeout)
        except EgressRefused as exc:
            raise ActionFailed(str(exc)) from None
        except httpx.HTTPError as exc:
            raise ActionFailed(
                f"{action.method} {url} failed: {type(exc).__name__}: {exc}"
            ) from None
        if response.status_code >= 400:
            raise ActionFailed(f"{action.method} {url} answered HTTP {response.status_code}")
        return Outcome(detail=f"{action.method} {url} answered HTTP {response.status_code}")

    async def _send_notification(
        self, automation: Automation, firing: Firing | Resolution, action: SendNotification
    ) -> Outcome:
        try:
            async with self.database.read() as session:
                context = await self._context(session, automation, firing,
                                              [action.subject, action.body])  # fmt: skip
            subject = await self._render(action.subject, context, "subject")
            body = await self._render(action.body, context, "body")
        except TemplateError as exc:
            raise ActionFailed(str(exc)) from None
        try:
            detail = await self.notifier.send(action.destination, str(subject), str(body))
        except NotifyFailed as exc:
            raise ActionFailed(str(exc)) from None
        return Outcome(detail=detail)


def _as_firing(firing: Firing | Resolution) -> Firing:
    """base_context takes a Firing; a resolution carries the same fields."""
    if isinstance(firing, Firing):
        return firing
    return Firing(
        id=firing.id, trigger_id=firing.trigger_id, bucket_key=firing.bucket_key,
        labels=firing.labels, posture="Proactive", occurred=firing.occurred,
        fired_at=firing.fired_at, triggering_event=firing.triggering_event,
        event_ids=firing.event_ids,
    )  # fmt: skip


def runs_in_transaction(action: Action) -> bool:
    """True for actions that only touch the database (everything but webhooks and notifications)."""
    return not isinstance(action, CallWebhook | SendNotification)
