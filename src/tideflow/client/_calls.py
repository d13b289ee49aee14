"""Each API call described once, as data: method, path, body and how to read the answer.

``SyncClient`` and ``AsyncClient`` both execute these descriptions, so the wire contract lives in one
place and the two clients cannot drift apart.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar
from urllib.parse import quote
from uuid import UUID

import httpx
from pydantic import BaseModel, TypeAdapter

from tideflow.exceptions import ObjectNotFound, ServerError, TransitionRefused
from tideflow.schemas import (
    Flow,
    FlowCreate,
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
    StateProposal,
)

if TYPE_CHECKING:  # annotations only; see "Lazy schema modules" below
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


T = TypeVar("T")

# Sent on every request: the server refuses a state-changing API request that has neither a JSON
# content type nor this header (a cross-site form cannot set it), e.g. a body-less POST .../pause.
CLIENT_HEADERS = {"X-Tideflow-Client": "python"}


@dataclass(frozen=True)
class Call(Generic[T]):
    method: str
    path: str
    parse: Callable[[httpx.Response], T]
    json: Any = None
    params: dict[str, Any] | None = field(default=None)


@functools.cache
def _adapter(model: Any) -> TypeAdapter[Any]:
    # Built once per response type: a TypeAdapter costs far more than the request it parses.
    return TypeAdapter(model)


def _model(model: type[T]) -> Callable[[httpx.Response], T]:
    adapter = _adapter(model)
    return lambda r: adapter.validate_json(r.content)


def _none(_: httpx.Response) -> None:
    return None


def _json(r: httpx.Response) -> Any:
    return r.json()


def dump(model: BaseModel) -> Any:
    return model.model_dump(mode="json", exclude_unset=False)


def error_detail(response: httpx.Response) -> str:
    """The API's ``detail`` as one readable line."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip() or f"HTTP {response.status_code}"
    detail = body.get("detail") if isinstance(body, dict) else body
    if isinstance(detail, list):  # FastAPI-style list of validation errors
        parts = []
        for err in detail:
            loc = ".".join(str(p) for p in err.get("loc", []) if p != "body")
            parts.append(f"{loc}: {err.get('msg')}" if loc else str(err.get("msg")))
        return "; ".join(parts)
    return str(detail)


def raise_for_status(response: httpx.Response) -> None:
    if response.is_success:
        return
    detail = error_detail(response)
    if response.status_code == 404:
        raise ObjectNotFound(404, detail)
    if response.status_code == 409:
        raise TransitionRefused(409, detail)
    raise ServerError(response.status_code, detail)


# Lazy schema modules: the deployment, schedule, event and automation schemas are imported by the
# calls that use them, not with the client (building those models costs ~40 ms, which every flow
# call's process and every CLI command would otherwise pay; issue 6).


# --- server ---------------------------------------------------------------------------------------
def health() -> Call[Any]:
    return Call("GET", "/health", _json)


def version() -> Call[Any]:
    return Call("GET", "/version", _json)


# --- flows ----------------------------------------------------------------------------------------
def create_flow(name: str, tags: list[str] | None = None) -> Call[Flow]:
    return Call("POST", "/flows/", _model(Flow), dump(FlowCreate(name=name, tags=tags or [])))


def read_flow(flow_id: UUID) -> Call[Flow]:
    return Call("GET", f"/flows/{flow_id}", _model(Flow))


def read_flow_by_name(name: str) -> Call[Flow]:
    return Call("GET", f"/flows/name/{name}", _model(Flow))


def read_flows(flt: FlowFilter | None = None) -> Call[list[Flow]]:
    return Call("POST", "/flows/filter", _model(list[Flow]), dump(flt or FlowFilter()))


# --- flow runs ------------------------------------------------------------------------------------
def create_flow_run(body: FlowRunCreate) -> Call[FlowRun]:
    return Call("POST", "/flow_runs/", _model(FlowRun), dump(body))


def read_flow_run(run_id: UUID) -> Call[FlowRun]:
    return Call("GET", f"/flow_runs/{run_id}", _model(FlowRun))


def read_flow_runs(flt: FlowRunFilter | None = None) -> Call[list[FlowRun]]:
    return Call("POST", "/flow_runs/filter", _model(list[FlowRun]), dump(flt or FlowRunFilter()))


