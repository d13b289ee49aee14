"""Work pools, work queues and workers on the wire, and the pure rules of a pool's job template.

A work pool has a type (``process``, ``docker``, ``kubernetes``) and a *base job template*:
``{"job_configuration": {...}, "variables": <JSON schema>}``. The schema declares the job variables a
deployment or a run may set (with their defaults); the job configuration refers to them with
``{{ name }}`` placeholders, which a worker fills from the merged variables (``render_job``).
Job variables are validated against the schema: an unknown name or a value of the wrong type is
refused, naming the variable, so an option is never silently ignored.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping
from enum import StrEnum
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tideflow.schemas.limits import MAX_DESCRIPTION_LENGTH, MAX_NAME_LENGTH
from tideflow.schemas.parameters import validate_parameters

__all__ = [
    "DEFAULT_QUEUE_NAME",
    "MAX_TEMPLATE_BYTES",
    "WorkPool",
    "WorkPoolCreate",
    "WorkPoolType",
    "WorkPoolUpdate",
    "WorkQueue",
    "WorkQueueCreate",
    "WorkQueueUpdate",
    "Worker",
    "WorkerStatus",
    "check_base_job_template",
    "check_pool_name",
    "default_base_job_template",
    "job_variable_defaults",
    "merge_job_variables",
    "render_job",
    "validate_job_variables",
]

DEFAULT_QUEUE_NAME = "default"
MAX_TEMPLATE_BYTES = 256 * 1024  # a template is a few KiB; this bounds what validating it costs
MAX_CONCURRENCY = 1_000_000
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


class WorkPoolType(StrEnum):
    PROCESS = "process"
    DOCKER = "docker"
    KUBERNETES = "kubernetes"


class WorkerStatus(StrEnum):
    ONLINE = "ONLINE"  # heartbeating within the heartbeat timeout
    OFFLINE = "OFFLINE"


def check_pool_name(value: str, what: str = "work pool name") -> str:
    """``value`` if it is a valid pool or queue name, else ValueError naming the problem."""
    if not value or not value.strip():
        raise ValueError(f"{what} must not be empty")
    if "/" in value:
        raise ValueError(f"{what} {value!r} must not contain '/'")
    if value != value.strip():
        raise ValueError(f"{what} {value!r} must not start or end with whitespace")
    return value


def _env_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "title": "Environment variables",
        "description": "Set in the flow run's environment.",
        "additionalProperties": {"type": "string"},
        "default": {},
    }


def _common() -> dict[str, Any]:
    return {
        "name": {"type": "string", "title": "Name", "description": "Name given to the job."},
        "env": _env_schema(),
        "labels": {
            "type": "object",
            "title": "Labels",
            "additionalProperties": {"type": "string"},
            "default": {},
        },
        "command": {
            "type": "string",
            "title": "Command",
            "description": "Command that runs the flow run (default: tideflow's own).",
        },
    }


def default_base_job_template(pool_type: WorkPoolType | str) -> dict[str, Any]:
    """The base job template a new pool of ``pool_type`` gets when none is given."""
    kind = WorkPoolType(pool_type)
    properties = _common()
    if kind is WorkPoolType.PROCESS:
        properties |= {
            "working_dir": {
                "type": "string",
                "title": "Working directory",
                "description": "Directory the flow run's process starts in.",
            },
            "stream_output": {
                "type": "boolean",
                "title": "Stream output",
                "description": "Copy the run's stdout and stderr to the worker's.",
                "default": True,
            },
        }
    elif kind is WorkPoolType.DOCKER:
        properties |= {
            "image": {"type": "string", "title": "Image", "default": "python:3.12-slim"},
            "image_pull_policy": {"enum": ["IfNotPresent", "Always", "Never"]},
            "networks": {"type": "array", "items": {"type": "string"}, "default": []},
            "volumes": {
                "type": "array",
                "items": {"type": "string"},
                "default": [],
                "description": "Mounts as 'host_path_or_volume:container_path[:mode]'.",
            },
            "auto_remove": {
                "type": "boolean",
                "default": False,
                "description": "Remove the container once its exit code is read.",
            },
            "mem_limit": {"type": "string", "description": "Memory limit, e.g. '512m' or '2g'."},
            "cpus": {"type": "number", "exclusiveMinimum": 0, "description": "CPUs, e.g. 1.5."},
            "stream_output": {"type": "boolean", "default": True},
        }
    else:
        properties |= {
            "image": {"type": "string", "title": "Image", "default": "python:3.12-slim"},
            "namespace": {"type": "string", "default": "default"},
            "service_account_name": {"type": "string"},
            "image_pull_policy": {"enum": ["IfNotPresent", "Always", "Never"]},
            "finished_job_ttl": {"type": "integer", "minimum": 0},
            "cpu_request": {"type": "string"},
            "memory_request": {"type": "string"},
            "cpu_limit": {"type": "string"},
            "memory_limit": {"type": "string"},
            "stream_output": {"type": "boolean", "default": True},
        }
    configuration = {name: "{{ " + name + " }}" for name in properties}
    return {
        "job_configuration": configuration,
        "variables": {"type": "object", "properties": properties},
    }


def _placeholders(value: Any) -> set[str]:
    if isinstance(value, str):
        return set(_PLACEHOLDER.findall(value))
    if isinstance(value, Mapping):
        return set().union(*(_placeholders(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(_placeholders(v) for v in value)) if value else set()
    return set()


def check_base_job_template(template: Mapping[str, Any]) -> list[str]:
    """Problems with a base job template, each naming where; [] when it is usable."""
    if len(json.dumps(template, default=str)) > MAX_TEMPLATE_BYTES:
        return [f"the template is larger than {MAX_TEMPLATE_BYTES // 1024} KiB"]
    unknown = set(template) - {"job_configuration", "variables"}
    if unknown:
        return [
            f"unknown key {sorted(unknown)[0]!r} (a template has 'job_configuration' and "
            "'variables')"
        ]
    variables = template.get("variables", {})
    configuration = template.get("job_configuration", {})
    if not isinstance(variables, Mapping):
        return ["variables must be a JSON schema object"]
    if not isinstance(configuration, Mapping):
        return ["job_configuration must be an object"]
    properties = variables.get("properties", {})
    if not isinstance(properties, Mapping):
        return ["variables.properties must be an object"]
    problems = [
        f"variables.properties.{name} must be a JSON schema object"
        for name, schema in properties.items()
        if not isinstance(schema, Mapping)
    ]
    for name in sorted(_placeholders(configuration) - set(properties)):
        problems.append(
            f"job_configuration uses '{{{{ {name} }}}}' but variables declares no {name!r}"
        )
    return problems


def job_variable_defaults(template: Mapping[str, Any]) -> dict[str, Any]:
    """The ``default`` of each declared variable that has one."""
    properties = (template.get("variables") or {}).get("properties") or {}
    return {
        name: schema["default"]
        for name, schema in properties.items()
        if isinstance(schema, Mapping) and "default" in schema
    }


def validate_job_variables(
    template: Mapping[str, Any], values: Mapping[str, Any], *, partial: bool = True
) -> list[str]:
    """Problems with job variables under the template's schema, each naming the variable.

    A variable the schema does not declare is refused (it would be ignored otherwise); ``partial``
    skips the check for required variables (a deployment's set may be completed by a run's).
    """
    schema = template.get("variables") or {}
    properties = schema.get("properties") or {}
    problems: list[str] = []
    for name in values:
        if name not in properties:
            known = ", ".join(sorted(properties)) or "none"
            problems.append(
                f"unknown job variable {name!r}; the work pool's template declares: {known}"
            )
    typed = {k: v for k, v in values.items() if k in properties}
    checked = validate_parameters({**schema, "additionalProperties": False}, typed, partial=partial)
    for problem in checked:
        if problem.startswith("parameter "):
            problem = "job variable " + problem.removeprefix("parameter ")
        elif problem.startswith("missing required parameter "):
            problem = "missing required job variable " + problem.split("parameter ", 1)[1]
        problems.append(problem)
    return problems


def merge_job_variables(*layers: Mapping[str, Any] | None) -> dict[str, Any]:
    """Later layers win, key by key (pool defaults < deployment < run); shallow, like parameters."""
    merged: dict[str, Any] = {}
    for layer in layers:
        merged.update(layer or {})
    return merged


def _fill(value: Any, variables: Mapping[str, Any]) -> Any:
    if isinstance(value, str):
        whole = _PLACEHOLDER.fullmatch(value.strip())
        if whole is not None:  # the whole string is one placeholder: keep the value's type
            return variables.get(whole.group(1))
        return _PLACEHOLDER.sub(lambda m: _text(variables.get(m.group(1))), value)
    if isinstance(value, Mapping):
        return {k: _fill(v, variables) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, variables) for v in value]
    return value


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value)


def render_job(template: Mapping[str, Any], variables: Mapping[str, Any]) -> dict[str, Any]:
    """The job configuration with every ``{{ name }}`` filled from the defaults and ``variables``.

    A placeholder that is a whole value takes the variable's value as it is (a dict stays a dict;
    an unset variable becomes None); inside a longer string it is inserted as text.
    """
    values = merge_job_variables(job_variable_defaults(template), variables)
    return dict(_fill(template.get("job_configuration") or {}, values))


def _usable_template(value: dict[str, Any] | None) -> dict[str, Any] | None:
    if value is not None:
        problems = check_base_job_template(value)
        if problems:
            raise ValueError("; ".join(problems))
    return value


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WorkPool(BaseModel):
    """A pool of infrastructure that workers of its type poll for flow runs."""

    model_config = ConfigDict(from_attributes=True, extra="ignore")

    id: UUID
    name: str
    type: WorkPoolType
    description: str | None = None
    base_job_template: dict[str, Any] = Field(default_factory=dict)
    concurrency_limit: int | None = None
    is_paused: bool = False
    default_queue_id: UUID | None = None
    created: dt.datetime
    updated: dt.datetime


class WorkPoolCreate(_Input):
    """Create a pool; ``base_job_template`` defaults to the type's (``default_base_job_template``)."""

    name: str = Field(min_length=1, max_length=MAX_NAME_LENGTH)
    type: WorkPoolType = WorkPoolType.PROCESS
    description: str | None = Field(None, max_length=MAX_DESCRIPTION_LENGTH)
    base_job_template: dict[str, Any] | None = None
    concurrency_limit: int | None = Field(None, ge=0, le=MAX_CONCURRENCY)
    is_paused: bool = False

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        return check_pool_name(value)

    @field_validator("base_job_template")
    @classmethod
    def _check_template(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return _usable_template(value)


class WorkPoolUpdate(_Input):
    """Change a pool; only the fields sent change. ``concurrency_limit: null`` removes the limit."""

    description: str | None = Field(None, max_length=MAX_DESCRIPTION_LENGTH)
    base_job_template: dict[str, Any] | None = None
    concurrency_limit: int | None = Field(None, ge=0, le=MAX_CONCURRENCY)
    is_paused: bool | None = None

    @field_validator("base_job_template")
    @classmethod
    def _check_template(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return _usable_template(value)


class WorkQueue(BaseModel):
    """A queue of a pool: deployments send their runs to one; lower ``priority`` goes first."""

    model_config = ConfigDict(from_attributes=True, extra="ignore")

    id: UUID
    name: str
    work_pool_id: UUID
    work_pool_name: str
    description: str | None = None
    priority: int = 1
    concurrency_limit: int | None = None
    is_paused: bool = False
    created: dt.datetime
    updated: dt.datetime


class WorkQueueCreate(_Input):
    name: str = Field(min_length=1, max_length=MAX_NAME_LENGTH)
    description: str | None = Field(None, max_length=MAX_DESCRIPTION_LENGTH)
    priority: int | None = Field(None, ge=1, le=MAX_CONCURRENCY, description="Default: last.")
    concurrency_limit: int | None = Field(None, ge=0, le=MAX_CONCURRENCY)
    is_paused: bool = False

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        return check_pool_name(value, "work queue name")


class WorkQueueUpdate(_Input):
    """Change a queue; only the fields sent change."""

    name: str | None = Field(None, min_length=1, max_length=MAX_NAME_LENGTH)
    description: str | None = Field(None, max_length=MAX_DESCRIPTION_LENGTH)
    priority: int | None = Field(None, ge=1, le=MAX_CONCURRENCY)
    concurrency_limit: int | None = Field(None, ge=0, le=MAX_CONCURRENCY)
    is_paused: bool | None = None

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str | None) -> str | None:
        return None if value is None else check_pool_name(value, "work queue name")


class Worker(BaseModel):
    """A worker of a pool as the server last heard from it."""

    model_config = ConfigDict(from_attributes=True, extra="ignore")

    id: UUID
    name: str
    work_pool_id: UUID
    last_heartbeat: dt.datetime
    status: WorkerStatus
    created: dt.datetime
