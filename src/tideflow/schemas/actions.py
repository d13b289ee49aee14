"""Request bodies: what a client sends to create or change things."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any
from uuid import UUID

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_serializer,
    field_validator,
    model_validator,
)

from tideflow.schemas.limits import (
    MAX_NAME_LENGTH,
    MAX_TAG_LENGTH,
    MAX_TAGS,
    has_lone_surrogate,
    replace_lone_surrogates,
)
from tideflow.schemas.objects import Creator, check_creator
from tideflow.schemas.states import State

__all__ = [
    "FlowCreate",
    "FlowRunCreate",
    "FlowRunUpdate",
    "LogCreate",
    "StateProposal",
    "TagList",
]

TagList = Annotated[
    list[Annotated[str, StringConstraints(max_length=MAX_TAG_LENGTH)]], Field(max_length=MAX_TAGS)
]
"""Tags as a client may send them: at most MAX_TAGS, each at most MAX_TAG_LENGTH characters."""


class _Action(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FlowCreate(_Action):
    """Create a flow, or return the existing one of that name."""

    name: str = Field(min_length=1, max_length=MAX_NAME_LENGTH)
    tags: TagList = Field(default_factory=list)


class FlowRunCreate(_Action):
    """Create a flow run. Give ``flow_id`` or ``flow_name`` (the flow is created if new)."""

    flow_id: UUID | None = None
    flow_name: str | None = Field(None, min_length=1, max_length=MAX_NAME_LENGTH)
    name: str | None = Field(
        None,
        max_length=MAX_NAME_LENGTH,
        description="Run name; a readable one is generated when omitted.",
    )
    parameters: dict[str, Any] = Field(default_factory=dict)
    tags: TagList = Field(default_factory=list)
    state: State | None = Field(None, description="Initial state; default Pending.")
    parent_flow_run_id: UUID | None = None
    parent_task_run_id: UUID | None = None
    idempotency_key: str | None = Field(None, max_length=500)
    created_by: Creator | None = None

    @field_validator("created_by")
    @classmethod
    def _check_creator(cls, value: Creator | None) -> Creator | None:
        return check_creator(value)

    @model_validator(mode="after")
    def _one_flow(self) -> FlowRunCreate:
        if self.flow_id is None and self.flow_name is None:
            raise ValueError("flow_id or flow_name is required")
        return self


class FlowRunUpdate(_Action):
    """Change a flow run's name (the engine applies a flow's ``flow_run_name`` to deployment runs)."""

    name: str = Field(min_length=1, max_length=200)


class StateProposal(_Action):
    """Propose a new state for a run.

    ``force`` skips the transition rules (an operator override). ``expected_state_id`` makes the
    proposal a compare-and-set: it applies only while the run's current state has that id (how a
    runner claims a run: two claims of the same Scheduled state never both succeed).
    """

    state: State
    force: bool = False
    expected_state_id: UUID | None = None


class LogCreate(_Action):
    """One log record sent by a run (logs are sent in batches): of a flow run (and maybe one of its
    task runs), or of a background task run alone."""

    flow_run_id: UUID | None = None
    task_run_id: UUID | None = None
    name: str = Field(max_length=500)
    level: int = Field(ge=0, le=100)
    message: str
    timestamp: dt.datetime

    @model_validator(mode="after")
    def _of_a_run(self) -> LogCreate:
        if self.flow_run_id is None and self.task_run_id is None:
            raise ValueError("a log record needs flow_run_id or task_run_id")
        return self

    @field_serializer("name", "message")
    def _sendable(self, value: str) -> str:
        # Log text is kept, never refused: a lone surrogate (text decoded with "surrogateescape",
        # e.g. a file name's bytes) cannot be encoded as UTF-8 and would fail the whole batch, so
        # it is sent as U+FFFD. Records are often built with model_construct: this runs anyway.
        return replace_lone_surrogates(value) if has_lone_surrogate(value) else value