def count_flow_runs(flt: FlowRunFilter | None = None) -> Call[int]:
    return Call("POST", "/flow_runs/count", _model(int), dump(flt or FlowRunFilter()))


def read_flow_run_states(run_id: UUID) -> Call[list[State]]:
    return Call("GET", f"/flow_runs/{run_id}/states", _model(list[State]))


def set_flow_run_state(
    run_id: UUID, state: State, force: bool = False, expected_state_id: UUID | None = None
) -> Call[OrchestrationResult]:
    body = dump(StateProposal(state=state, force=force, expected_state_id=expected_state_id))
    return Call("POST", f"/flow_runs/{run_id}/set_state", _model(OrchestrationResult), body)


def update_flow_run(run_id: UUID, body: FlowRunUpdate) -> Call[FlowRun]:
    return Call("PATCH", f"/flow_runs/{run_id}", _model(FlowRun), dump(body))


def delete_flow_run(run_id: UUID) -> Call[None]:
    return Call("DELETE", f"/flow_runs/{run_id}", _none)


# --- flow run inputs ------------------------------------------------------------------------------
def _input_path(run_id: UUID, key: str) -> str:
    return f"/flow_runs/{run_id}/input/{quote(key, safe='')}"


def create_flow_run_input(
    run_id: UUID, key: str, value: Any, sender: str | None = None
) -> Call[FlowRunInput]:
    from tideflow.schemas.run_inputs import FlowRunInput, FlowRunInputCreate

    body = dump(FlowRunInputCreate(key=key, value=value, sender=sender))
    return Call("POST", f"/flow_runs/{run_id}/input", _model(FlowRunInput), body)


def read_flow_run_input(run_id: UUID, key: str) -> Call[FlowRunInput]:
    from tideflow.schemas.run_inputs import FlowRunInput

    return Call("GET", _input_path(run_id, key), _model(FlowRunInput))


def filter_flow_run_inputs(run_id: UUID, flt: FlowRunInputFilter) -> Call[list[FlowRunInput]]:
    from tideflow.schemas.run_inputs import FlowRunInput

    path = f"/flow_runs/{run_id}/input/filter"
    return Call("POST", path, _model(list[FlowRunInput]), dump(flt))


def ack_flow_run_input(run_id: UUID, key: str) -> Call[FlowRunInput]:
    from tideflow.schemas.run_inputs import FlowRunInput

    return Call("POST", _input_path(run_id, key) + "/ack", _model(FlowRunInput))


def delete_flow_run_input(run_id: UUID, key: str) -> Call[None]:
    return Call("DELETE", _input_path(run_id, key), _none)


def resume_flow_run(run_id: UUID, run_input: dict[str, Any] | None = None) -> Call[FlowRun]:
    return Call("POST", f"/flow_runs/{run_id}/resume", _model(FlowRun), {"run_input": run_input})


# --- logs -----------------------------------------------------------------------------------------
def create_logs(logs: list[LogCreate]) -> Call[None]:
    return Call("POST", "/logs/", _none, [dump(log) for log in logs])


def read_logs(flt: LogFilter) -> Call[list[Log]]:
    return Call("POST", "/logs/filter", _model(list[Log]), dump(flt))


# --- task runs ------------------------------------------------------------------------------------
def report_task_runs(
    reports: Sequence[TaskRunReport | dict[str, Any]],
) -> Call[TaskRunReportResult]:
    """Reports as models, or as their JSON-ready dicts (the SDK's reporter builds those directly)."""
    from tideflow.schemas.task_runs import TaskRunReportResult

    body = [r if isinstance(r, dict) else dump(r) for r in reports]
    return Call("POST", "/task_runs/report", _model(TaskRunReportResult), body)


def create_task_run(body: TaskRunCreate) -> Call[TaskRun]:
    """A background task run (``Task.delay``); resending the same id answers the stored run."""
    from tideflow.schemas.task_runs import TaskRun

    return Call("POST", "/task_runs/", _model(TaskRun), dump(body))


def read_task_run(task_run_id: UUID) -> Call[TaskRun]:
    from tideflow.schemas.task_runs import TaskRun

    return Call("GET", f"/task_runs/{task_run_id}", _model(TaskRun))


