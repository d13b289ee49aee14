"""Automations: the action union and the Automation create/update/read models; re-exports the
resource specifications and the trigger union (event, compound, sequence) from ``triggers``.

These are pure data with validation; ``tideflow.server.triggers`` evaluates triggers and renders
action templates. Loading from YAML/JSON dicts goes through ``parse_automation`` so errors name the
field (``trigger.threshold: ...``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Annotated, Any, Literal
from urllib.parse import urlparse
from uuid import UUID, uuid4

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from tideflow.schemas.limits import (
    MAX_DESCRIPTION_LENGTH,
    MAX_ID_LENGTH,
    MAX_NAME_LENGTH,
    MAX_OFFSET,
)
from tideflow.schemas.states import StateType
from tideflow.schemas.triggers import (
    MAX_THRESHOLD,
    TEMPLATE_CONTEXT_NAMES,
    AutomationTrigger,
    CompoundTrigger,
    EventTrigger,
    MetricTrigger,
    MetricTriggerQuery,
    Posture,
    ResourceSpecification,
    SequenceTrigger,
    Trigger,
    iter_triggers,
    seconds,
)

__all__ = [
    "MAX_THRESHOLD",
    "TEMPLATE_CONTEXT_NAMES",
    "Action",
    "ActionRecord",
    "Automation",
    "AutomationCreate",
    "AutomationFilter",
    "AutomationTrigger",
    "AutomationUpdate",
    "CallWebhook",
    "CancelFlowRun",
    "ChangeFlowRunState",
    "CompoundTrigger",
    "DoNothing",
    "EventTrigger",
    "FiringRecord",
    "MetricTrigger",
    "MetricTriggerQuery",
    "PauseAutomation",
    "PauseDeployment",
    "Posture",
    "ResourceSpecification",
    "ResumeAutomation",
    "ResumeDeployment",
    "RunDeployment",
    "SendNotification",
    "SequenceTrigger",
    "SuspendFlowRun",
    "Trigger",
    "automation_warnings",
    "describe_validation_error",
    "iter_triggers",
    "parse_automation",
    "parse_automations",
]

MAX_WEBHOOK_TIMEOUT = 30.0
MAX_TEMPLATE_LENGTH = 100_000  # characters of one template field (the template check's own limit)
MAX_URL_LENGTH = 4096
MAX_HEADERS = 50
MAX_ACTIONS = 50  # actions in one list of an automation


# ---------------------------------------------------------------------------------------------
# Actions


class _Action(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RunDeployment(_Action):
    """Create a run of a deployment: the selected one, or the one related to the triggering event."""

    type: Literal["run-deployment"] = "run-deployment"
    source: Literal["selected", "inferred"] = "selected"
    deployment_id: UUID | None = None
    parameters: dict[str, Any] | None = Field(
        None, description="Values may be templates; None = defaults."
    )
    job_variables: dict[str, Any] | None = None
    schedule_after: float = Field(
        0.0, ge=0, description="Seconds from the firing (timedelta accepted)."
    )

    @field_validator("schedule_after", mode="before")
    @classmethod
    def _after_seconds(cls, value: Any) -> Any:
        return seconds(value)

    @model_validator(mode="after")
    def _check_source(self) -> RunDeployment:
        _check_selected(self.source, self.deployment_id, "deployment_id")
        return self


def _check_selected(source: str, ident: UUID | None, field: str) -> None:
    if source == "selected" and ident is None:
        raise ValueError(f"{field} is required when source is 'selected'")
    if source != "selected" and ident is not None:
        raise ValueError(f"{field} must be empty when source is {source!r}")


class PauseDeployment(_Action):
    """Pause a deployment's schedules (selected, or inferred from the event)."""

    type: Literal["pause-deployment"] = "pause-deployment"
    source: Literal["selected", "inferred"] = "selected"
    deployment_id: UUID | None = None

    @model_validator(mode="after")
    def _check_source(self) -> PauseDeployment:
        _check_selected(self.source, self.deployment_id, "deployment_id")
        return self


