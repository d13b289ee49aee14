"""SyncClient: the blocking client over the shared call descriptions in ``_calls``."""

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

__all__ = ["SyncClient", "get_client"]

T = TypeVar("T")


class SyncClient:
    """Blocking API client. ``SyncClient()`` finds (or starts) the server from settings."""

    def __init__(
        self,
        api_url: str | None = None,
        *,
        settings: Settings | None = None,
        timeout: float | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        settings = settings or get_settings()
        self.api_url = (api_url or resolve_api_url(settings)).rstrip("/")
        self._http = httpx.Client(
            base_url=self.api_url,
            timeout=timeout or settings.client_timeout,
            transport=transport,
            headers={**c.CLIENT_HEADERS, **auth_headers(settings)},
            # A plain-HTTP API (the local server) never speaks TLS, so skip loading the CA bundle
            # (~25 ms per client); an https API is verified as usual.
            verify=not self.api_url.lower().startswith("http://"),
        )

    def __enter__(self) -> SyncClient:
        return self

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def send(self, call: c.Call[T]) -> T:
        try:
            response = self._http.request(
                call.method, call.path, json=call.json, params=call.params
            )
        except httpx.TransportError as exc:
            raise ServerUnreachable(self.api_url, type(exc).__name__) from None
        c.raise_for_status(response)
        return call.parse(response)

    def health(self) -> Any:
        return self.send(c.health())

    def version(self) -> Any:
        return self.send(c.version())

    def create_flow(self, name: str, tags: list[str] | None = None) -> Flow:
        return self.send(c.create_flow(name, tags))

    def read_flow(self, flow_id: UUID) -> Flow:
        return self.send(c.read_flow(flow_id))

    def read_flow_by_name(self, name: str) -> Flow:
        return self.send(c.read_flow_by_name(name))

    def read_flows(self, flt: FlowFilter | None = None) -> list[Flow]:
        return self.send(c.read_flows(flt))

    def create_flow_run(self, body: FlowRunCreate) -> FlowRun:
        return self.send(c.create_flow_run(body))

    def read_flow_run(self, run_id: UUID) -> FlowRun:
        return self.send(c.read_flow_run(run_id))

    def read_flow_runs(self, flt: FlowRunFilter | None = None) -> list[FlowRun]:
        return self.send(c.read_flow_runs(flt))

    def count_flow_runs(self, flt: FlowRunFilter | None = None) -> int:
        return self.send(c.count_flow_runs(flt))

    def read_flow_run_states(self, run_id: UUID) -> list[State]:
        return self.send(c.read_flow_run_states(run_id))

    def set_flow_run_state(
        self, run_id: UUID, state: State, force: bool = False, expected_state_id: UUID | None = None
    ) -> OrchestrationResult:
        return self.send(c.set_flow_run_state(run_id, state, force, expected_state_id))

    def update_flow_run(self, run_id: UUID, body: FlowRunUpdate) -> FlowRun:
        """Rename a flow run."""
        return self.send(c.update_flow_run(run_id, body))

    def delete_flow_run(self, run_id: UUID) -> None:
        return self.send(c.delete_flow_run(run_id))

    # --- flow run inputs -------------------------------------------------------------------------
    def create_flow_run_input(
        self, run_id: UUID, key: str, value: Any, sender: str | None = None
    ) -> FlowRunInput:
        return self.send(c.create_flow_run_input(run_id, key, value, sender))

    def read_flow_run_input(self, run_id: UUID, key: str) -> FlowRunInput:
        return self.send(c.read_flow_run_input(run_id, key))

    def filter_flow_run_inputs(self, run_id: UUID, flt: FlowRunInputFilter) -> list[FlowRunInput]:
        return self.send(c.filter_flow_run_inputs(run_id, flt))

    def ack_flow_run_input(self, run_id: UUID, key: str) -> FlowRunInput:
        return self.send(c.ack_flow_run_input(run_id, key))

    def delete_flow_run_input(self, run_id: UUID, key: str) -> None:
        return self.send(c.delete_flow_run_input(run_id, key))

    def resume_flow_run(self, run_id: UUID, run_input: dict[str, Any] | None = None) -> FlowRun:
        """Resume a paused or suspended run with the input it waits for."""
        return self.send(c.resume_flow_run(run_id, run_input))

    def create_logs(self, logs: list[LogCreate]) -> None:
        return self.send(c.create_logs(logs))

    def read_logs(self, flt: LogFilter) -> list[Log]:
        return self.send(c.read_logs(flt))

    def report_task_runs(
        self, reports: Sequence[TaskRunReport | dict[str, Any]]
    ) -> TaskRunReportResult:
        return self.send(c.report_task_runs(reports))

    def create_task_run(self, body: TaskRunCreate) -> TaskRun:
        return self.send(c.create_task_run(body))

    def read_task_run(self, task_run_id: UUID) -> TaskRun:
        return self.send(c.read_task_run(task_run_id))

    def cancel_task_run(self, task_run_id: UUID) -> TaskRun:
        return self.send(c.cancel_task_run(task_run_id))

    def read_task_runs(self, flt: TaskRunFilter | None = None) -> list[TaskRun]:
        return self.send(c.read_task_runs(flt))

    def count_task_runs(self, flt: TaskRunFilter | None = None) -> int:
        return self.send(c.count_task_runs(flt))

    def upsert_concurrency_limit(self, tag: str, limit: int) -> ConcurrencyLimit:
        return self.send(c.upsert_concurrency_limit(tag, limit))

    def read_concurrency_limits(self) -> list[ConcurrencyLimit]:
        return self.send(c.read_concurrency_limits())

    def read_concurrency_limit(self, tag: str) -> ConcurrencyLimit:
        return self.send(c.read_concurrency_limit(tag))

    def delete_concurrency_limit(self, tag: str) -> None:
        return self.send(c.delete_concurrency_limit(tag))

    def reset_concurrency_limit(self, tag: str) -> ConcurrencyLimit:
        return self.send(c.reset_concurrency_limit(tag))

    def acquire_concurrency_slots(
        self, tags: list[str], holder: UUID, lease_seconds: float = 60.0
    ) -> SlotAnswer:
        return self.send(c.acquire_concurrency_slots(tags, holder, lease_seconds))

    def renew_concurrency_slots(self, holder: UUID, lease_seconds: float = 60.0) -> Any:
        return self.send(c.renew_concurrency_slots(holder, lease_seconds))

    def release_concurrency_slots(self, holder: UUID) -> Any:
        return self.send(c.release_concurrency_slots(holder))

    # --- deployments ---------------------------------------------------------------------------
    def create_variable(self, body: VariableCreate) -> Variable:
        return self.send(c.create_variable(body))

    def read_variable_by_name(self, name: str) -> Variable:
        return self.send(c.read_variable_by_name(name))

    def read_variables(self, flt: VariableFilter | None = None) -> list[Variable]:
        return self.send(c.read_variables(flt))

    def update_variable(self, name: str, body: VariableUpdate) -> Variable:
        return self.send(c.update_variable(name, body))

    def delete_variable_by_name(self, name: str) -> None:
        return self.send(c.delete_variable_by_name(name))

    def set_secret(self, body: SecretCreate) -> SecretInfo:
        return self.send(c.set_secret(body))

    def read_secret(self, name: str) -> SecretInfo:
        return self.send(c.read_secret(name))

    def read_secret_value(self, name: str) -> SecretValue:
        return self.send(c.read_secret_value(name))

    def read_secrets(self, flt: SecretFilter | None = None) -> list[SecretInfo]:
        return self.send(c.read_secrets(flt))

    def delete_secret(self, name: str) -> None:
        return self.send(c.delete_secret(name))

    def create_notification_destination(
        self, body: NotificationDestinationCreate
    ) -> NotificationDestination:
        return self.send(c.create_notification_destination(body))

    def read_notification_destination(self, name: str) -> NotificationDestination:
        return self.send(c.read_notification_destination(name))

    def read_notification_destinations(
        self, flt: NotificationDestinationFilter | None = None
    ) -> list[NotificationDestination]:
        return self.send(c.read_notification_destinations(flt))

    def delete_notification_destination(self, name: str) -> None:
        return self.send(c.delete_notification_destination(name))

    def test_notification_destination(self, name: str) -> NotificationResult:
        return self.send(c.test_notification_destination(name))

    def send_notification(self, name: str, message: NotificationMessage) -> NotificationResult:
        return self.send(c.send_notification(name, message))

    def create_artifact(self, body: ArtifactCreate) -> Artifact:
        return self.send(c.create_artifact(body))

    def read_artifact(self, artifact_id: UUID) -> Artifact:
        return self.send(c.read_artifact(artifact_id))

    def read_latest_artifact(self, key: str) -> Artifact:
        return self.send(c.read_latest_artifact(key))

    def read_artifacts(self, flt: ArtifactFilter | None = None) -> list[Artifact]:
        return self.send(c.read_artifacts(flt))

    def update_artifact(self, artifact_id: UUID, body: ArtifactUpdate) -> Artifact:
        return self.send(c.update_artifact(artifact_id, body))

    def delete_artifact(self, artifact_id: UUID) -> None:
        return self.send(c.delete_artifact(artifact_id))

    def delete_artifacts_by_key(self, key: str) -> Any:
        return self.send(c.delete_artifacts_by_key(key))

    def read_assets(self, flt: AssetFilter | None = None) -> list[AssetRecord]:
        return self.send(c.read_assets(flt))

    def read_asset(self, key: str) -> AssetRecord:
        return self.send(c.read_asset(key))

    def read_asset_materializations(self, key: str, limit: int = 50) -> list[ReceivedEvent]:
        return self.send(c.read_asset_materializations(key, limit))

    def read_asset_lineage(self, key: str | None = None, depth: int = 3) -> AssetLineage:
        return self.send(c.read_asset_lineage(key, depth))

    def delete_asset(self, key: str) -> None:
        return self.send(c.delete_asset(key))

    def create_global_concurrency_limit(
        self, body: GlobalConcurrencyLimitCreate
    ) -> GlobalConcurrencyLimit:
        return self.send(c.create_global_concurrency_limit(body))

    def read_global_concurrency_limits(self) -> list[GlobalConcurrencyLimit]:
        return self.send(c.read_global_concurrency_limits())

    def read_global_concurrency_limit(self, name: str) -> GlobalConcurrencyLimit:
        return self.send(c.read_global_concurrency_limit(name))

    def update_global_concurrency_limit(
        self, name: str, body: GlobalConcurrencyLimitUpdate
    ) -> GlobalConcurrencyLimit:
        return self.send(c.update_global_concurrency_limit(name, body))

    def delete_global_concurrency_limit(self, name: str) -> None:
        return self.send(c.delete_global_concurrency_limit(name))

    def reset_global_concurrency_limit(self, name: str) -> GlobalConcurrencyLimit:
        return self.send(c.reset_global_concurrency_limit(name))

    def acquire_global_slots(self, body: SlotRequest) -> LeaseAnswer:
        return self.send(c.acquire_global_slots(body))

    def renew_global_lease(self, lease_id: UUID, lease_seconds: float = 30.0) -> Any:
        return self.send(c.renew_global_lease(lease_id, lease_seconds))

    def release_global_lease(self, lease_id: UUID) -> Any:
        return self.send(c.release_global_lease(lease_id))

    def create_deployment(self, body: DeploymentCreate) -> Deployment:
        return self.send(c.create_deployment(body))

    def read_deployment(self, deployment_id: UUID) -> Deployment:
        return self.send(c.read_deployment(deployment_id))

    def read_deployment_by_name(self, full_name: str) -> Deployment:
        return self.send(c.read_deployment_by_name(full_name))

    def read_deployments(self, flt: DeploymentFilter | None = None) -> list[Deployment]:
        return self.send(c.read_deployments(flt))

    def update_deployment(self, deployment_id: UUID, body: DeploymentUpdate) -> Deployment:
        return self.send(c.update_deployment(deployment_id, body))

    def delete_deployment(self, deployment_id: UUID) -> None:
        return self.send(c.delete_deployment(deployment_id))

    def pause_deployment(self, deployment_id: UUID) -> Deployment:
        return self.send(c.pause_deployment(deployment_id))

    def resume_deployment(self, deployment_id: UUID) -> Deployment:
        return self.send(c.resume_deployment(deployment_id))

    def create_flow_run_from_deployment(
        self, deployment_id: UUID, body: DeploymentFlowRunCreate | None = None
    ) -> FlowRun:
        return self.send(c.create_flow_run_from_deployment(deployment_id, body))

    def read_deployment_schedules(self, deployment_id: UUID) -> list[DeploymentSchedule]:
        return self.send(c.read_deployment_schedules(deployment_id))

    def create_deployment_schedules(
        self, deployment_id: UUID, schedules: list[DeploymentScheduleCreate]
    ) -> list[DeploymentSchedule]:
        return self.send(c.create_deployment_schedules(deployment_id, schedules))

    def update_deployment_schedule(
        self, deployment_id: UUID, schedule_id: UUID, body: DeploymentScheduleUpdate
    ) -> DeploymentSchedule:
        return self.send(c.update_deployment_schedule(deployment_id, schedule_id, body))

    def delete_deployment_schedule(self, deployment_id: UUID, schedule_id: UUID) -> None:
        return self.send(c.delete_deployment_schedule(deployment_id, schedule_id))

    def get_scheduled_flow_runs(
        self,
        deployment_ids: list[UUID],
        scheduled_before: dt.datetime | None = None,
        limit: int = 100,
    ) -> list[FlowRun]:
        return self.send(c.get_scheduled_flow_runs(deployment_ids, scheduled_before, limit))

    # --- events -----------------------------------------------------------------------------------
    def emit_events(self, events: list[Event]) -> dict[str, Any]:
        return self.send(c.emit_events(events))

    def read_events(self, flt: EventFilter | None = None) -> EventPage:
        return self.send(c.read_events(flt))

    def count_events(self, by: str, flt: EventFilter | None = None) -> list[dict[str, Any]]:
        return self.send(c.count_events(by, flt))

    def read_event(self, event_id: UUID) -> ReceivedEvent:
        return self.send(c.read_event(event_id))

    # --- automations ---
    def create_automation(self, data: dict[str, Any]) -> Automation:
        return self.send(c.create_automation(data))

    def read_automation(self, automation_id: UUID) -> Automation:
        return self.send(c.read_automation(automation_id))

    def read_automation_by_name(self, name: str) -> Automation:
        return self.send(c.read_automation_by_name(name))

    def read_automations(self, flt: AutomationFilter | None = None) -> list[Automation]:
        return self.send(c.read_automations(flt))

    def update_automation(self, automation_id: UUID, data: dict[str, Any]) -> Automation:
        return self.send(c.update_automation(automation_id, data))

    def delete_automation(self, automation_id: UUID) -> None:
        return self.send(c.delete_automation(automation_id))

    def pause_automation(self, automation_id: UUID) -> Automation:
        return self.send(c.pause_automation(automation_id))

    def resume_automation(self, automation_id: UUID) -> Automation:
        return self.send(c.resume_automation(automation_id))

    def explain_automation(self, automation_id: UUID, event_id: UUID) -> dict[str, Any]:
        return self.send(c.explain_automation(automation_id, event_id))

    def replay_automation(
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
        return self.send(
            c.replay_automation(automation_id, since, until, automation, backfill=backfill)
        )

    def automation_history(self, automation_id: UUID, limit: int = 20) -> list[FiringRecord]:
        return self.send(c.automation_history(automation_id, limit))


def get_client(**kwargs: Any) -> SyncClient:
    """A new SyncClient for the configured server (starting the local one if needed)."""
    return SyncClient(**kwargs)
