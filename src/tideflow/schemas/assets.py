"""Assets on the wire: keys, properties, the catalogue's rows, lineage, and the materialization events.

An asset is named by a URI key (``s3://bucket/raw.csv``, ``postgres://db/schema/table``). Each
materialization is an event, ``tideflow.asset.materialization.succeeded`` or ``.failed``, with the
asset as its resource (``tideflow.resource.id`` = the key), its upstream assets as related resources
with role ``asset``, and the flow run and task run that made it; its payload carries the asset's
properties, the run's metadata and the upstream keys. The server keeps a catalogue from those
events: one row per asset with its latest materialization, and the dependency edges between assets.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tideflow.schemas.limits import MAX_OFFSET

__all__ = [
    "ASSET_EVENT_PREFIX",
    "ASSET_RESOURCE_ROLE",
    "MATERIALIZATION_FAILED",
    "MATERIALIZATION_SUCCEEDED",
    "MAX_ASSET_KEY_LENGTH",
    "MAX_LINEAGE_DEPTH",
    "AssetEdge",
    "AssetFilter",
    "AssetLineage",
    "AssetProperties",
    "AssetRecord",
    "MaterializationStatus",
    "asset_key_problem",
    "check_asset_key",
]

ASSET_EVENT_PREFIX = "tideflow.asset.materialization."
MATERIALIZATION_SUCCEEDED = "tideflow.asset.materialization.succeeded"
MATERIALIZATION_FAILED = "tideflow.asset.materialization.failed"
ASSET_RESOURCE_ROLE = "asset"
"""The role of an upstream asset among a materialization event's related resources."""
MAX_ASSET_KEY_LENGTH = 512
MAX_LINEAGE_DEPTH = 10
MAX_OWNERS = 20
MaterializationStatus = Literal["succeeded", "failed"]

_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


def asset_key_problem(key: Any) -> str | None:
    """Why ``key`` is not an asset key (None when it is): a URI ``scheme://rest``, at most 512
    characters, without whitespace or control characters."""
    if not isinstance(key, str):
        return (
            f"an asset key is a string URI such as 's3://bucket/raw.csv', got {type(key).__name__}"
        )
    shown = key[:60] + ("..." if len(key) > 60 else "")
    if len(key) > MAX_ASSET_KEY_LENGTH:
        return f"asset key {shown!r} is {len(key)} characters; at most {MAX_ASSET_KEY_LENGTH}"
    match = _SCHEME.match(key)
    if match is None:
        return (
            f"asset key {shown!r} is not a URI: use scheme://path, e.g. 's3://bucket/raw.csv' "
            "or 'postgres://db/table'"
        )
    if len(key) == match.end():
        return f"asset key {shown!r} names nothing after its scheme"
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in key):
        return f"asset key {shown!r} holds whitespace or control characters"
    if any(0xD800 <= ord(c) <= 0xDFFF for c in key):
        return f"asset key {shown!r} holds a lone surrogate"
    return None


def check_asset_key(key: Any) -> str:
    """``key`` when it is a valid asset key; ValueError saying why otherwise."""
    problem = asset_key_problem(key)
    if problem:
        raise ValueError(problem)
    return str(key)


class AssetProperties(BaseModel):
    """What people read about an asset: a name, a description, its owners and where to look at it."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, max_length=200)
    description: str | None = Field(None, max_length=10_000)
    owners: list[str] = Field(default_factory=list, max_length=MAX_OWNERS)
    url: str | None = Field(None, max_length=2048)

    @field_validator("owners")
    @classmethod
    def _owners(cls, owners: list[str]) -> list[str]:
        if any(len(o) > 200 for o in owners):
            raise ValueError("an owner is at most 200 characters")
        return owners

    @field_validator("url")
    @classmethod
    def _url(cls, url: str | None) -> str | None:
        # Shown as a link in the UI: only schemes a browser opens harmlessly.
        if url is not None and not re.match(r"^(https?|mailto):", url.strip(), re.IGNORECASE):
            raise ValueError(f"an asset url must be http, https or mailto, got {url[:60]!r}")
        return url


class AssetRecord(BaseModel):
    """One asset in the catalogue with its latest materialization (None before the first)."""

    key: str
    properties: AssetProperties = Field(default_factory=AssetProperties)
    last_materialized: dt.datetime | None = None
    last_status: MaterializationStatus | None = None
    last_event_id: UUID | None = None
    last_flow_run_id: UUID | None = None
    last_task_run_id: UUID | None = None
    last_metadata: dict[str, Any] = Field(default_factory=dict)
    last_error: str | None = None
    materializations: int = 0
    upstream: list[str] = Field(default_factory=list)
    downstream: list[str] = Field(default_factory=list)
    created: dt.datetime
    updated: dt.datetime


class AssetFilter(BaseModel):
    """Which assets to list, by key; every given field narrows the list."""

    model_config = ConfigDict(extra="forbid")

    keys: list[str] | None = Field(None, max_length=500, description="Any of these keys.")
    key_prefix: str | None = Field(None, max_length=MAX_ASSET_KEY_LENGTH)
    status: MaterializationStatus | None = None
    flow_run_id: UUID | None = Field(None, description="Last materialized by this flow run.")
    limit: int = Field(100, ge=1, le=1000)
    offset: int = Field(0, ge=0, le=MAX_OFFSET)


class AssetEdge(BaseModel):
    """``upstream`` feeds ``downstream``."""

    upstream: str
    downstream: str


class AssetLineage(BaseModel):
    """The assets around one asset (or the whole catalogue, bounded) and the edges among them."""

    root: str | None = None
    nodes: list[AssetRecord] = Field(default_factory=list)
    edges: list[AssetEdge] = Field(default_factory=list)
    truncated: bool = False