class ResumeDeployment(PauseDeployment):
    """Resume a deployment's schedules (selected, or inferred from the event)."""

    type: Literal["resume-deployment"] = "resume-deployment"  # type: ignore[assignment]


class CancelFlowRun(_Action):
    """Cancel the flow run the triggering event is about (or related to)."""

    type: Literal["cancel-flow-run"] = "cancel-flow-run"


class SuspendFlowRun(_Action):
    """Suspend the flow run the triggering event is about (or related to)."""

    type: Literal["suspend-flow-run"] = "suspend-flow-run"


class ChangeFlowRunState(_Action):
    """Propose a state for the flow run the triggering event is about."""

    type: Literal["change-flow-run-state"] = "change-flow-run-state"
    state: StateType
    name: str | None = Field(None, max_length=MAX_NAME_LENGTH)
    message: str | None = Field(
        None, max_length=MAX_TEMPLATE_LENGTH, description="May be a template."
    )


class PauseAutomation(_Action):
    """Disable an automation: the selected one, or this automation itself ("self")."""

    type: Literal["pause-automation"] = "pause-automation"
    source: Literal["selected", "self"] = "self"
    automation_id: UUID | None = None

    @model_validator(mode="after")
    def _check_source(self) -> PauseAutomation:
        _check_selected(self.source, self.automation_id, "automation_id")
        return self


class ResumeAutomation(PauseAutomation):
    """Enable an automation: the selected one, or this automation itself ("self")."""

    type: Literal["resume-automation"] = "resume-automation"  # type: ignore[assignment]


class CallWebhook(_Action):
    """POST or PUT to a URL; headers and body may be templates."""

    type: Literal["call-webhook"] = "call-webhook"
    url: str = Field(max_length=MAX_URL_LENGTH)
    method: Literal["POST", "PUT"] = "POST"
    headers: dict[str, Annotated[str, Field(max_length=MAX_TEMPLATE_LENGTH)]] = Field(
        default_factory=dict, max_length=MAX_HEADERS
    )
    body: Any = Field(
        None, description="A template string, or JSON data whose strings may be templates."
    )
    timeout: float = Field(10.0, gt=0, le=MAX_WEBHOOK_TIMEOUT, description="Seconds.")

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        parsed = urlparse(value)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError(f"url must be an http:// or https:// URL, got {value!r}")
        return value


class SendNotification(_Action):
    """Send a message to a notification destination (by name); subject and body may be templates
    over the same context as other actions (event, flow_run, flow, deployment, variables...)."""

    type: Literal["send-notification"] = "send-notification"
    destination: str = Field(
        pattern=r"^[a-z0-9_-]{1,255}$", description="The notification destination's name."
    )
    subject: str = Field(
        "{{ automation.name }}{% if event %}: {{ event.event }} on "
        "{{ event.resource.name or event.resource.id }}{% endif %}",
        max_length=MAX_TEMPLATE_LENGTH,
        description="A template.",
    )
    body: str = Field(
        "Automation {{ automation.name }} fired at {{ firing.fired_at }}{% if event %} on "
        "{{ event.event }} ({{ event.resource.id }}, occurred {{ event.occurred }}){% endif %}.",
        max_length=MAX_TEMPLATE_LENGTH,
        description="A template.",
    )


class DoNothing(_Action):
    """An action that does nothing (tests, dry runs)."""

    type: Literal["do-nothing"] = "do-nothing"


Action = Annotated[
    RunDeployment
    | PauseDeployment
    | ResumeDeployment
    | CancelFlowRun
    | SuspendFlowRun
    | ChangeFlowRunState
    | PauseAutomation
    | ResumeAutomation
    | CallWebhook
    | SendNotification
    | DoNothing,
    Field(discriminator="type"),
]


# ---------------------------------------------------------------------------------------------
# Automations


