"""Tag-based task concurrency limits on the wire: at most ``concurrency_limit`` task runs carrying
``tag`` hold a slot at once, across every flow run; slots are leases that expire unless renewed."""

from __future__ import annotations

import datetime as dt
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "ConcurrencyLimit",
    "ConcurrencyLimitCreate",
    "SlotAcquire",
    "SlotAnswer",
    "SlotRelease",
    "SlotRenew",
]

TAG_PATTERN = r"^[^\s/]{1,200}$"
MAX_LEASE = 3600.0


class ConcurrencyLimitCreate(BaseModel):
    """Create a tag's limit, or change it when the tag has one."""

    model_config = ConfigDict(extra="forbid")

    tag: str = Field(pattern=TAG_PATTERN, description="The task tag the limit applies to.")
    concurrency_limit: int = Field(ge=0, le=1_000_000, description="Slots; 0 holds every run.")


class ConcurrencyLimit(BaseModel):
    """A tag's limit, with the task runs holding its slots now (unexpired leases)."""

    id: UUID
    tag: str
    concurrency_limit: int
    active_slots: list[UUID] = Field(default_factory=list)
    created: dt.datetime
    updated: dt.datetime


class SlotAcquire(BaseModel):
    """Take one slot of every limited tag in ``tags`` for ``holder`` (all or none)."""

    model_config = ConfigDict(extra="forbid")

    tags: list[str] = Field(min_length=1, max_length=100)
    holder: UUID = Field(description="The task run taking the slots.")
    lease_seconds: float = Field(60.0, gt=0, le=MAX_LEASE)


class SlotAnswer(BaseModel):
    """``acquired``; otherwise the tag whose limit is full and when to ask again."""

    acquired: bool
    full_tag: str | None = None
    retry_after: float = 0.0


class SlotRenew(BaseModel):
    model_config = ConfigDict(extra="forbid")

    holder: UUID
    lease_seconds: float = Field(60.0, gt=0, le=MAX_LEASE)


class SlotRelease(BaseModel):
    model_config = ConfigDict(extra="forbid")

    holder: UUID