def cancel_task_run(task_run_id: UUID) -> Call[TaskRun]:
    """Cancel a background task run (Cancelled, or Cancelling while its worker stops it)."""
    from tideflow.schemas.task_runs import TaskRun

    return Call("POST", f"/task_runs/{task_run_id}/cancel", _model(TaskRun))


def read_task_runs(flt: TaskRunFilter | None = None) -> Call[list[TaskRun]]:
    from tideflow.schemas.task_runs import TaskRun, TaskRunFilter

    return Call("POST", "/task_runs/filter", _model(list[TaskRun]), dump(flt or TaskRunFilter()))


def count_task_runs(flt: TaskRunFilter | None = None) -> Call[int]:
    from tideflow.schemas.task_runs import TaskRunFilter

    return Call("POST", "/task_runs/count", _model(int), dump(flt or TaskRunFilter()))


# --- tag-based concurrency limits ------------------------------------------------------------------
def upsert_concurrency_limit(tag: str, limit: int) -> Call[ConcurrencyLimit]:
    from tideflow.schemas.concurrency import ConcurrencyLimit

    body = {"tag": tag, "concurrency_limit": limit}
    return Call("POST", "/concurrency_limits/", _model(ConcurrencyLimit), body)


def read_concurrency_limits() -> Call[list[ConcurrencyLimit]]:
    from tideflow.schemas.concurrency import ConcurrencyLimit

    return Call("POST", "/concurrency_limits/filter", _model(list[ConcurrencyLimit]), {})


def read_concurrency_limit(tag: str) -> Call[ConcurrencyLimit]:
    from tideflow.schemas.concurrency import ConcurrencyLimit

    path = f"/concurrency_limits/tag/{quote(tag, safe='')}"
    return Call("GET", path, _model(ConcurrencyLimit))


def delete_concurrency_limit(tag: str) -> Call[None]:
    return Call("DELETE", f"/concurrency_limits/tag/{quote(tag, safe='')}", _none)


def reset_concurrency_limit(tag: str) -> Call[ConcurrencyLimit]:
    from tideflow.schemas.concurrency import ConcurrencyLimit

    path = f"/concurrency_limits/tag/{quote(tag, safe='')}/reset"
    return Call("POST", path, _model(ConcurrencyLimit), {})


def acquire_concurrency_slots(
    tags: list[str], holder: UUID, lease_seconds: float
) -> Call[SlotAnswer]:
    from tideflow.schemas.concurrency import SlotAnswer

    body = {"tags": tags, "holder": str(holder), "lease_seconds": lease_seconds}
    return Call("POST", "/concurrency_limits/acquire", _model(SlotAnswer), body)


def renew_concurrency_slots(holder: UUID, lease_seconds: float) -> Call[Any]:
    body = {"holder": str(holder), "lease_seconds": lease_seconds}
    return Call("POST", "/concurrency_limits/renew", _json, body)


def release_concurrency_slots(holder: UUID) -> Call[Any]:
    return Call("POST", "/concurrency_limits/release", _json, {"holder": str(holder)})


# --- variables ------------------------------------------------------------------------------------
def _variable_path(name: str) -> str:
    return f"/variables/name/{quote(name, safe='')}"


def create_variable(body: VariableCreate) -> Call[Variable]:
    from tideflow.schemas.variables import Variable

    return Call("POST", "/variables/", _model(Variable), dump(body))


def read_variable_by_name(name: str) -> Call[Variable]:
    from tideflow.schemas.variables import Variable

    return Call("GET", _variable_path(name), _model(Variable))


def read_variables(flt: VariableFilter | None = None) -> Call[list[Variable]]:
    from tideflow.schemas.variables import Variable

    body = flt.model_dump(mode="json") if flt is not None else {}
    return Call("POST", "/variables/filter", _model(list[Variable]), body)


def update_variable(name: str, body: VariableUpdate) -> Call[Variable]:
    from tideflow.schemas.variables import Variable

    data = body.model_dump(mode="json", exclude_unset=True)
    return Call("PATCH", _variable_path(name), _model(Variable), data)


