"""Global concurrency and rate limits on the wire: named limits of ``limit`` slots that any code takes
with ``concurrency("db", occupy=2)`` (held as a lease, renewed while held) or ``rate_limit("api")``
(slots that drain at ``slot_decay_per_second``).

A concurrency lease expires ``lease_seconds`` after its last renewal, so the slots of a holder that
died (kill -9) come back by themselves. A rate-limit limit has ``slot_decay_per_second`` > 0: its
occupied slots are not released, they drain continuously at that rate.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from tideflow.schemas.limits import MAX_OFFSET

__all__ = [
    "GCL_NAME_PATTERN",
    "MAX_LEASE_SECONDS",
    "GlobalConcurrencyLimit",
    "GlobalConcurrencyLimitCreate",
    "GlobalConcurrencyLimitFilter",
    "GlobalConcurrencyLimitUpdate",
    "LeaseAnswer",
    "LeaseRelease",
    "LeaseRenew",
    "SlotRequest",
]

GCL_NAME_PATTERN = r"^[A-Za-z0-9_.:-]{1,200}$"
MAX_LEASE_SECONDS = 3600.0
MAX_SLOTS = 1_000_000


class GlobalConcurrencyLimitCreate(BaseModel):
    """A new named limit."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=GCL_NAME_PATTERN, description="Letters, digits, '_', '.', ':', '-'.")
    limit: int = Field(ge=0, le=MAX_SLOTS, description="Slots; 0 holds every taker.")
    active: bool = Field(True, description="An inactive limit lets everyone through.")
    slot_decay_per_second: float = Field(
        0.0, ge=0, le=MAX_SLOTS, description="> 0 makes it a rate limit: slots drain at this rate."
    )


class GlobalConcurrencyLimitUpdate(BaseModel):
    """Change a limit (fields left out keep their value)."""

    model_config = ConfigDict(extra="forbid")

    limit: int | None = Field(None, ge=0, le=MAX_SLOTS)
    active: bool | None = None
    slot_decay_per_second: float | None = Field(None, ge=0, le=MAX_SLOTS)


class GlobalConcurrencyLimit(BaseModel):
    """A stored limit with the slots occupied now (unexpired leases, or the undrained rate slots)."""

    id: UUID
    name: str
    limit: int
    active: bool
    slot_decay_per_second: float
    active_slots: float = 0.0
    leases: int = Field(0, description="Unexpired concurrency leases.")
    created: dt.datetime
    updated: dt.datetime


class GlobalConcurrencyLimitFilter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    limit: int = Field(100, ge=1, le=1000)
    offset: int = Field(0, ge=0, le=MAX_OFFSET)


class SlotRequest(BaseModel):
    """Take ``slots`` of every named limit, all or none."""

    model_config = ConfigDict(extra="forbid")

    names: list[str] = Field(min_length=1, max_length=100)
    slots: int = Field(1, ge=1, le=MAX_SLOTS)
    mode: Literal["concurrency", "rate_limit"] = "concurrency"
    lease_seconds: float = Field(30.0, gt=0, le=MAX_LEASE_SECONDS)


class LeaseAnswer(BaseModel):
    """``acquired`` (with the ``lease_id`` to renew and release); otherwise the limit that is full
    and when to ask again. ``missing`` names limits that do not exist (nothing is held for them)."""

    acquired: bool
    lease_id: UUID | None = None
    full_name: str | None = None
    retry_after: float = 0.0
    missing: list[str] = Field(default_factory=list)


class LeaseRenew(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lease_id: UUID
    lease_seconds: float = Field(30.0, gt=0, le=MAX_LEASE_SECONDS)


class LeaseRelease(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lease_id: UUID
