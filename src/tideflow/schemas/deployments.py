"""Deployments on the wire: the object, its create/update payloads, run requests, the list filter,
and the pure rule that merges a deployment's default parameters with a run's.

A deployment is addressed as ``flow-name/deployment-name``; neither name may contain ``/``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from enum import StrEnum
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tideflow.schemas.actions import TagList
from tideflow.schemas.limits import MAX_DESCRIPTION_LENGTH, MAX_NAME_LENGTH, MAX_OFFSET
from tideflow.schemas.objects import Creator, check_creator
from tideflow.schemas.parameters import validate_parameters
from tideflow.schemas.schedules import DeploymentSchedule, DeploymentScheduleCreate

__all__ = [
    "PULL_STEPS",
    "ConcurrencyLimitConfig",
    "ConcurrencyLimitStrategy",
    "ConcurrencyOptions",
    "Deployment",
    "DeploymentCreate",
    "DeploymentFilter",
    "DeploymentFlowRunCreate",
    "DeploymentStatus",
    "DeploymentUpdate",
    "check_name",
    "check_pull_steps",
    "deployment_run_parameters",
    "merge_parameters",
    "split_full_name",
]


MAX_ENTRYPOINT_LENGTH = 4096  # a path and a function name
MAX_CONCURRENCY = 1_000_000  # stored in a 64-bit column; far beyond any real limit
MAX_PULL_STEPS = 20

PULL_STEPS: dict[str, dict[str, tuple[type, bool]]] = {
    # step name -> {argument: (type, required)}
    "set_working_directory": {"directory": (str, True)},
    "git_clone": {
        "repository": (str, True),
        "branch": (str, False),
        "commit": (str, False),
        "subdirectory": (str, False),
    },
    # A folder at any fsspec URL (file://, memory://, s3://, gcs://…), copied to the worker.
    "pull_from_remote_storage": {"url": (str, True)},
    # One command per line, run without a shell in `directory` (default: the current step's).
    "run_shell_script": {"script": (str, True), "directory": (str, False)},
}
"""The pull steps a worker runs, in order, before each run of a deployment (the code's source)."""


def check_pull_steps(steps: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
    """``steps`` if each is ``{name: {arguments}}`` with a known name and arguments, else a
    ValueError naming the first bad step and argument."""
    for index, step in enumerate(steps or []):
        if len(step) != 1:
            raise ValueError(f"pull step {index} must be one {{name: arguments}} pair")
        ((name, args),) = step.items()
        known = PULL_STEPS.get(name)
        if known is None:
            raise ValueError(
                f"pull step {index}: unknown step {name!r} (known: {', '.join(PULL_STEPS)})"
            )
        if not isinstance(args, dict):
            raise ValueError(f"pull step {index} ({name}): arguments must be an object")
        for arg, value in args.items():
            if arg not in known:
                raise ValueError(
                    f"pull step {index} ({name}): unknown argument {arg!r} "
                    f"(known: {', '.join(known)})"
                )
            if value is not None and not isinstance(value, known[arg][0]):
                raise ValueError(f"pull step {index} ({name}): {arg} must be a string")
        for arg, (_, required) in known.items():
            if required and not args.get(arg):
                raise ValueError(f"pull step {index} ({name}): {arg} is required")
    return steps


class DeploymentStatus(StrEnum):
    READY = "READY"  # a runner serving it polled or heartbeated recently
    NOT_READY = "NOT_READY"


def check_name(value: str, what: str = "name") -> str:
    """``value`` if it is a valid flow or deployment name, else ValueError naming the problem."""
    if not value or not value.strip():
        raise ValueError(f"{what} must not be empty")
    if "/" in value:
        raise ValueError(f"{what} {value!r} must not contain '/'")
    if value != value.strip():
        raise ValueError(f"{what} {value!r} must not start or end with whitespace")
    return value


def split_full_name(full_name: str) -> tuple[str, str]:
    """``("flow", "deployment")`` from ``"flow/deployment"``; ValueError when it is not of that form."""
    flow_name, sep, name = full_name.partition("/")
    if not sep or not flow_name or not name or "/" in name:
        raise ValueError(f"deployment {full_name!r} must be given as 'flow-name/deployment-name'")
    return flow_name, name


def merge_parameters(defaults: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """A run's parameters: the deployment's defaults, each replaced by the run's value if given.

    The merge is shallow (a dict parameter given by the run replaces the default whole); the inputs
    are not modified.
    """
    return {**defaults, **overrides}


def _unique_tags(tags: list[str]) -> list[str]:
    for tag in tags:
        if not tag.strip():
            raise ValueError("tags must not be empty")
    return list(dict.fromkeys(tags))


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    """Aware UTC; a naive time is taken as UTC."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


class Deployment(BaseModel):
    """A flow packaged to run on demand, on schedules or on triggers, by the runners serving it."""

    model_config = ConfigDict(from_attributes=True, extra="ignore")

    id: UUID
    name: str
    flow_id: UUID
    flow_name: str
    description: str | None = None
    version: str | None = None
    tags: list[str] = Field(default_factory=list)
    parameters: dict[str, Any] = Field(default_factory=dict, description="Default parameters.")
    parameter_openapi_schema: dict[str, Any] = Field(default_factory=dict)
    enforce_parameter_schema: bool = True
    schedules: list[DeploymentSchedule] = Field(default_factory=list)
    paused: bool = False
    concurrency_limit: int | None = None
    concurrency_options: ConcurrencyOptions | None = None
    triggers: list[dict[str, Any]] = Field(default_factory=list)
    job_variables: dict[str, Any] = Field(default_factory=dict)
    entrypoint: str | None = None
    work_pool_name: str | None = Field(None, description="None: served by serve().")
    work_queue_name: str | None = None
    work_queue_id: UUID | None = None
    pull_steps: list[dict[str, Any]] | None = Field(
        None, description="How a worker gets the flow's code before each run."
    )
    status: DeploymentStatus = DeploymentStatus.NOT_READY
    last_polled: dt.datetime | None = None
    created: dt.datetime
    updated: dt.datetime

    @property
    def full_name(self) -> str:
        """``flow-name/deployment-name``."""
        return f"{self.flow_name}/{self.name}"


ConcurrencyLimitStrategy = Literal["ENQUEUE", "CANCEL_NEW"]


class ConcurrencyOptions(BaseModel):
    """What happens to a run that would exceed its deployment's concurrency limit: ``ENQUEUE`` (it
    waits in AwaitingConcurrencySlot for a free slot) or ``CANCEL_NEW`` (it is cancelled at once)."""

    model_config = ConfigDict(extra="forbid")

    collision_strategy: ConcurrencyLimitStrategy = "ENQUEUE"

    @field_validator("collision_strategy", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else getattr(value, "value", value)


class ConcurrencyLimitConfig(BaseModel):
    """A deployment's ``concurrency_limit`` with its collision strategy (an int alone means
    ``ENQUEUE``): ``to_deployment(concurrency_limit=ConcurrencyLimitConfig(limit=1,
    collision_strategy="CANCEL_NEW"))``."""

    model_config = ConfigDict(extra="forbid")

    limit: int = Field(ge=1, le=MAX_CONCURRENCY)
    collision_strategy: ConcurrencyLimitStrategy = "ENQUEUE"

    @field_validator("collision_strategy", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else getattr(value, "value", value)


def _split_limit(data: Any) -> Any:
    """``concurrency_limit`` given as a ConcurrencyLimitConfig (or its dict): the int limit, and its
    strategy as ``concurrency_options``."""
    if not isinstance(data, dict):
        return data
    value = data.get("concurrency_limit")
    if isinstance(value, ConcurrencyLimitConfig):
        value = value.model_dump()
    if isinstance(value, dict):
        config = ConcurrencyLimitConfig.model_validate(value)
        data = {**data, "concurrency_limit": config.limit}
        data["concurrency_options"] = {"collision_strategy": config.collision_strategy}
    return data


class _Settable(BaseModel):
    """Fields a client may set at creation (with defaults) or change later."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _concurrency_config(cls, data: Any) -> Any:
        return _split_limit(data)

    @field_validator("tags", check_fields=False)
    @classmethod
    def _check_tags(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else _unique_tags(value)

    @model_validator(mode="after")
    def _check_defaults(self) -> _Settable:
        schema = getattr(self, "parameter_openapi_schema", None)
        defaults = getattr(self, "parameters", None)
        if schema and defaults and getattr(self, "enforce_parameter_schema", None) is not False:
            problems = validate_parameters(schema, defaults, partial=True)
            if problems:
                raise ValueError("invalid default parameters: " + "; ".join(problems))
        return self


class DeploymentCreate(_Settable):
    """Create a deployment, or update the one with the same flow name and name (an upsert)."""

    flow_name: str = Field(min_length=1, max_length=MAX_NAME_LENGTH)
    name: str = Field(min_length=1, max_length=MAX_NAME_LENGTH)
    description: str | None = Field(None, max_length=MAX_DESCRIPTION_LENGTH)
    version: str | None = Field(None, max_length=200)
    tags: TagList = Field(default_factory=list)
    parameters: dict[str, Any] = Field(default_factory=dict)
    parameter_openapi_schema: dict[str, Any] = Field(default_factory=dict)
    enforce_parameter_schema: bool = True
    schedules: list[DeploymentScheduleCreate] = Field(default_factory=list)
    paused: bool = False
    concurrency_limit: int | None = Field(
        None,
        ge=1,
        le=MAX_CONCURRENCY,
        description="Runs at once; None: no limit. A ConcurrencyLimitConfig is accepted too.",
    )
    concurrency_options: ConcurrencyOptions | None = Field(
        None, description="The collision strategy; None: ENQUEUE."
    )
    triggers: list[dict[str, Any]] = Field(default_factory=list)
    job_variables: dict[str, Any] = Field(
        default_factory=dict, description="Validated against the work pool's job template."
    )
    entrypoint: str | None = Field(None, max_length=MAX_ENTRYPOINT_LENGTH)
    work_pool_name: str | None = Field(
        None, min_length=1, max_length=MAX_NAME_LENGTH, description="None: served by serve()."
    )
    work_queue_name: str | None = Field(
        None, min_length=1, max_length=MAX_NAME_LENGTH, description="Default: the pool's default."
    )
    pull_steps: list[dict[str, Any]] | None = Field(
        None, max_length=MAX_PULL_STEPS, description="How a worker gets the code; see PULL_STEPS."
    )

    @field_validator("pull_steps")
    @classmethod
    def _check_pull_steps(cls, value: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
        return check_pull_steps(value)

    @field_validator("flow_name")
    @classmethod
    def _check_flow_name(cls, value: str) -> str:
        return check_name(value, "flow name")

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        return check_name(value, "deployment name")


class DeploymentUpdate(_Settable):
    """Change a deployment; only the fields sent are changed (use ``model_dump(exclude_unset=True)``).

    ``schedules`` replaces the whole list; sending ``concurrency_limit: null`` removes the limit.
    """

    description: str | None = Field(None, max_length=MAX_DESCRIPTION_LENGTH)
    version: str | None = Field(None, max_length=200)
    tags: TagList | None = None
    parameters: dict[str, Any] | None = None
    parameter_openapi_schema: dict[str, Any] | None = None
    enforce_parameter_schema: bool | None = None
    schedules: list[DeploymentScheduleCreate] | None = None
    paused: bool | None = None
    concurrency_limit: int | None = Field(None, ge=1, le=MAX_CONCURRENCY)
    concurrency_options: ConcurrencyOptions | None = None
    triggers: list[dict[str, Any]] | None = None
    job_variables: dict[str, Any] | None = None
    entrypoint: str | None = Field(None, max_length=MAX_ENTRYPOINT_LENGTH)
    work_pool_name: str | None = Field(None, min_length=1, max_length=MAX_NAME_LENGTH)
    work_queue_name: str | None = Field(None, min_length=1, max_length=MAX_NAME_LENGTH)
    pull_steps: list[dict[str, Any]] | None = Field(None, max_length=MAX_PULL_STEPS)

    @field_validator("pull_steps")
    @classmethod
    def _check_pull_steps(cls, value: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
        return check_pull_steps(value)


class DeploymentFlowRunCreate(BaseModel):
    """Start a run of a deployment: parameters override its defaults; ``scheduled_time`` None = now.

    A naive ``scheduled_time`` is taken as UTC.
    """

    model_config = ConfigDict(extra="forbid")

    parameters: dict[str, Any] = Field(default_factory=dict)
    tags: TagList = Field(default_factory=list, description="Added to the deployment's tags.")
    scheduled_time: dt.datetime | None = None
    idempotency_key: str | None = Field(None, max_length=500)
    job_variables: dict[str, Any] = Field(default_factory=dict)
    name: str | None = Field(None, min_length=1, max_length=MAX_NAME_LENGTH)
    created_by: Creator | None = None

    @field_validator("created_by")
    @classmethod
    def _check_creator(cls, value: Creator | None) -> Creator | None:
        return check_creator(value)

    @field_validator("scheduled_time")
    @classmethod
    def _aware(cls, value: dt.datetime | None) -> dt.datetime | None:
        return _utc(value)

    @field_validator("tags")
    @classmethod
    def _check_tags(cls, value: list[str]) -> list[str]:
        return _unique_tags(value)


class DeploymentFilter(BaseModel):
    """Narrow a list of deployments; every field given must match (AND)."""

    model_config = ConfigDict(extra="forbid")

    id: list[UUID] | None = None
    flow_id: list[UUID] | None = None
    flow_name: list[str] | None = Field(None, description="Any of these flow names.")
    name: list[str] | None = Field(None, description="Any of these deployment names.")
    name_like: str | None = Field(None, description="Case-insensitive substring of the name.")
    tags_all: list[str] | None = Field(None, description="Deployments carrying every one of these.")
    paused: bool | None = None
    status: DeploymentStatus | None = None
    limit: int = Field(100, ge=1, le=1000)
    offset: int = Field(0, ge=0, le=MAX_OFFSET)


def deployment_run_parameters(
    deployment: Deployment, overrides: Mapping[str, Any]
) -> tuple[dict[str, Any], list[str]]:
    """The parameters of a new run of ``deployment`` and the problems with them.

    Problems are listed only when the deployment enforces its parameter schema; each names the
    parameter (see ``validate_parameters``). An empty list means the run may be created.
    """
    merged = merge_parameters(deployment.parameters, overrides)
    if not deployment.enforce_parameter_schema:
        return merged, []
    return merged, validate_parameters(deployment.parameter_openapi_schema, merged)
