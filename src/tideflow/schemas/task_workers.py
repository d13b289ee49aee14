"""Background task runs on the wire: what ``Task.delay`` sends to create one (``TaskRunCreate``) and
what a task worker's claim answers (``TaskRunClaimResult``). The websocket frames are documented in
docs/adr/0005-background-tasks.md."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from tideflow.schemas.task_runs import TaskRun

__all__ = ["TaskRunClaimResult", "TaskRunCreate"]


class TaskRunCreate(BaseModel):
    """A background task run to enqueue: created Scheduled; the client-given ``id`` makes a resend
    after a lost answer harmless (the stored run is answered)."""

    model_config = ConfigDict(extra="forbid")

    id: UUID
    name: str = Field(min_length=1, max_length=200)
    task_name: str = Field(min_length=1, max_length=200)
    tags: list[str] = Field(default_factory=list, max_length=100)
    parameters: dict[str, Any] = Field(default_factory=dict)


class TaskRunClaimResult(BaseModel):
    """One claim's outcome: ``claimed`` with the run now Pending for this worker, or why not."""

    task_run_id: UUID
    claimed: bool
    reason: str | None = None
    task_run: TaskRun | None = None
