"""Deployment triggers: a trigger plus what to run when it fires, turned into an automation on serve.

Each ``Deployment*Trigger`` becomes one automation owned by its deployment, with one
``run-deployment`` action for that deployment. Its identity (``owner_key``: the trigger's name, or
its position) and its trigger ids are derived from the deployment, so serving again updates the
same automation and keeps its counting state instead of starting over.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any
from uuid import UUID, uuid5

from pydantic import BaseModel, Field, field_validator

from tideflow.schemas.triggers import (
    TEMPLATE_CONTEXT_NAMES,
    CompoundTrigger,
    EventTrigger,
    SequenceTrigger,
)

if TYPE_CHECKING:
    from tideflow.schemas.automations import AutomationCreate

__all__ = [
    "DeploymentCompoundTrigger",
    "DeploymentEventTrigger",
    "DeploymentSequenceTrigger",
    "DeploymentTrigger",
]

_NAMESPACE = UUID("b3d0c1a4-7f2e-4c55-8e1b-0a9d6c2f4e17")
_DEPLOYMENT_FIELDS = {
    "name",
    "description",
    "enabled",
    "parameters",
    "job_variables",
    "schedule_after",
}


class _DeploymentFields(BaseModel):
    name: str | None = Field(None, min_length=1, max_length=200, description="Automation name.")
    description: str = ""
    enabled: bool = True
    parameters: dict[str, Any] | None = Field(
        None, description="Run parameters; values may be templates."
    )
    job_variables: dict[str, Any] | None = None
    schedule_after: float = Field(0.0, ge=0, description="Seconds (timedelta accepted).")

    @field_validator("schedule_after", mode="before")
    @classmethod
    def _seconds(cls, value: Any) -> Any:
        return value.total_seconds() if isinstance(value, dt.timedelta) else value

    def owner_key(self, position: int) -> str:
        """This trigger's identity within its deployment: its name, or its position when unnamed."""
        return f"name:{self.name}" if self.name else f"position:{position}"

    def as_automation(
        self, deployment_id: UUID, deployment_name: str, position: int
    ) -> AutomationCreate:
        """The automation that runs deployment ``deployment_id`` when this trigger fires."""
        # Imported here: the action and automation models are needed when serve() registers the
        # trigger, not to define one (keeps `from tideflow.events import ...` cheap, issue 6).
        from tideflow.schemas.automations import AutomationCreate, RunDeployment

        owner = f"tideflow.deployment.{deployment_id}"
        key = self.owner_key(position)
        trigger = self.model_dump(exclude=_DEPLOYMENT_FIELDS)
        _stable_ids(self, trigger, f"{owner}/{key}")
        return AutomationCreate(
            name=self.name or f"{deployment_name} trigger {position}",
            description=self.description,
            enabled=self.enabled,
            trigger=trigger,  # validated into the trigger union
            actions=[
                RunDeployment(
                    source="selected",
                    deployment_id=deployment_id,
                    parameters=self.parameters,
                    job_variables=self.job_variables,
                    schedule_after=self.schedule_after,
                )
            ],
            owner_resource=owner,
            owner_key=key,
        )

    def check_wiring(self, parameter_names: set[str]) -> list[str]:
        """Problems wiring this trigger to a flow with ``parameter_names``: unknown parameters and
        templates that do not parse or use unknown variables."""
        label = f"trigger {self.name!r}" if self.name else "trigger"
        problems = []
        for param in sorted(self.parameters or {}):
            if param not in parameter_names:
                has = ", ".join(sorted(parameter_names)) or "none"
                problems.append(
                    f"{label}: {param!r} is not a parameter of the flow (its parameters: {has})"
                )
        for field in ("parameters", "job_variables"):
            problems.extend(
                f"{label}: {p}" for p in _template_problems(getattr(self, field), field)
            )
        return problems


def _stable_ids(trigger: Any, data: dict[str, Any], base: str) -> None:
    # Ids the user did not set are derived from the owner, so state survives re-serving.
    if "id" not in trigger.model_fields_set:
        data["id"] = str(uuid5(_NAMESPACE, base))
    for i, (child, child_data) in enumerate(
        zip(getattr(trigger, "triggers", []), data.get("triggers", []), strict=True)
    ):
        _stable_ids(child, child_data, f"{base}/{i}")


def _template_problems(value: Any, where: str) -> list[str]:
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _template_problems(v, f"{where}.{k}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _template_problems(v, f"{where}[{i}]")]
    if not isinstance(value, str) or "{" not in value:
        return []
    # jinja2 takes ~70 ms to import; only wiring checks need it, so `import tideflow.events` stays cheap.
    import jinja2
    from jinja2 import meta

    env = jinja2.Environment()
    try:
        ast = env.parse(value)
    except jinja2.TemplateSyntaxError as exc:
        return [f"{where}: template does not parse: {exc.message} ({value!r})"]
    unknown = sorted(meta.find_undeclared_variables(ast) - TEMPLATE_CONTEXT_NAMES - {"range"})
    if unknown:
        known = ", ".join(sorted(TEMPLATE_CONTEXT_NAMES))
        return [
            f"{where}: template uses unknown variable {unknown[0]!r} (templates can use {known})"
        ]
    return []


class DeploymentEventTrigger(_DeploymentFields, EventTrigger):
    """An event trigger that runs its deployment when it fires."""


class DeploymentCompoundTrigger(_DeploymentFields, CompoundTrigger):
    """A compound trigger that runs its deployment when it fires."""


class DeploymentSequenceTrigger(_DeploymentFields, SequenceTrigger):
    """A sequence trigger that runs its deployment when it fires."""


DeploymentTrigger = DeploymentEventTrigger | DeploymentCompoundTrigger | DeploymentSequenceTrigger