def delete_variable_by_name(name: str) -> Call[None]:
    return Call("DELETE", _variable_path(name), _none)


# --- secrets --------------------------------------------------------------------------------------
def _secret_path(name: str) -> str:
    return f"/secrets/name/{quote(name, safe='')}"


def set_secret(body: SecretCreate) -> Call[SecretInfo]:
    from tideflow.schemas.secrets import SecretInfo

    return Call("POST", "/secrets/", _model(SecretInfo), body.model_dump(mode="json"))


def read_secret(name: str) -> Call[SecretInfo]:
    from tideflow.schemas.secrets import SecretInfo

    return Call("GET", _secret_path(name), _model(SecretInfo))


def read_secret_value(name: str) -> Call[SecretValue]:
    from tideflow.schemas.secrets import SecretValue

    return Call("GET", _secret_path(name) + "/value", _model(SecretValue))


def read_secrets(flt: SecretFilter | None = None) -> Call[list[SecretInfo]]:
    from tideflow.schemas.secrets import SecretInfo

    body = flt.model_dump(mode="json") if flt is not None else {}
    return Call("POST", "/secrets/filter", _model(list[SecretInfo]), body)


def delete_secret(name: str) -> Call[None]:
    return Call("DELETE", _secret_path(name), _none)


# --- notification destinations ------------------------------------------------------------------
def _destination_path(name: str) -> str:
    return f"/notification_destinations/name/{quote(name, safe='')}"


def create_notification_destination(
    body: NotificationDestinationCreate,
) -> Call[NotificationDestination]:
    from tideflow.schemas.notifications import NotificationDestination

    data = body.model_dump(mode="json")
    return Call("POST", "/notification_destinations/", _model(NotificationDestination), data)


def read_notification_destination(name: str) -> Call[NotificationDestination]:
    from tideflow.schemas.notifications import NotificationDestination

    return Call("GET", _destination_path(name), _model(NotificationDestination))


def read_notification_destinations(
    flt: NotificationDestinationFilter | None = None,
) -> Call[list[NotificationDestination]]:
    from tideflow.schemas.notifications import NotificationDestination

    body = flt.model_dump(mode="json") if flt is not None else {}
    return Call(
        "POST", "/notification_destinations/filter", _model(list[NotificationDestination]), body
    )


def delete_notification_destination(name: str) -> Call[None]:
    return Call("DELETE", _destination_path(name), _none)


def test_notification_destination(name: str) -> Call[NotificationResult]:
    from tideflow.schemas.notifications import NotificationResult

    return Call("POST", _destination_path(name) + "/test", _model(NotificationResult), {})


def send_notification(name: str, message: NotificationMessage) -> Call[NotificationResult]:
    from tideflow.schemas.notifications import NotificationResult

    body = message.model_dump(mode="json")
    return Call("POST", _destination_path(name) + "/send", _model(NotificationResult), body)


# --- artifacts ------------------------------------------------------------------------------------
def create_artifact(body: ArtifactCreate) -> Call[Artifact]:
    from tideflow.schemas.artifacts import Artifact

    return Call("POST", "/artifacts/", _model(Artifact), body.model_dump(mode="json"))


def read_artifact(artifact_id: UUID) -> Call[Artifact]:
    from tideflow.schemas.artifacts import Artifact

    return Call("GET", f"/artifacts/{artifact_id}", _model(Artifact))


def read_latest_artifact(key: str) -> Call[Artifact]:
    from tideflow.schemas.artifacts import Artifact

    return Call("GET", f"/artifacts/key/{quote(key, safe='')}", _model(Artifact))


def read_artifacts(flt: ArtifactFilter | None = None) -> Call[list[Artifact]]:
    from tideflow.schemas.artifacts import Artifact

    body = flt.model_dump(mode="json") if flt is not None else {}
    return Call("POST", "/artifacts/filter", _model(list[Artifact]), body)


def update_artifact(artifact_id: UUID, body: ArtifactUpdate) -> Call[Artifact]:
    from tideflow.schemas.artifacts import Artifact

    data = body.model_dump(mode="json", exclude_unset=True)
    return Call("PATCH", f"/artifacts/{artifact_id}", _model(Artifact), data)


