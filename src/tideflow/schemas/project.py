"""``tideflow.yaml``: the deployments of a project folder and how a worker gets its code.

Pydantic models only (no YAML here): ``tideflow.deployments._project`` parses the file, substitutes
``{{ $ENV }}`` and ``{{ tideflow.variables.name }}`` and validates the result with ``ProjectFile``.
Unknown keys are errors, so a misspelt option is never silently ignored.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tideflow.schemas.deployments import MAX_PULL_STEPS, ConcurrencyLimitConfig, check_pull_steps

__all__ = [
    "MAX_PROJECT_DEPLOYMENTS",
    "ProjectDeployment",
    "ProjectFile",
    "ProjectSchedule",
    "ProjectWorkPool",
]

MAX_PROJECT_DEPLOYMENTS = 500  # bounds the work one file can cause


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ProjectSchedule(_Strict):
    """One schedule: exactly one of ``cron``, ``interval`` (seconds) or ``rrule``."""

    cron: str | None = None
    interval: float | None = Field(None, gt=0)
    rrule: str | None = None
    timezone: str | None = None
    anchor_date: str | None = None
    day_or: bool | None = None
    active: bool = True

    @model_validator(mode="after")
    def _one_kind(self) -> ProjectSchedule:
        kinds = [k for k in ("cron", "interval", "rrule") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError("a schedule needs exactly one of cron, interval or rrule")
        if self.anchor_date is not None and self.interval is None:
            raise ValueError("anchor_date goes with interval only")
        if self.day_or is not None and self.cron is None:
            raise ValueError("day_or goes with cron only")
        return self

    def as_schedule(self) -> dict[str, Any]:
        """The dict ``to_deployment(schedules=[...])`` accepts."""
        return self.model_dump(exclude_none=True)


class ProjectWorkPool(_Strict):
    """The work pool whose workers run the deployment, with its queue and job variables."""

    name: str = Field(min_length=1)
    work_queue_name: str | None = None
    job_variables: dict[str, Any] = Field(default_factory=dict)


class ProjectDeployment(_Strict):
    """One entry of ``deployments:``."""

    name: str = Field(min_length=1)
    entrypoint: str = Field(min_length=1, description="path/to/file.py:flow_function")
    parameters: dict[str, Any] = Field(default_factory=dict)
    description: str | None = None
    tags: list[str] = Field(default_factory=list)
    version: str | None = None
    schedules: list[ProjectSchedule] = Field(default_factory=list)
    triggers: list[dict[str, Any]] = Field(default_factory=list)
    work_pool: ProjectWorkPool
    concurrency_limit: int | ConcurrencyLimitConfig | None = Field(
        None, description="An int, or {limit: N, collision_strategy: ENQUEUE | CANCEL_NEW}."
    )

    @field_validator("concurrency_limit")
    @classmethod
    def _positive(cls, value: Any) -> Any:
        if isinstance(value, int) and value < 1:
            raise ValueError("must be at least 1")
        return value

    paused: bool = False
    pull: list[dict[str, Any]] | None = Field(None, max_length=MAX_PULL_STEPS)

    @field_validator("entrypoint")
    @classmethod
    def _entrypoint(cls, value: str) -> str:
        path, sep, name = value.rpartition(":")
        if not sep or not path or not name:
            raise ValueError("must be 'path/to/file.py:flow_function'")
        return value

    @field_validator("pull")
    @classmethod
    def _pull(cls, value: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
        return check_pull_steps(value)


class ProjectFile(_Strict):
    """The whole ``tideflow.yaml``."""

    name: str | None = None
    tideflow_version: str | None = None
    pull: list[dict[str, Any]] | None = Field(None, max_length=MAX_PULL_STEPS)
    deployments: list[ProjectDeployment] = Field(
        default_factory=list, max_length=MAX_PROJECT_DEPLOYMENTS
    )

    @field_validator("pull")
    @classmethod
    def _pull(cls, value: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
        return check_pull_steps(value)

    @model_validator(mode="after")
    def _unique_names(self) -> ProjectFile:
        seen: set[tuple[str, str]] = set()
        for index, d in enumerate(self.deployments):
            key = (d.entrypoint.rpartition(":")[2], d.name)
            if key in seen:
                raise ValueError(f"deployments[{index}]: deployment {d.name!r} appears twice")
            seen.add(key)
        return self