class _AutomationFields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=MAX_NAME_LENGTH)
    description: str = Field("", max_length=MAX_DESCRIPTION_LENGTH)
    enabled: bool = True
    trigger: AutomationTrigger
    actions: list[Action] = Field(
        default_factory=list, max_length=MAX_ACTIONS, description="Run when the trigger fires."
    )
    actions_on_trigger: list[Action] = Field(
        default_factory=list, max_length=MAX_ACTIONS, description="Also run when it fires."
    )
    actions_on_resolve: list[Action] = Field(
        default_factory=list,
        max_length=MAX_ACTIONS,
        description="Run when a Proactive firing resolves.",
    )
    owner_resource: str | None = Field(
        None,
        max_length=MAX_ID_LENGTH,
        description="Resource owning it, e.g. 'tideflow.deployment.<id>'.",
    )
    owner_key: str | None = Field(
        None,
        max_length=MAX_NAME_LENGTH,
        description="Stable identity within the owner, so re-serving updates the automation in place.",
    )

    @model_validator(mode="after")
    def _check_actions(self) -> _AutomationFields:
        if not (self.actions or self.actions_on_trigger or self.actions_on_resolve):
            raise ValueError(
                "an automation needs at least one action (actions, actions_on_trigger or actions_on_resolve)"
            )
        if self.owner_key is not None and self.owner_resource is None:
            raise ValueError("owner_key needs owner_resource")
        return self

    def firing_actions(self) -> list[Action]:
        """Actions to run, in order, when the trigger fires."""
        return [*self.actions, *self.actions_on_trigger]


def _leaves(trigger: Trigger | MetricTrigger, path: str) -> list[tuple[str, EventTrigger]]:
    if isinstance(trigger, EventTrigger):
        return [(path, trigger)]
    if isinstance(trigger, MetricTrigger):
        return []
    out: list[tuple[str, EventTrigger]] = []
    for i, child in enumerate(trigger.triggers):
        out.extend(_leaves(child, f"{path}.triggers[{i}]"))
    return out


def automation_warnings(automation: _AutomationFields) -> list[str]:
    """Advice about a valid automation that is probably not what its author meant (saved anyway).

    A run-creating action on a trigger whose ``expect`` is empty matches every event, including the
    events of the runs it creates: it feeds itself (the engine stops it at a small causal depth)."""
    actions = [*automation.firing_actions(), *automation.actions_on_resolve]
    if not any(isinstance(action, RunDeployment) for action in actions):
        return []
    return [
        f"{path}.expect is empty, so it matches every event, including the events of the runs "
        "its run-deployment action creates: the automation feeds itself (the server stops it after "
        "TIDEFLOW_AUTOMATIONS_MAX_CAUSAL_DEPTH firings). Name the events to expect, e.g. "
        "['tideflow.flow-run.Completed']"
        for path, leaf in _leaves(automation.trigger, "trigger")
        if not leaf.expect
    ]


class AutomationCreate(_AutomationFields):
    """Create an automation."""


class Automation(_AutomationFields):
    """An automation as stored."""

    model_config = ConfigDict(extra="forbid", from_attributes=True)

    id: UUID = Field(default_factory=uuid4)
    created: AwareDatetime
    updated: AwareDatetime
    warnings: list[str] = Field(
        default_factory=list,
        description="Advice computed from the automation, never stored (e.g. a run-deployment "
        "action on a trigger that matches every event); any value sent is replaced.",
    )
    event_warnings: list[str] = Field(
        default_factory=list,
        description="Advice from the server's stored events, never stored: an expect/after name "
        "that no stored event has (e.g. 'prefect.flow-run.*'), with a suggestion. Filled in the "
        "answers for one automation (create, update, read), empty in lists.",
    )

    @model_validator(mode="after")
    def _warn(self) -> Automation:
        self.warnings = automation_warnings(self)
        return self