def delete_artifact(artifact_id: UUID) -> Call[None]:
    return Call("DELETE", f"/artifacts/{artifact_id}", _none)


def delete_artifacts_by_key(key: str) -> Call[Any]:
    return Call("DELETE", f"/artifacts/key/{quote(key, safe='')}", _json)


# --- assets --------------------------------------------------------------------------------------
def read_assets(flt: AssetFilter | None = None) -> Call[list[AssetRecord]]:
    from tideflow.schemas.assets import AssetRecord

    body = flt.model_dump(mode="json") if flt is not None else {}
    return Call("POST", "/assets/filter", _model(list[AssetRecord]), body)


def read_asset(key: str) -> Call[AssetRecord]:
    from tideflow.schemas.assets import AssetRecord

    return Call("GET", "/assets/key", _model(AssetRecord), params={"key": key})


def read_asset_materializations(key: str, limit: int = 50) -> Call[list[ReceivedEvent]]:
    from tideflow.schemas.events import ReceivedEvent

    params = {"key": key, "limit": limit}
    return Call("GET", "/assets/key/materializations", _model(list[ReceivedEvent]), params=params)


def read_asset_lineage(key: str | None = None, depth: int = 3) -> Call[AssetLineage]:
    from tideflow.schemas.assets import AssetLineage

    params: dict[str, Any] = {"depth": depth}
    if key is not None:
        params["key"] = key
    return Call("GET", "/assets/lineage", _model(AssetLineage), params=params)


def delete_asset(key: str) -> Call[None]:
    return Call("DELETE", "/assets/key", _none, params={"key": key})


# --- global concurrency and rate limits ------------------------------------------------------------
def _gcl_path(name: str) -> str:
    return f"/global_concurrency_limits/name/{quote(name, safe='')}"


def create_global_concurrency_limit(
    body: GlobalConcurrencyLimitCreate,
) -> Call[GlobalConcurrencyLimit]:
    from tideflow.schemas.global_concurrency import GlobalConcurrencyLimit

    return Call("POST", "/global_concurrency_limits/", _model(GlobalConcurrencyLimit), dump(body))


def read_global_concurrency_limits() -> Call[list[GlobalConcurrencyLimit]]:
    from tideflow.schemas.global_concurrency import GlobalConcurrencyLimit

    path = "/global_concurrency_limits/filter"
    return Call("POST", path, _model(list[GlobalConcurrencyLimit]), {"limit": 1000})


def read_global_concurrency_limit(name: str) -> Call[GlobalConcurrencyLimit]:
    from tideflow.schemas.global_concurrency import GlobalConcurrencyLimit

    return Call("GET", _gcl_path(name), _model(GlobalConcurrencyLimit))


def update_global_concurrency_limit(
    name: str, body: GlobalConcurrencyLimitUpdate
) -> Call[GlobalConcurrencyLimit]:
    from tideflow.schemas.global_concurrency import GlobalConcurrencyLimit

    data = body.model_dump(mode="json", exclude_unset=True)
    return Call("PATCH", _gcl_path(name), _model(GlobalConcurrencyLimit), data)


def delete_global_concurrency_limit(name: str) -> Call[None]:
    return Call("DELETE", _gcl_path(name), _none)


def reset_global_concurrency_limit(name: str) -> Call[GlobalConcurrencyLimit]:
    from tideflow.schemas.global_concurrency import GlobalConcurrencyLimit

    return Call("POST", _gcl_path(name) + "/reset", _model(GlobalConcurrencyLimit))


def acquire_global_slots(body: SlotRequest) -> Call[LeaseAnswer]:
    from tideflow.schemas.global_concurrency import LeaseAnswer

    return Call("POST", "/global_concurrency_limits/acquire", _model(LeaseAnswer), dump(body))


def renew_global_lease(lease_id: UUID, lease_seconds: float) -> Call[Any]:
    body = {"lease_id": str(lease_id), "lease_seconds": lease_seconds}
    return Call("POST", "/global_concurrency_limits/renew", _json, body)


def release_global_lease(lease_id: UUID) -> Call[Any]:
    body = {"lease_id": str(lease_id)}
    return Call("POST", "/global_concurrency_limits/release", _json, body)


