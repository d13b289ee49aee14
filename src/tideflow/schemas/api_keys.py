"""API keys on the wire: their scopes, what each scope includes, and the create/read models.

A key is ``tf_<key id>_<secret>``. The key id is not secret (it names the key in lists and logs and
lets the server find the one stored hash to check); the secret is shown once, at creation.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal, get_args
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "SCOPES",
    "ApiKey",
    "ApiKeyCreate",
    "ApiKeyCreated",
    "Scope",
    "grants",
]

Scope = Literal["admin", "write", "read", "events:write", "runner"]
SCOPES: tuple[Scope, ...] = get_args(Scope)

# What holding a scope lets a key do besides itself. ``write`` covers everything a flow, serve() or
# the CLI does except managing keys; ``runner`` is the narrower key for processes that only execute
# existing deployments (claim runs, report states, logs and events, read).
_INCLUDES: dict[Scope, frozenset[Scope]] = {
    "admin": frozenset(SCOPES),
    "write": frozenset({"write", "read", "events:write", "runner"}),
    "runner": frozenset({"runner", "read", "events:write"}),
    "read": frozenset({"read"}),
    "events:write": frozenset({"events:write"}),
}


def grants(held: list[Scope] | tuple[Scope, ...] | frozenset[Scope], needed: Scope) -> bool:
    """Whether a key holding ``held`` may do what needs ``needed``."""
    return any(needed in _INCLUDES[scope] for scope in held)


class ApiKeyCreate(BaseModel):
    """A new key's name and scopes."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200, description="Who or what uses the key.")
    scopes: list[Scope] = Field(min_length=1, max_length=len(SCOPES), description="Its scopes.")


class ApiKey(BaseModel):
    """A stored key, without its secret."""

    id: UUID
    key_id: str = Field(description="The non-secret part of the key (tf_<key_id>_...).")
    name: str
    scopes: list[Scope]
    created: dt.datetime
    revoked: dt.datetime | None = None


class ApiKeyCreated(ApiKey):
    """A key as created: the only answer that carries the whole key."""

    key: str = Field(description="The API key; shown once, store it now.")
