"""Task runs on the wire: what a flow's process reports (``TaskRunReport``, in batches), what the
server answers (``TaskRunReportResult``), the stored ``TaskRun`` and its ``TaskRunFilter``."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from tideflow.schemas.filters import _Filter
from tideflow.schemas.states import State, StateType

__all__ = [
    "TaskRun",
    "TaskRunFilter",
    "TaskRunReport",
    "TaskRunReportResult",
    "TaskRunSort",
]

MAX_STATES_PER_REPORT = 1000


class TaskRunReport(BaseModel):
    """One task run as its process knows it, with the states it entered since its last report."""

    model_config = ConfigDict(extra="forbid")

    id: UUID
    flow_run_id: UUID | None = None
    name: str = Field(min_length=1, max_length=200)
    task_name: str = Field(min_length=1, max_length=200)
    tags: list[str] = Field(default_factory=list, max_length=100)
    parameters: dict[str, Any] = Field(default_factory=dict)
    task_inputs: dict[str, list[UUID]] = Field(default_factory=dict)
    run_count: int = Field(0, ge=0, le=1_000_000)
    start_time: dt.datetime | None = None
    end_time: dt.datetime | None = None
    result_location: str | None = Field(None, max_length=2000)
    states: list[State] = Field(min_length=1, max_length=MAX_STATES_PER_REPORT)


class TaskRunReportResult(BaseModel):
    """How many states were stored; those refused (illegal transition, unknown flow run) and why."""

    accepted: int = 0
    duplicates: int = 0
    refused: list[dict[str, Any]] = Field(default_factory=list)


class TaskRun(BaseModel):
    """A stored task run with its current state; ``state_history`` oldest first."""

    model_config = ConfigDict(extra="ignore")

    id: UUID
    flow_run_id: UUID | None = None
    name: str
    task_name: str
    tags: list[str] = Field(default_factory=list)
    parameters: dict[str, Any] = Field(default_factory=dict)
    task_inputs: dict[str, list[UUID]] = Field(default_factory=dict)
    state: State | None = None
    state_type: StateType | None = None
    state_name: str | None = None
    state_history: list[State] = Field(default_factory=list)
    run_count: int = 0
    start_time: dt.datetime | None = None
    end_time: dt.datetime | None = None
    result_location: str | None = None
    # Background runs (Task.delay, ADR 0005): the task worker holding it and how often it was handed
    # to a worker (more than 1: its worker died and it was redelivered).
    worker_id: UUID | None = None
    deliveries: int = 0
    created: dt.datetime
    updated: dt.datetime

    @property
    def duration(self) -> float | None:
        """Seconds between start and end (or now, while running); None before it started."""
        if self.start_time is None:
            return None
        end = self.end_time or dt.datetime.now(dt.UTC)
        return max(0.0, (end - self.start_time).total_seconds())


class TaskRunSort(StrEnum):
    CREATED_DESC = "CREATED_DESC"
    CREATED_ASC = "CREATED_ASC"
    START_TIME_ASC = "START_TIME_ASC"
    START_TIME_DESC = "START_TIME_DESC"


class TaskRunFilter(_Filter):
    id: list[UUID] | None = None
    flow_run_id: list[UUID] | None = None
    task_name: list[str] | None = Field(None, description="Any of these task names.")
    name_like: str | None = Field(None, max_length=200, description="Substring of the run name.")
    state_type: list[StateType] | None = None
    state_name: list[str] | None = None
    tags_all: list[str] | None = Field(None, description="Runs carrying every one of these tags.")
    sort: TaskRunSort = TaskRunSort.CREATED_DESC