# --- deployments ----------------------------------------------------------------------------------
def create_deployment(body: DeploymentCreate) -> Call[Deployment]:
    """Create the deployment, or update the one with the same (flow name, name)."""
    from tideflow.schemas.deployments import Deployment

    return Call("POST", "/deployments/", _model(Deployment), dump(body))


def read_deployment(deployment_id: UUID) -> Call[Deployment]:
    from tideflow.schemas.deployments import Deployment

    return Call("GET", f"/deployments/{deployment_id}", _model(Deployment))


def read_deployment_by_name(full_name: str) -> Call[Deployment]:
    """``full_name`` is ``flow-name/deployment-name``."""
    from tideflow.schemas.deployments import Deployment, split_full_name

    flow_name, name = split_full_name(full_name)
    path = f"/deployments/name/{quote(flow_name, safe='')}/{quote(name, safe='')}"
    return Call("GET", path, _model(Deployment))


def read_deployments(flt: DeploymentFilter | None = None) -> Call[list[Deployment]]:
    from tideflow.schemas.deployments import Deployment, DeploymentFilter

    return Call(
        "POST", "/deployments/filter", _model(list[Deployment]), dump(flt or DeploymentFilter())
    )


def update_deployment(deployment_id: UUID, body: DeploymentUpdate) -> Call[Deployment]:
    from tideflow.schemas.deployments import Deployment

    data = body.model_dump(mode="json", exclude_unset=True)
    return Call("PATCH", f"/deployments/{deployment_id}", _model(Deployment), data)


def delete_deployment(deployment_id: UUID) -> Call[None]:
    return Call("DELETE", f"/deployments/{deployment_id}", _none)


def pause_deployment(deployment_id: UUID) -> Call[Deployment]:
    from tideflow.schemas.deployments import Deployment

    return Call("POST", f"/deployments/{deployment_id}/pause", _model(Deployment))


def resume_deployment(deployment_id: UUID) -> Call[Deployment]:
    from tideflow.schemas.deployments import Deployment

    return Call("POST", f"/deployments/{deployment_id}/resume", _model(Deployment))


def create_flow_run_from_deployment(
    deployment_id: UUID, body: DeploymentFlowRunCreate | None = None
) -> Call[FlowRun]:
    from tideflow.schemas.deployments import DeploymentFlowRunCreate

    data = dump(body or DeploymentFlowRunCreate())
    return Call("POST", f"/deployments/{deployment_id}/create_flow_run", _model(FlowRun), data)


def read_deployment_schedules(deployment_id: UUID) -> Call[list[DeploymentSchedule]]:
    from tideflow.schemas.schedules import DeploymentSchedule

    path = f"/deployments/{deployment_id}/schedules"
    return Call("GET", path, _model(list[DeploymentSchedule]))


def create_deployment_schedules(
    deployment_id: UUID, schedules: list[DeploymentScheduleCreate]
) -> Call[list[DeploymentSchedule]]:
    from tideflow.schemas.schedules import DeploymentSchedule

    path = f"/deployments/{deployment_id}/schedules"
    return Call("POST", path, _model(list[DeploymentSchedule]), [dump(s) for s in schedules])


def update_deployment_schedule(
    deployment_id: UUID, schedule_id: UUID, body: DeploymentScheduleUpdate
) -> Call[DeploymentSchedule]:
    from tideflow.schemas.schedules import DeploymentSchedule

    path = f"/deployments/{deployment_id}/schedules/{schedule_id}"
    data = body.model_dump(mode="json", exclude_unset=True)
    return Call("PATCH", path, _model(DeploymentSchedule), data)


def delete_deployment_schedule(deployment_id: UUID, schedule_id: UUID) -> Call[None]:
    return Call("DELETE", f"/deployments/{deployment_id}/schedules/{schedule_id}", _none)


def get_scheduled_flow_runs(
    deployment_ids: list[UUID], scheduled_before: dt.datetime | None = None, limit: int = 100
) -> Call[list[FlowRun]]:
    """Due runs (state type SCHEDULED) of these deployments: the runners' fallback poll."""
    data = {
        "deployment_ids": [str(d) for d in deployment_ids],
        "scheduled_before": scheduled_before.isoformat() if scheduled_before else None,
        "limit": limit,
    }
    return Call("POST", "/deployments/get_scheduled_flow_runs", _model(list[FlowRun]), data)


