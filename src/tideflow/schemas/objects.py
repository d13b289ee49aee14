"""Objects the API returns: flows, flow runs, their state history, and run logs."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tideflow.schemas.limits import MAX_ID_LENGTH, MAX_NAME_LENGTH
from tideflow.schemas.states import State, StateType

__all__ = [
    "Creator",
    "Flow",
    "FlowRun",
    "Log",
    "OrchestrationResult",
    "SetStateStatus",
    "check_creator",
]

MAX_CREATOR_TYPE_LENGTH = 100


class _Object(BaseModel):
    model_config = ConfigDict(from_attributes=True, extra="ignore")


class Flow(_Object):
    """A flow, created on first use and unique by name."""

    id: UUID
    name: str
    created: dt.datetime
    updated: dt.datetime
    tags: list[str] = Field(default_factory=list)


class Creator(_Object):
    """Who or what created a run: a user (CLI/SDK), an automation, a schedule or the web UI."""

    type: str  # "user" | "automation" | "schedule" | "deployment" | "ui"
    id: str  # a resource id, e.g. "tideflow.user.alice"
    name: str | None = None


def check_creator(creator: Creator | None) -> Creator | None:
    """``creator`` if a client may send it, else ValueError naming the problem.

    Its id becomes the id of a related resource on the run's events, so it must be a non-empty id
    of bounded length. Checked on the create bodies only: runs already stored still read back.
    """
    if creator is None:
        return None
    if not creator.id.strip():
        raise ValueError("id must not be empty: it names the creator as a resource")
    if len(creator.id) > MAX_ID_LENGTH:
        raise ValueError(f"id is {len(creator.id)} characters, above the limit of {MAX_ID_LENGTH}")
    if len(creator.type) > MAX_CREATOR_TYPE_LENGTH:
        raise ValueError(
            f"type is {len(creator.type)} characters, above the limit of {MAX_CREATOR_TYPE_LENGTH}"
        )
    if creator.name is not None and len(creator.name) > MAX_NAME_LENGTH:
        raise ValueError(
            f"name is {len(creator.name)} characters, above the limit of {MAX_NAME_LENGTH}"
        )
    return creator


class FlowRun(_Object):
    """A run of a flow, with its current state; ``state_history`` is filled by ``read_flow_run_states``."""

    id: UUID
    name: str
    flow_id: UUID
    flow_name: str | None = None
    deployment_id: UUID | None = None
    deployment_name: str | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list)
    state: State | None = None
    state_type: StateType | None = None
    state_name: str | None = None
    expected_start_time: dt.datetime | None = None
    start_time: dt.datetime | None = None
    end_time: dt.datetime | None = None
    total_run_time: float = 0.0
    run_count: int = 0
    parent_flow_run_id: UUID | None = None
    parent_task_run_id: UUID | None = None
    idempotency_key: str | None = None
    created_by: Creator | None = None
    work_queue_id: UUID | None = None
    job_variables: dict[str, Any] = Field(
        default_factory=dict, description="This run's job variables (over its deployment's)."
    )
    created: dt.datetime
    updated: dt.datetime

    @field_validator("job_variables", mode="before")
    @classmethod
    def _no_null_variables(cls, value: Any) -> Any:
        return {} if value is None else value  # runs stored before job variables existed

    @property
    def duration(self) -> float | None:
        """Seconds between start and end (or now, while running); None before it started."""
        if self.start_time is None:
            return None
        end = self.end_time or dt.datetime.now(dt.UTC)
        return max(0.0, (end - self.start_time).total_seconds())


class Log(_Object):
    """One log record of a run."""

    id: int | None = None
    flow_run_id: UUID | None = None  # None: a background task run's record
    task_run_id: UUID | None = None
    name: str
    level: int
    message: str
    timestamp: dt.datetime


class SetStateStatus(StrEnum):
    ACCEPT = "ACCEPT"  # the proposed state is now the run's state
    WAIT = (
        "WAIT"  # not now (e.g. a concurrency slot); ``state`` is what the run was moved to instead
    )
    REJECT = "REJECT"  # refused; the API answers 409 with the reason


class OrchestrationResult(_Object):
    """Answer to a state proposal."""

    status: SetStateStatus
    state: State
    reason: str | None = None
    run: FlowRun | None = None
