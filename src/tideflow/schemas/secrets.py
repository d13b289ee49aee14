"""Secrets on the wire: named strings the server keeps encrypted and never lists.

A secret's value travels in two places only: the body that sets it, and the answer of
``GET /api/secrets/name/{name}/value`` (which a ``read`` key cannot call). Every other answer carries
``MASK`` instead. Names follow the variable rules (lowercase letters, digits, ``_``, ``-``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tideflow.schemas.limits import MAX_OFFSET
from tideflow.schemas.variables import MAX_VARIABLE_NAME_LENGTH, check_variable_name

__all__ = [
    "MASK",
    "MAX_SECRET_VALUE_LENGTH",
    "SecretCreate",
    "SecretFilter",
    "SecretInfo",
    "SecretValue",
    "check_secret_value",
]

MASK = "********"
MAX_SECRET_VALUE_LENGTH = 10_000
"""Longest secret value, in characters."""


def check_secret_value(value: str) -> str:
    """``value`` when it is a non-empty string within the limit; ValueError otherwise (the
    message never quotes the value)."""
    if not isinstance(value, str):
        raise ValueError("a secret's value must be a string")
    if not value:
        raise ValueError("a secret's value must not be empty")
    if len(value) > MAX_SECRET_VALUE_LENGTH:
        raise ValueError(
            f"the value is {len(value)} characters, above the limit of "
            f"{MAX_SECRET_VALUE_LENGTH} for a secret"
        )
    if "\x00" in value:
        raise ValueError("NUL characters (\\u0000) are not allowed in a secret's value")
    return value


class SecretCreate(BaseModel):
    """Store a secret; with ``overwrite`` replace the value of an existing one (else 409)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        max_length=MAX_VARIABLE_NAME_LENGTH, description="Lowercase letters, digits, '_' and '-'."
    )
    # Checked by check_secret_value in the route, not here: a validation error would echo the value.
    value: str = Field(description="The secret text; stored encrypted, never listed.")
    overwrite: bool = False

    @field_validator("name")
    @classmethod
    def _check_name(cls, name: str) -> str:
        return check_variable_name(name, "secret")

    def __repr_args__(self) -> Any:  # never show the value (tracebacks, debuggers, logs)
        return [(k, MASK if k == "value" else v) for k, v in super().__repr_args__()]


class SecretInfo(BaseModel):
    """A stored secret as lists and reads show it: the value is always MASK."""

    id: UUID
    name: str
    value: str = MASK
    created: dt.datetime
    updated: dt.datetime


class SecretValue(BaseModel):
    """A secret's value (``GET /api/secrets/name/{name}/value``)."""

    name: str
    value: str

    def __repr_args__(self) -> Any:
        return [(k, MASK if k == "value" else v) for k, v in super().__repr_args__()]


class SecretFilter(BaseModel):
    """Which secrets to list (sorted by name)."""

    model_config = ConfigDict(extra="forbid")

    name_like: str | None = Field(None, max_length=MAX_VARIABLE_NAME_LENGTH)
    limit: int = Field(100, ge=1, le=1000)
    offset: int = Field(0, ge=0, le=MAX_OFFSET)
