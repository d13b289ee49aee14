"""Notification destinations on the wire: where a ``send-notification`` action or a flow hook posts.

A destination is a named, typed configuration (Slack or Microsoft Teams incoming webhook, email over
SMTP, a generic webhook). Credentials are never part of it: a destination names the tideflow secrets
that hold them (``webhook_url_secret``, ``password_secret``, ``header_secrets``), and the server
reads them only when it sends.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal
from urllib.parse import urlparse
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tideflow.schemas.limits import MAX_OFFSET
from tideflow.schemas.variables import MAX_VARIABLE_NAME_LENGTH, VARIABLE_NAME_PATTERN

__all__ = [
    "DESTINATION_TYPES",
    "MAX_NOTIFICATION_TEMPLATE_LENGTH",
    "DestinationConfig",
    "EmailDestination",
    "NotificationDestination",
    "NotificationDestinationCreate",
    "NotificationDestinationFilter",
    "NotificationMessage",
    "NotificationResult",
    "SlackDestination",
    "TeamsDestination",
    "WebhookDestination",
    "secret_names",
]

MAX_NOTIFICATION_TEMPLATE_LENGTH = 20_000
"""Longest subject or body template, in characters."""
MAX_RECIPIENTS = 50
MAX_HEADERS = 30
MAX_URL_LENGTH = 4096
MAX_SEND_TIMEOUT = 30.0

SecretName = Annotated[
    str, Field(pattern=VARIABLE_NAME_PATTERN, max_length=MAX_VARIABLE_NAME_LENGTH)
]
_ADDRESS = r"^[^@\s<>,;]{1,200}@[^@\s<>,;]{1,255}$"
Address = Annotated[str, Field(pattern=_ADDRESS, max_length=320)]


class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid")

    timeout: float = Field(10.0, gt=0, le=MAX_SEND_TIMEOUT, description="Seconds per send.")


class SlackDestination(_Config):
    """A Slack incoming webhook; its URL is a credential, so it lives in a secret."""

    type: Literal["slack"] = "slack"
    webhook_url_secret: SecretName


class TeamsDestination(_Config):
    """A Microsoft Teams incoming webhook (or Workflows webhook) URL, kept in a secret."""

    type: Literal["teams"] = "teams"
    webhook_url_secret: SecretName


class EmailDestination(_Config):
    """Email over SMTP: ``security`` is ``starttls`` (upgrade after connecting), ``ssl`` (TLS from the
    first byte, usually port 465) or ``none``."""

    type: Literal["email"] = "email"
    host: str = Field(min_length=1, max_length=255, pattern=r"^[A-Za-z0-9.\-:\[\]]+$")
    port: int = Field(587, ge=1, le=65535)
    security: Literal["starttls", "ssl", "none"] = "starttls"
    username: str | None = Field(None, max_length=255)
    password_secret: SecretName | None = None
    from_address: Address
    to: list[Address] = Field(min_length=1, max_length=MAX_RECIPIENTS)


class WebhookDestination(_Config):
    """Any HTTP endpoint: ``body`` is a JSON template (strings may be templates; ``subject`` and
    ``body`` are the rendered message); ``header_secrets`` maps header names to secret names."""

    type: Literal["webhook"] = "webhook"
    url: str = Field(max_length=MAX_URL_LENGTH)
    method: Literal["POST", "PUT", "PATCH"] = "POST"
    headers: dict[str, Annotated[str, Field(max_length=2000)]] = Field(
        default_factory=dict, max_length=MAX_HEADERS
    )
    header_secrets: dict[str, SecretName] = Field(default_factory=dict, max_length=MAX_HEADERS)
    body: Any = Field(
        default_factory=lambda: {"subject": "{{ subject }}", "body": "{{ body }}"},
        description="JSON data whose strings may be templates over subject and body.",
    )

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        parsed = urlparse(value)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ValueError(f"url must be an http:// or https:// URL, got {value!r}")
        return value


DestinationConfig = Annotated[
    SlackDestination | TeamsDestination | EmailDestination | WebhookDestination,
    Field(discriminator="type"),
]
DESTINATION_TYPES = ("slack", "teams", "email", "webhook")


def secret_names(config: Any) -> list[str]:
    """The names of the secrets a destination's configuration refers to."""
    names: list[str] = []
    for field in ("webhook_url_secret", "password_secret"):
        value = getattr(config, field, None)
        if value:
            names.append(value)
    names.extend(getattr(config, "header_secrets", {}).values())
    return names


class NotificationDestinationCreate(BaseModel):
    """Create a destination; with ``overwrite`` replace an existing one of that name (else 409)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=VARIABLE_NAME_PATTERN, max_length=MAX_VARIABLE_NAME_LENGTH)
    description: str = Field("", max_length=2000)
    config: DestinationConfig
    overwrite: bool = False


class NotificationDestination(BaseModel):
    """A stored destination: its configuration holds secret names, never secret values."""

    id: UUID
    name: str
    description: str = ""
    type: str
    config: DestinationConfig
    created: dt.datetime
    updated: dt.datetime


class NotificationDestinationFilter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name_like: str | None = Field(None, max_length=255)
    type: Literal["slack", "teams", "email", "webhook"] | None = None
    limit: int = Field(200, ge=1, le=1000)
    offset: int = Field(0, ge=0, le=MAX_OFFSET)


class NotificationMessage(BaseModel):
    """What to send: subject and body are templates rendered by the server (sandboxed, bounded)
    with ``flow_run``, ``flow``, ``deployment`` (of ``flow_run_id``, when given) and ``state``."""

    model_config = ConfigDict(extra="forbid")

    subject: str = Field("tideflow notification", max_length=MAX_NOTIFICATION_TEMPLATE_LENGTH)
    body: str = Field("", max_length=MAX_NOTIFICATION_TEMPLATE_LENGTH)
    flow_run_id: UUID | None = None


class NotificationResult(BaseModel):
    """The outcome of one send; ``detail`` never holds a credential."""

    destination: str
    sent: bool
    detail: str
