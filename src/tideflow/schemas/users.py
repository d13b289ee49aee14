"""UI users on the wire: a person who logs in to the UI with a name and a password, holding scopes
like an API key (``tideflow.schemas.api_keys``). The password is sent on create and on change only;
the server stores its argon2 hash and never answers with it."""

from __future__ import annotations

import datetime as dt
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from tideflow.schemas.api_keys import SCOPES, Scope

__all__ = [
    "MAX_PASSWORD_LENGTH",
    "MIN_PASSWORD_LENGTH",
    "User",
    "UserCreate",
    "UserPassword",
]

MIN_PASSWORD_LENGTH = 8
# Bounds the argon2 work one login or create can cause.
MAX_PASSWORD_LENGTH = 1024
_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._@+-]*$"


class UserPassword(BaseModel):
    """A new password."""

    model_config = ConfigDict(extra="forbid")

    password: str = Field(
        min_length=MIN_PASSWORD_LENGTH,
        max_length=MAX_PASSWORD_LENGTH,
        repr=False,
        description=f"At least {MIN_PASSWORD_LENGTH} characters.",
    )


class UserCreate(UserPassword):
    """A new user: a name to log in with, a password and scopes."""

    name: str = Field(
        min_length=1,
        max_length=200,
        pattern=_NAME_PATTERN,
        description="The login name: letters, digits and . _ @ + -",
    )
    scopes: list[Scope] = Field(min_length=1, max_length=len(SCOPES), description="Its scopes.")


class User(BaseModel):
    """A stored user, without its password."""

    id: UUID
    name: str
    scopes: list[Scope]
    created: dt.datetime
    password_changed: dt.datetime
