"""Variables on the wire: named JSON values with tags, shared by every flow, deployment and automation.

Names are lowercase letters, digits, ``_`` and ``-`` (so a name is safe in a URL path and in a
template: ``{{ variables.my_name }}``); a value is any JSON value whose encoding is at most
``MAX_VARIABLE_VALUE_BYTES`` bytes. The SDK validates with these models too, so a bad name or a value
that is too large fails before anything is sent.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tideflow.schemas.actions import TagList
from tideflow.schemas.limits import MAX_OFFSET

__all__ = [
    "MAX_VARIABLE_NAME_LENGTH",
    "MAX_VARIABLE_VALUE_BYTES",
    "VARIABLE_NAME_PATTERN",
    "Variable",
    "VariableCreate",
    "VariableFilter",
    "VariableUpdate",
    "check_variable_name",
    "check_variable_value",
]

VARIABLE_NAME_PATTERN = r"^[a-z0-9_-]{1,255}$"
MAX_VARIABLE_NAME_LENGTH = 255
MAX_VARIABLE_VALUE_BYTES = 10_000
"""The largest value, counted as its compact JSON encoding (UTF-8 bytes)."""


def check_variable_name(name: str, kind: str = "variable") -> str:
    """``name`` when it is a valid variable (or secret) name; ValueError naming the rule otherwise."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"a {kind} name must not be empty")
    if len(name) > MAX_VARIABLE_NAME_LENGTH:
        raise ValueError(
            f"a {kind} name is at most {MAX_VARIABLE_NAME_LENGTH} characters (got {len(name)})"
        )
    if not all(c.isascii() and (c.islower() or c.isdigit() or c in "_-") for c in name):
        raise ValueError(
            f"{kind} name {name[:60]!r}: use lowercase letters, digits, '_' and '-' only"
        )
    return name


def _has_nul(value: Any) -> bool:
    # Iterative: the depth is bounded at the door, but a walk must never recurse on user data.
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return False


def check_variable_value(value: Any) -> Any:
    """``value`` when it is JSON within the size limit; ValueError saying what is wrong otherwise."""
    try:
        encoded = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"a variable's value must be JSON data: {exc}") from None
    except RecursionError:
        raise ValueError("a variable's value nests too deeply") from None
    if "\\u0000" in encoded and _has_nul(value):  # PostgreSQL cannot store NUL in JSON text
        raise ValueError("NUL characters (\\u0000) are not allowed in a variable's value")
    size = len(encoded.encode("utf-8", "surrogatepass"))
    if size > MAX_VARIABLE_VALUE_BYTES:
        raise ValueError(
            f"the value is {size} bytes as JSON, above the limit of "
            f"{MAX_VARIABLE_VALUE_BYTES} bytes for a variable"
        )
    return value


class _Named(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("value", check_fields=False)
    @classmethod
    def _check_value(cls, value: Any) -> Any:
        return check_variable_value(value)


class VariableCreate(_Named):
    """Create a variable; 409 when one of that name exists."""

    name: str = Field(
        max_length=MAX_VARIABLE_NAME_LENGTH,
        description="Lowercase letters, digits, '_' and '-'.",
    )
    value: Any = Field(description="Any JSON value.")
    tags: TagList = Field(default_factory=list)

    @field_validator("name")
    @classmethod
    def _check_name(cls, name: str) -> str:
        return check_variable_name(name)


class VariableUpdate(_Named):
    """Change a variable's value and/or tags (fields left out keep what they hold)."""

    value: Any = Field(None, description="Any JSON value.")
    tags: TagList | None = None


class Variable(BaseModel):
    """A stored variable."""

    id: UUID
    name: str
    value: Any = None
    tags: list[str] = Field(default_factory=list)
    created: dt.datetime
    updated: dt.datetime


class VariableFilter(BaseModel):
    """Which variables to list, sorted by name; every given field narrows the list."""

    model_config = ConfigDict(extra="forbid")

    name_like: str | None = Field(
        None, max_length=MAX_VARIABLE_NAME_LENGTH, description="Substring of the name."
    )
    tags_all: TagList | None = Field(None, description="Variables carrying every one of these.")
    limit: int = Field(100, ge=1, le=1000)
    offset: int = Field(0, ge=0, le=MAX_OFFSET)
