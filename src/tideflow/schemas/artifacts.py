"""Artifacts on the wire: markdown, tables, links and progress that runs publish for people to see.

An artifact may carry a ``key`` (lowercase letters, digits and ``-``): every artifact created with the
same key is a new version of it, and the newest is its latest. Artifacts created inside a run carry
its flow-run (and task-run) id. ``data`` depends on ``type``:

- ``markdown``: the text;
- ``table``: a list of rows (objects or lists) or an object of columns (name -> list of values);
- ``link``: ``{"link": "https://...", "link_text": "..."}`` (http, https or mailto only);
- ``progress``: a number from 0 to 100 (change it with ``PATCH``).
"""

from __future__ import annotations

import datetime as dt
import json
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tideflow.schemas.limits import MAX_OFFSET

__all__ = [
    "ARTIFACT_KEY_PATTERN",
    "MAX_ARTIFACT_DATA_BYTES",
    "Artifact",
    "ArtifactCreate",
    "ArtifactFilter",
    "ArtifactType",
    "ArtifactUpdate",
    "check_artifact_data",
    "check_artifact_key",
    "table_rows",
]

ARTIFACT_KEY_PATTERN = r"^[a-z0-9-]{1,255}$"
MAX_ARTIFACT_DATA_BYTES = 1_000_000
"""The largest ``data``, counted as its compact JSON encoding (UTF-8 bytes)."""
MAX_DESCRIPTION = 10_000
_LINK_SCHEMES = ("http", "https", "mailto")


class ArtifactType(StrEnum):
    MARKDOWN = "markdown"
    TABLE = "table"
    LINK = "link"
    PROGRESS = "progress"


def check_artifact_key(key: str) -> str:
    """``key`` when valid; ValueError naming the rule otherwise."""
    if not key or len(key) > 255:
        raise ValueError("an artifact key is 1 to 255 characters")
    if not all(c.isascii() and (c.islower() or c.isdigit() or c == "-") for c in key):
        raise ValueError(f"artifact key {key[:60]!r}: use lowercase letters, digits and '-' only")
    return key


def table_rows(data: Any) -> tuple[list[str], list[list[Any]]]:
    """A table's columns and rows, from any of its three shapes; ValueError when it is none."""
    if isinstance(data, dict):
        columns = [str(k) for k in data]
        values = list(data.values())
        if not all(isinstance(v, list) for v in values):
            raise ValueError("a table given as an object maps each column name to a list of values")
        height = max((len(v) for v in values), default=0)
        rows = [[v[i] if i < len(v) else None for v in values] for i in range(height)]
        return columns, rows
    if not isinstance(data, list):
        raise ValueError("a table is a list of rows or an object of columns")
    if all(isinstance(row, dict) for row in data):
        names: dict[str, None] = {}
        for row in data:
            names.update(dict.fromkeys(str(k) for k in row))
        columns = list(names)
        return columns, [[row.get(c) for c in columns] for row in data]
    if all(isinstance(row, list) for row in data):
        width = max((len(row) for row in data), default=0)
        return [str(i) for i in range(width)], [
            [*row, *([None] * (width - len(row)))] for row in data
        ]
    raise ValueError("a table's rows must be all objects or all lists")


def check_artifact_data(kind: ArtifactType, data: Any) -> Any:
    """``data`` when it suits ``kind`` and the size limit; ValueError saying what is wrong otherwise."""
    if kind is ArtifactType.MARKDOWN and not isinstance(data, str):
        raise ValueError("a markdown artifact's data is its text (a string)")
    if kind is ArtifactType.TABLE:
        table_rows(data)
    if kind is ArtifactType.LINK:
        if not isinstance(data, dict) or not isinstance(data.get("link"), str):
            raise ValueError('a link artifact\'s data is {"link": "https://...", "link_text": ...}')
        if set(data) - {"link", "link_text"}:
            raise ValueError("a link artifact's data has only 'link' and 'link_text'")
        text = data.get("link_text")
        if text is not None and not isinstance(text, str):
            raise ValueError("a link artifact's link_text is a string")
        scheme = urlsplit(data["link"].strip()).scheme.lower()
        if scheme not in _LINK_SCHEMES:
            raise ValueError(f"a link must be an http, https or mailto URL (got {scheme!r} scheme)")
    if kind is ArtifactType.PROGRESS:
        if isinstance(data, bool) or not isinstance(data, int | float) or not 0 <= data <= 100:
            raise ValueError("a progress artifact's data is a number from 0 to 100")
    try:
        encoded = json.dumps(data, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"an artifact's data must be JSON data: {exc}") from None
    size = len(encoded.encode("utf-8", "surrogatepass"))
    if size > MAX_ARTIFACT_DATA_BYTES:
        raise ValueError(
            f"the data is {size} bytes as JSON, above the limit of "
            f"{MAX_ARTIFACT_DATA_BYTES} bytes for an artifact"
        )
    if "\\u0000" in encoded:
        raise ValueError("NUL characters (\\u0000) are not allowed in an artifact's data")
    return data


class ArtifactCreate(BaseModel):
    """Create an artifact (a new version of ``key`` when given)."""

    model_config = ConfigDict(extra="forbid")

    key: str | None = Field(None, description="Lowercase letters, digits and '-'.")
    type: ArtifactType
    data: Any
    description: str | None = Field(None, max_length=MAX_DESCRIPTION)
    flow_run_id: UUID | None = None
    task_run_id: UUID | None = None

    @field_validator("key")
    @classmethod
    def _check_key(cls, key: str | None) -> str | None:
        return None if key is None else check_artifact_key(key)

    @model_validator(mode="after")
    def _check_data(self) -> ArtifactCreate:
        check_artifact_data(self.type, self.data)
        return self


class ArtifactUpdate(BaseModel):
    """Change an artifact's data (of its own type) and/or description, e.g. a progress value."""

    model_config = ConfigDict(extra="forbid")

    data: Any = None
    description: str | None = Field(None, max_length=MAX_DESCRIPTION)


class Artifact(BaseModel):
    """A stored artifact; ``is_latest`` is true for the newest version of its key."""

    id: UUID
    key: str | None = None
    type: ArtifactType
    data: Any = None
    description: str | None = None
    flow_run_id: UUID | None = None
    task_run_id: UUID | None = None
    is_latest: bool = True
    created: dt.datetime
    updated: dt.datetime


class ArtifactFilter(BaseModel):
    """Which artifacts to list, newest first; every given field narrows the list."""

    model_config = ConfigDict(extra="forbid")

    key: list[str] | None = Field(None, max_length=100, description="Any of these keys.")
    type: list[ArtifactType] | None = None
    flow_run_id: list[UUID] | None = Field(None, max_length=1000)
    task_run_id: list[UUID] | None = Field(None, max_length=1000)
    latest_only: bool = Field(False, description="Only the latest version of each key.")
    limit: int = Field(100, ge=1, le=1000)
    offset: int = Field(0, ge=0, le=MAX_OFFSET)