# --- events ---------------------------------------------------------------------------------------
def emit_events(events: list[Event]) -> Call[dict[str, Any]]:
    """Store a batch: ``{"accepted": [ids], "refused": [{"index", "id", "reason"}]}``."""
    return Call("POST", "/events", _json, [dump(e) for e in events])


def read_events(flt: EventFilter | None = None) -> Call[EventPage]:
    from tideflow.schemas.events import EventFilter, EventPage

    return Call("POST", "/events/filter", _model(EventPage), dump(flt or EventFilter()))


def count_events(by: str, flt: EventFilter | None = None) -> Call[list[dict[str, Any]]]:
    from tideflow.schemas.events import EventFilter

    return Call("POST", f"/events/count-by/{by}", _json, dump(flt or EventFilter()))


def read_event(event_id: UUID) -> Call[ReceivedEvent]:
    from tideflow.schemas.events import ReceivedEvent

    return Call("GET", f"/events/{event_id}", _model(ReceivedEvent))


# --- automations ----------------------------------------------------------------------------------
def create_automation(data: dict[str, Any]) -> Call[Automation]:
    """Create from a JSON/YAML-shaped dict (the server names any bad field in a 422)."""
    from tideflow.schemas.automations import Automation

    return Call("POST", "/automations/", _model(Automation), data)


def read_automation(automation_id: UUID) -> Call[Automation]:
    from tideflow.schemas.automations import Automation

    return Call("GET", f"/automations/{automation_id}", _model(Automation))


def read_automation_by_name(name: str) -> Call[Automation]:
    from tideflow.schemas.automations import Automation

    return Call("GET", f"/automations/name/{quote(name, safe='')}", _model(Automation))


def read_automations(flt: AutomationFilter | None = None) -> Call[list[Automation]]:
    from tideflow.schemas.automations import Automation, AutomationFilter

    return Call(
        "POST", "/automations/filter", _model(list[Automation]), dump(flt or AutomationFilter())
    )


def update_automation(automation_id: UUID, data: dict[str, Any]) -> Call[Automation]:
    from tideflow.schemas.automations import Automation

    return Call("PATCH", f"/automations/{automation_id}", _model(Automation), data)


def delete_automation(automation_id: UUID) -> Call[None]:
    return Call("DELETE", f"/automations/{automation_id}", _none)


def pause_automation(automation_id: UUID) -> Call[Automation]:
    from tideflow.schemas.automations import Automation

    return Call("POST", f"/automations/{automation_id}/pause", _model(Automation))


def resume_automation(automation_id: UUID) -> Call[Automation]:
    from tideflow.schemas.automations import Automation

    return Call("POST", f"/automations/{automation_id}/resume", _model(Automation))


def explain_automation(automation_id: UUID, event_id: UUID) -> Call[dict[str, Any]]:
    """``{"explanation": {...}, "lines": [...], "firings": [...]}`` for one stored event."""
    params = {"event_id": str(event_id)}
    return Call("GET", f"/automations/{automation_id}/explain", _json, params=params)


def replay_automation(
    automation_id: UUID | None,
    since: dt.datetime,
    until: dt.datetime | None = None,
    automation: dict[str, Any] | None = None,
    *,
    backfill: bool = False,
) -> Call[dict[str, Any]]:
    """Dry-run a stored automation (or an unsaved ``automation``) over a window of stored events;
    with ``backfill``, also record and run the firings never recorded (stored automations)."""
    body: dict[str, Any] = {"since": since.isoformat()}
    if backfill:
        body["backfill"] = True
    if until is not None:
        body["until"] = until.isoformat()
    if automation is not None:
        body["automation"] = automation
    path = (
        "/automations/replay" if automation_id is None else f"/automations/{automation_id}/replay"
    )
    return Call("POST", path, _json, body)


def automation_history(automation_id: UUID, limit: int = 20) -> Call[list[FiringRecord]]:
    from tideflow.schemas.automations import FiringRecord

    params = {"limit": limit}
    return Call(
        "GET", f"/automations/{automation_id}/history", _model(list[FiringRecord]), params=params
    )
