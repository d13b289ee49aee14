"""Errors storage raises for the API to map onto HTTP answers (404, 409)."""

from __future__ import annotations

__all__ = ["Conflict", "NotFound", "StorageError"]


class StorageError(Exception):
    """Base of the errors below; the message is the API's ``detail``."""


class NotFound(StorageError):
    """The object named in the message does not exist (HTTP 404)."""


class Conflict(StorageError):
    """The change contradicts the stored state, e.g. a refused initial state (HTTP 409)."""
