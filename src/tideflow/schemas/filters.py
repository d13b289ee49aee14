"""Filters for list endpoints: each field narrows the result, all of them AND-ed."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from tideflow.schemas.limits import MAX_OFFSET
from tideflow.schemas.states import StateType

__all__ = [
    "FlowFilter",
    "FlowRunFilter",
    "FlowRunSort",
    "LogFilter",
]


class _Filter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limit: int = Field(100, ge=1, le=1000)
    offset: int = Field(0, ge=0, le=MAX_OFFSET)


class FlowFilter(_Filter):
    name: list[str] | None = Field(None, description="Any of these exact names.")
    name_like: str | None = Field(None, description="Case-insensitive substring of the name.")


class FlowRunSort(StrEnum):
    START_TIME_DESC = "START_TIME_DESC"
    START_TIME_ASC = "START_TIME_ASC"
    EXPECTED_START_TIME_DESC = "EXPECTED_START_TIME_DESC"
    EXPECTED_START_TIME_ASC = "EXPECTED_START_TIME_ASC"
    CREATED_DESC = "CREATED_DESC"
    CREATED_ASC = "CREATED_ASC"
    NAME_ASC = "NAME_ASC"


class FlowRunFilter(_Filter):
    id: list[UUID] | None = None
    flow_id: list[UUID] | None = None
    flow_name: list[str] | None = Field(None, description="Any of these flow names.")
    deployment_id: list[UUID] | None = None
    work_pool_name: list[str] | None = Field(
        None, max_length=100, description="Runs in any of these work pools."
    )
    work_queue_name: list[str] | None = Field(
        None,
        max_length=100,
        description="Runs in a work queue of any of these names (of those pools, with "
        "work_pool_name).",
    )
    state_type: list[StateType] | None = None
    state_name: list[str] | None = None
    tags_all: list[str] | None = Field(None, description="Runs carrying every one of these tags.")
    parent_flow_run_id: UUID | None = None
    start_time_after: dt.datetime | None = None
    start_time_before: dt.datetime | None = None
    expected_start_time_after: dt.datetime | None = None
    expected_start_time_before: dt.datetime | None = None
    created_after: dt.datetime | None = None
    created_before: dt.datetime | None = None
    sort: FlowRunSort = FlowRunSort.CREATED_DESC


class LogFilter(_Filter):
    flow_run_id: list[UUID] | None = None
    task_run_id: list[UUID] | None = Field(None, description="Records of these task runs.")
    level_ge: int | None = Field(None, ge=0, le=100, description="Records at or above this level.")
    timestamp_after: dt.datetime | None = None
    timestamp_before: dt.datetime | None = None
    limit: int = Field(1000, ge=1, le=10000)
    sort_desc: bool = False
