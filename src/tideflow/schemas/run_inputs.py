"""Flow run inputs on the wire: values sent to a run under a key, and resuming a paused run.

A key is letters, digits, ``_``, ``-`` and ``.`` (safe in a URL path); a value is any JSON value whose
compact encoding is at most ``MAX_INPUT_VALUE_BYTES``. A pause names its keys in its state's details
(``run_input_keyset``): ``schema`` holds the JSON schema of the input it waits for and ``response``
receives the input a resume carries.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = [
    "INPUT_KEY_PATTERN",
    "MAX_INPUT_VALUE_BYTES",
    "FlowRunInput",
    "FlowRunInputCreate",
    "FlowRunInputFilter",
    "ResumeFlowRun",
    "check_input_value",
    "keyset_for",
]

INPUT_KEY_PATTERN = r"^[A-Za-z0-9_.-]{1,200}$"
MAX_INPUT_VALUE_BYTES = 512_000
"""The largest input, counted as its compact JSON encoding (UTF-8 bytes)."""


def check_input_value(value: Any, what: str = "input") -> Any:
    """``value`` when its JSON encoding fits the limit; ValueError with its size otherwise."""
    try:
        text = json.dumps(value, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"the {what} is not JSON: {exc}") from None
    size = len(text.encode())
    if size > MAX_INPUT_VALUE_BYTES:
        raise ValueError(
            f"the {what} is {size} bytes as JSON, above the limit of {MAX_INPUT_VALUE_BYTES} bytes"
        )
    return value


def keyset_for(key: str) -> dict[str, str]:
    """The keys a pause with key ``key`` uses: its input's schema, description and response."""
    return {
        "schema": f"{key}-schema",
        "description": f"{key}-description",
        "response": f"{key}-response",
    }


class FlowRunInputCreate(BaseModel):
    """One input sent to a run."""

    model_config = ConfigDict(extra="forbid")

    key: str = Field(pattern=INPUT_KEY_PATTERN, description="Unique within the run.")
    value: Any = Field(description="Any JSON value.")
    sender: str | None = Field(
        None, max_length=200, description="Who sent it, e.g. tideflow.flow-run.<id>."
    )

    @field_validator("value")
    @classmethod
    def _fits(cls, value: Any) -> Any:
        return check_input_value(value)


class FlowRunInput(BaseModel):
    """An input of a run as stored."""

    model_config = ConfigDict(from_attributes=True, extra="ignore")

    id: UUID
    flow_run_id: UUID
    key: str
    value: Any = None
    sender: str | None = None
    acked: dt.datetime | None = None
    created: dt.datetime


class FlowRunInputFilter(BaseModel):
    """Which inputs of a run to list, oldest first."""

    model_config = ConfigDict(extra="forbid")

    prefix: str | None = Field(None, max_length=200, description="Keys starting with this.")
    exclude_keys: list[str] = Field(default_factory=list, max_length=1000)
    unacked_only: bool = Field(False, description="Leave out inputs a receiver acknowledged.")
    created_after: dt.datetime | None = Field(
        None, description="Inputs created at or after this time (a receiver's cursor)."
    )
    limit: int = Field(100, ge=1, le=1000)


class ResumeFlowRun(BaseModel):
    """Resume a paused or suspended run, with the input it waits for."""

    model_config = ConfigDict(extra="forbid")

    run_input: dict[str, Any] | None = Field(
        None, description="The input, checked against the JSON schema the pause stored."
    )

    @field_validator("run_input")
    @classmethod
    def _fits(cls, value: Any) -> Any:
        return check_input_value(value, "run input") if value is not None else None