class AutomationUpdate(BaseModel):
    """Change some fields of an automation; fields left out keep their value."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, min_length=1, max_length=MAX_NAME_LENGTH)
    description: str | None = Field(None, max_length=MAX_DESCRIPTION_LENGTH)
    enabled: bool | None = None
    trigger: AutomationTrigger | None = None
    actions: list[Action] | None = None
    actions_on_trigger: list[Action] | None = None
    actions_on_resolve: list[Action] | None = None

    def apply(self, automation: Automation, now: dt.datetime) -> Automation:
        """A copy of ``automation`` with these changes, validated as a whole (raises ValueError)."""
        data = automation.model_dump()
        data.update(self.model_dump(exclude_unset=True))
        data["updated"] = now
        return Automation.model_validate(data)


_UNION_TAGS = {"event", "compound", "sequence"}


def describe_validation_error(exc: ValidationError) -> list[str]:
    """One readable line per error, each naming the field (``trigger.threshold: ...``)."""
    lines = []
    for err in exc.errors():
        parts: list[str] = []
        for p in err["loc"]:
            if isinstance(p, int):
                parts.append(f"[{p}]")
            elif p in _UNION_TAGS or "-" in p:
                continue  # discriminator tags (field names never hold '-') add noise to the path
            else:
                parts.append(f".{p}" if parts else p)
        where = "".join(parts)
        msg = str(err["msg"]).removeprefix("Value error, ")
        lines.append(f"{where}: {msg}" if where else msg)
    return lines


def parse_automation(data: Mapping[str, Any]) -> AutomationCreate:
    """Load one automation from a YAML/JSON dict; raises ValueError whose lines name each bad field."""
    try:
        return AutomationCreate.model_validate(data)
    except ValidationError as exc:
        name = data.get("name") if isinstance(data, Mapping) else None
        head = (
            f"automation {name!r} is invalid" if isinstance(name, str) else "automation is invalid"
        )
        raise ValueError(head + ":\n  " + "\n  ".join(describe_validation_error(exc))) from None


def parse_automations(document: Any) -> list[AutomationCreate]:
    """Load automations from a document: one automation, a list, or ``{"automations": [...]}``."""
    if isinstance(document, Mapping) and "automations" in document:
        document = document["automations"]
    items = document if isinstance(document, list) else [document]
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise ValueError(f"automations[{i}]: expected a mapping, got {type(item).__name__}")
        try:
            out.append(parse_automation(item))
        except ValueError as exc:
            if len(items) > 1:
                raise ValueError(f"automations[{i}]: {exc}") from None
            raise
    return out


# ---------------------------------------------------------------------------------------------
# Queries and history


class AutomationFilter(BaseModel):
    """Which automations to list; ``None`` means no constraint. Sorted by name."""

    model_config = ConfigDict(extra="forbid")

    name: list[str] | None = Field(None, description="Any of these names.")
    name_like: str | None = Field(None, description="Case-insensitive substring of the name.")
    enabled: bool | None = None
    owner_resource: list[str] | None = Field(None, description="Owned by one of these resources.")
    limit: int = Field(200, ge=1, le=1000)
    offset: int = Field(0, ge=0, le=MAX_OFFSET)


class ActionRecord(BaseModel):
    """One action of one firing: its outcome and the run it created, if any."""

    model_config = ConfigDict(from_attributes=True)

    action_index: int
    action_type: str
    status: Literal["pending", "running", "executed", "failed"]
    detail: str | None = None
    flow_run_id: UUID | None = None
    created: AwareDatetime
    updated: AwareDatetime


class FiringRecord(BaseModel):
    """An automation fired (or a Proactive firing resolved), with what its actions did; or, kind
    ``paused``, the engine paused it (``detail`` says why; ``id`` is the paused event's)."""

    model_config = ConfigDict(from_attributes=True)

    id: UUID
    automation_id: UUID
    kind: Literal["fired", "resolved", "paused"]
    trigger_id: UUID
    bucket_key: str
    occurred: AwareDatetime
    fired_at: AwareDatetime
    triggering_event_id: UUID | None = None
    event_ids: list[UUID] = Field(default_factory=list)
    labels: dict[str, str] = Field(default_factory=dict)
    actions: list[ActionRecord] = Field(default_factory=list)
    detail: str | None = None
