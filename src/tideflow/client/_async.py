"""AsyncClient: the asyncio client over the shared call descriptions in ``_calls``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar
from uuid import UUID

import httpx

from tideflow.client import _calls as c
from tideflow.client._auth import auth_headers
from tideflow.client._local import resolve_api_url
from tideflow.exceptions import ServerUnreachable
from tideflow.schemas import (
    Flow,
    FlowFilter,
    FlowRun,
    FlowRunCreate,
    FlowRunFilter,
    FlowRunUpdate,
    Log,
    LogCreate,
    LogFilter,
    OrchestrationResult,
    State,
)
from tideflow.settings import Settings, get_settings

if TYPE_CHECKING:  # annotations only: these schema modules load when their calls are made
    from tideflow.schemas.artifacts import Artifact, ArtifactCreate, ArtifactFilter, ArtifactUpdate
    from tideflow.schemas.assets import AssetFilter, AssetLineage, AssetRecord
    from tideflow.schemas.automations import Automation, AutomationFilter, FiringRecord
    from tideflow.schemas.concurrency import ConcurrencyLimit, SlotAnswer
    from tideflow.schemas.deployments import (
        Deployment,
        DeploymentCreate,
        DeploymentFilter,
        DeploymentFlowRunCreate,
        DeploymentUpdate,
    )
    from tideflow.schemas.events import Event, EventFilter, EventPage, ReceivedEvent
    from tideflow.schemas.global_concurrency import (
        GlobalConcurrencyLimit,
        GlobalConcurrencyLimitCreate,
        GlobalConcurrencyLimitUpdate,
        LeaseAnswer,
        SlotRequest,
    )
    from tideflow.schemas.notifications import (
        NotificationDestination,
        NotificationDestinationCreate,
        NotificationDestinationFilter,
        NotificationMessage,
        NotificationResult,
    )
    from tideflow.schemas.run_inputs import FlowRunInput, FlowRunInputFilter
    from tideflow.schemas.schedules import (
        DeploymentSchedule,
        DeploymentScheduleCreate,
        DeploymentScheduleUpdate,
    )
    from tideflow.schemas.secrets import SecretCreate, SecretFilter, SecretInfo, SecretValue
    from tideflow.schemas.task_runs import (
        TaskRun,
        TaskRunFilter,
        TaskRunReport,
        TaskRunReportResult,
    )
    from tideflow.schemas.task_workers import TaskRunCreate
    from tideflow.schemas.variables import Variable, VariableCreate, VariableFilter, VariableUpdate

__all__ = ["AsyncClient", "get_async_client"]

T = TypeVar("T")


class AsyncClient:
    """Asyncio API client. ``AsyncClient()`` finds (or starts) the server from settings."""

    def __init__(
        self,
        api_url: str | None = None,
        *,
        settings: Settings | None = None,
        timeout: float | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        settings = settings or get_settings()
        self.api_url = (api_url or resolve_api_url(settings)).rstrip("/")
        self._http = httpx.AsyncClient(
            base_url=self.api_url,
            timeout=timeout or settings.client_timeout,
            transport=transport,
            headers={**c.CLIENT_HEADERS, **auth_headers(settings)},
            # A plain-HTTP API (the local server) never speaks TLS, so skip loading the CA bundle
            # (~25 ms per client); an https API is verified as usual.
            verify=not self.api_url.lower().startswith("http://"),
        )

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def send(self, call: c.Call[T]) -> T:
        try:
            response = await self._http.request(
                call.method, call.path, json=call.json, params=call.params
            )
        except httpx.TransportError as exc:
            raise ServerUnreachable(self.api_url, type(exc).__name__) from None
        c.raise_for_status(response)
        return call.parse(response)

    async def health(self) -> Any:
        return await self.send(c.health())

    async def version(self) -> Any:
        return await self.send(c.version())

    async def create_flow(self, name: str, tags: list[str] | None = None) -> Flow:
        return await self.send(c.create_flow(name, tags))

    async def read_flow(self, flow_id: UUID) -> Flow:
        return await self.send(c.read_flow(flow_id))

    async def read_flow_by_name(self, name: str) -> Flow:
        return await self.send(c.read_flow_by_name(name))

    async def read_flows(self, flt: FlowFilter | None = None) -> list[Flow]:
        return await self.send(c.read_flows(flt))

    async def create_flow_run(self, body: FlowRunCreate) -> FlowRun:
        return await self.send(c.create_flow_run(body))

    async def read_flow_run(self, run_id: UUID) -> FlowRun:
        return await self.send(c.read_flow_run(run_id))

    async def read_flow_runs(self, flt: FlowRunFilter | None = None) -> list[FlowRun]:
        return await self.send(c.read_flow_runs(flt))

    async def count_flow_runs(self, flt: FlowRunFilter | None = None) -> int:
        return await self.send(c.count_flow_runs(flt))

    async def read_flow_run_states(self, run_id: UUID) -> list[State]:
        return await self.send(c.read_flow_run_states(run_id))

    async def set_flow_run_state(
        self, run_id: UUID, state: State, force: bool = False, expected_state_id: UUID | None = None
    ) -> OrchestrationResult:
        return await self.send(c.set_flow_run_state(run_id, state, force, expected_state_id))

    async def update_flow_run(self, run_id: UUID, body: FlowRunUpdate) -> FlowRun:
        """Rename a flow run."""
        return await self.send(c.update_flow_run(run_id, body))

    async def delete_flow_run(self, run_id: UUID) -> None:
        return await self.send(c.delete_flow_run(run_id))

    # --- flow run inputs -------------------------------------------------------------------------
    async def create_flow_run_input(
        self, run_id: UUID, key: str, value: Any, sender: str | None = None
    ) -> FlowRunInput:
        return await self.send(c.create_flow_run_input(run_id, key, value, sender))

    async def read_flow_run_input(self, run_id: UUID, key: str) -> FlowRunInput:
        return await self.send(c.read_flow_run_input(run_id, key))

    async def filter_flow_run_inputs(
        self, run_id: UUID, flt: FlowRunInputFilter
    ) -> list[FlowRunInput]:
        return await self.send(c.filter_flow_run_inputs(run_id, flt))

    async def ack_flow_run_input(self, run_id: UUID, key: str) -> FlowRunInput:
        return await self.send(c.ack_flow_run_input(run_id, key))

    async def delete_flow_run_input(self, run_id: UUID, key: str) -> None:
        return await self.send(c.delete_flow_run_input(run_id, key))

    async def resume_flow_run(
        self, run_id: UUID, run_input: dict[str, Any] | None = None
    ) -> FlowRun:
        """Resume a paused or suspended run with the input it waits for."""
        return await self.send(c.resume_flow_run(run_id, run_input))

    async def create_logs(self, logs: list[LogCreate]) -> None:
        return await self.send(c.create_logs(logs))

    async def read_logs(self, flt: LogFilter) -> list[Log]:
        return await self.send(c.read_logs(flt))

    async def report_task_runs(
        self, reports: Sequence[TaskRunReport | dict[str, Any]]
    ) -> TaskRunReportResult:
        return await self.send(c.report_task_runs(reports))

    async def create_task_run(self, body: TaskRunCreate) -> TaskRun:
        return await self.send(c.create_task_run(body))

    async def read_task_run(self, task_run_id: UUID) -> TaskRun:
        return await self.send(c.read_task_run(task_run_id))

    async def cancel_task_run(self, task_run_id: UUID) -> TaskRun:
        return await self.send(c.cancel_task_run(task_run_id))

    async def read_task_runs(self, flt: TaskRunFilter | None = None) -> list[TaskRun]:
        return await self.send(c.read_task_runs(flt))

    async def count_task_runs(self, flt: TaskRunFilter | None = None) -> int:
        return await self.send(c.count_task_runs(flt))

    async def upsert_concurrency_limit(self, tag: str, limit: int) -> ConcurrencyLimit:
        return await self.send(c.upsert_concurrency_limit(tag, limit))

    async def read_concurrency_limits(self) -> list[ConcurrencyLimit]:
        return await self.send(c.read_concurrency_limits())

    async def read_concurrency_limit(self, tag: str) -> ConcurrencyLimit:
        return await self.send(c.read_concurrency_limit(tag))

    async def delete_concurrency_limit(self, tag: str) -> None:
        return await self.send(c.delete_concurrency_limit(tag))

    async def reset_concurrency_limit(self, tag: str) -> ConcurrencyLimit:
        return await self.send(c.reset_concurrency_limit(tag))

    async def acquire_concurrency_slots(
        self, tags: list[str], holder: UUID, lease_seconds: float = 60.0
    ) -> SlotAnswer:
        return await self.send(c.acquire_concurrency_slots(tags, holder, lease_seconds))

    async def renew_concurrency_slots(self, holder: UUID, lease_seconds: float = 60.0) -> Any:
        return await self.send(c.renew_concurrency_slots(holder, lease_seconds))

    async def release_concurrency_slots(self, holder: UUID) -> Any:
        return await self.send(c.release_concurrency_slots(holder))

    # --- deployments ---------------------------------------------------------------------------
    async def create_variable(self, body: VariableCreate) -> Variable:
        return await self.send(c.create_variable(body))

    async def read_variable_by_name(self, name: str) -> Variable:
        return await self.send(c.read_variable_by_name(name))

    async def read_variables(self, flt: VariableFilter | None = None) -> list[Variable]:
        return await self.send(c.read_variables(flt))

    async def update_variable(self, name: str, body: VariableUpdate) -> Variable:
        return await self.send(c.update_variable(name, body))

    async def delete_variable_by_name(self, name: str) -> None:
        return await self.send(c.delete_variable_by_name(name))

    async def set_secret(self, body: SecretCreate) -> SecretInfo:
        return await self.send(c.set_secret(body))

    async def read_secret(self, name: str) -> SecretInfo:
        return await self.send(c.read_secret(name))

    async def read_secret_value(self, name: str) -> SecretValue:
        return await self.send(c.read_secret_value(name))

    async def read_secrets(self, flt: SecretFilter | None = None) -> list[SecretInfo]:
        return await self.send(c.read_secrets(flt))

    async def delete_secret(self, name: str) -> None:
        return await self.send(c.delete_secret(name))

    async def create_notification_destination(
        self, body: NotificationDestinationCreate
    ) -> NotificationDestination:
        return await self.send(c.create_notification_destination(body))

    async def read_notification_destination(self, name: str) -> NotificationDestination:
        return await self.send(c.read_notification_destination(name))

    async def read_notification_destinations(
        self, flt: NotificationDestinationFilter | None = None
    ) -> list[NotificationDestination]:
        return await self.send(c.read_notification_destinations(flt))

    async def delete_notification_destination(self, name: str) -> None:
        return await self.send(c.delete_notification_destination(name))

    async def test_notification_destination(self, name: str) -> NotificationResult:
        return await self.send(c.test_notification_destination(name))

    async def send_notification(
        self, name: str, message: NotificationMessage
    ) -> NotificationResult:
        return await self.send(c.send_notification(name, message))

    async def create_artifact(self, body: ArtifactCreate) -> Artifact:
        return await self.send(c.create_artifact(body))

    async def read_artifact(self, artifact_id: UUID) -> Artifact:
        return await self.send(c.read_artifact(artifact_id))

    async def read_latest_artifact(self, key: str) -> Artifact:
        return await self.send(c.read_latest_artifact(key))

    async def read_artifacts(self, flt: ArtifactFilter | None = None) -> list[Artifact]:
        return await self.send(c.read_artifacts(flt))

    async def update_artifact(self, artifact_id: UUID, body: ArtifactUpdate) -> Artifact:
        return await self.send(c.update_artifact(artifact_id, body))

    async def delete_artifact(self, artifact_id: UUID) -> None:
        return await self.send(c.delete_artifact(artifact_id))

    async def delete_artifacts_by_key(self, key: str) -> Any:
        return await self.send(c.delete_artifacts_by_key(key))

    async def read_assets(self, flt: AssetFilter | None = None) -> list[AssetRecord]:
        return await self.send(c.read_assets(flt))

    async def read_asset(self, key: str) -> AssetRecord:
        return await self.send(c.read_asset(key))

    async def read_asset_materializations(self, key: str, limit: int = 50) -> list[ReceivedEvent]:
        return await self.send(c.read_asset_materializations(key, limit))

    async def read_asset_lineage(self, key: str | None = None, depth: int = 3) -> AssetLineage:
        return await self.send(c.read_asset_lineage(key, depth))

    async def delete_asset(self, key: str) -> None:
        return await self.send(c.delete_asset(key))

    async def create_global_concurrency_limit(
        self, body: GlobalConcurrencyLimitCreate
    ) -> GlobalConcurrencyLimit:
        return await self.send(c.create_global_concurrency_limit(body))

    async def read_global_concurrency_limits(self) -> list[GlobalConcurrencyLimit]:
        return await self.send(c.read_global_concurrency_limits())

    async def read_global_concurrency_limit(self, name: str) -> GlobalConcurrencyLimit:
        return await self.send(c.read_global_concurrency_limit(name))

    async def update_global_concurrency_limit(
        self, name: str, body: GlobalConcurrencyLimitUpdate
    ) -> GlobalConcurrencyLimit:
        return await self.send(c.update_global_concurrency_limit(name, body))

    async def delete_global_concurrency_limit(self, name: str) -> None:
        return await self.send(c.delete_global_concurrency_limit(name))

    async def reset_global_concurrency_limit(self, name: str) -> GlobalConcurrencyLimit:
        return await self.send(c.reset_global_concurrency_limit(name))

    async def acquire_global_slots(self, body: SlotRequest) -> LeaseAnswer:
        return await self.send(c.acquire_global_slots(body))

    async def renew_global_lease(self, lease_id: UUID, lease_seconds: float = 30.0) -> Any:
        return await self.send(c.renew_global_lease(lease_id, lease_seconds))

    async def release_global_lease(self, lease_id: UUID) -> Any:
        return await self.send(c.release_global_lease(lease_id))

    async def create_deployment(self, body: DeploymentCreate) -> Deployment:
        return await self.send(c.create_deployment(body))

    async def read_deployment(self, deployment_id: UUID) -> Deployment:
        return await self.send(c.read_deployment(deployment_id))

    async def read_deployment_by_name(self, full_name: str) -> Deployment:
        return await self.send(c.read_deployment_by_name(full_name))

    async def read_deployments(self, flt: DeploymentFilter | None = None) -> list[Deployment]:
        return await self.send(c.read_deployments(flt))

    async def update_deployment(self, deployment_id: UUID, body: DeploymentUpdate) -> Deployment:
        return await self.send(c.update_deployment(deployment_id, body))

    async def delete_deployment(self, deployment_id: UUID) -> None:
        return await self.send(c.delete_deployment(deployment_id))

    async def pause_deployment(self, deployment_id: UUID) -> Deployment:
        return await self.send(c.pause_deployment(deployment_id))

    async def resume_deployment(self, deployment_id: UUID) -> Deployment:
        return await self.send(c.resume_deployment(deployment_id))

    async def create_flow_run_from_deployment(
        self, deployment_id: UUID, body: DeploymentFlowRunCreate | None = None
    ) -> FlowRun:
        return await self.send(c.create_flow_run_from_deployment(deployment_id, body))

    async def read_deployment_schedules(self, deployment_id: UUID) -> list[DeploymentSchedule]:
        return await self.send(c.read_deployment_schedules(deployment_id))

    async def create_deployment_schedules(
        self, deployment_id: UUID, schedules: list[DeploymentScheduleCreate]
    ) -> list[DeploymentSchedule]:
        return await self.send(c.create_deployment_schedules(deployment_id, schedules))

    async def update_deployment_schedule(
        self, deployment_id: UUID, schedule_id: UUID, body: DeploymentScheduleUpdate
    ) -> DeploymentSchedule:
        return await self.send(c.update_deployment_schedule(deployment_id, schedule_id, body))

    async def delete_deployment_schedule(self, deployment_id: UUID, schedule_id: UUID) -> None:
        return await self.send(c.delete_deployment_schedule(deployment_id, schedule_id))

    async def get_scheduled_flow_runs(
        self,
        deployment_ids: list[UUID],
        scheduled_before: dt.datetime | None = None,
        limit: int = 100,
    ) -> list[FlowRun]:
        return await self.send(c.get_scheduled_flow_runs(deployment_ids, scheduled_before, limit))

    # --- events -----------------------------------------------------------------------------------
    async def emit_events(self, events: list[Event]) -> dict[str, Any]:
        return await self.send(c.emit_events(events))

    async def read_events(self, flt: EventFilter | None = None) -> EventPage:
        return await self.send(c.read_events(flt))

    async def count_events(self, by: str, flt: EventFilter | None = None) -> list[dict[str, Any]]:
        return await self.send(c.count_events(by, flt))

    async def read_event(self, event_id: UUID) -> ReceivedEvent:
        return await self.send(c.read_event(event_id))

    # --- automations ---
    async def create_automation(self, data: dict[str, Any]) -> Automation:
        return await self.send(c.create_automation(data))

    async def read_automation(self, automation_id: UUID) -> Automation:
        return await self.send(c.read_automation(automation_id))

    async def read_automation_by_name(self, name: str) -> Automation:
        return await self.send(c.read_automation_by_name(name))

    async def read_automations(self, flt: AutomationFilter | None = None) -> list[Automation]:
        return await self.send(c.read_automations(flt))

    async def update_automation(self, automation_id: UUID, data: dict[str, Any]) -> Automation:
        return await self.send(c.update_automation(automation_id, data))

    async def delete_automation(self, automation_id: UUID) -> None:
        return await self.send(c.delete_automation(automation_id))

    async def pause_automation(self, automation_id: UUID) -> Automation:
        return await self.send(c.pause_automation(automation_id))

    async def resume_automation(self, automation_id: UUID) -> Automation:
        return await self.send(c.resume_automation(automation_id))

    async def explain_automation(self, automation_id: UUID, event_id: UUID) -> dict[str, Any]:
        return await self.send(c.explain_automation(automation_id, event_id))

    async def replay_automation(
        self,
        automation_id: UUID | None,
        since: dt.datetime,
        until: dt.datetime | None = None,
        automation: dict[str, Any] | None = None,
        *,
        backfill: bool = False,
    ) -> dict[str, Any]:
        """Dry-run a stored automation (or an unsaved ``automation``, id None) over the stored
        events of ``[since, until]``: what it would have fired, with rendered action templates.
        ``backfill``: also record the firings never recorded and run their actions."""
        return await self.send(
            c.replay_automation(automation_id, since, until, automation, backfill=backfill)
        )

    async def automation_history(self, automation_id: UUID, limit: int = 20) -> list[FiringRecord]:
        return await self.send(c.automation_history(automation_id, limit))


def get_async_client(**kwargs: Any) -> AsyncClient:
    """A new AsyncClient for the configured server (starting the local one if needed)."""
    return AsyncClient(**kwargs)
