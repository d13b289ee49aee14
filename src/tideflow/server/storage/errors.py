"""Errors storage raises for the API to map onto HTTP answers (404, 409), and the classification of
driver errors that are the client's doing or the disk's rather than a bug (unique violations, out of
space) on both backends."""

from __future__ import annotations

import sqlite3

from sqlalchemy.exc import DBAPIError

__all__ = [
    "Conflict",
    "NotFound",
    "StorageError",
    "database_message",
    "is_unique_violation",
    "out_of_space",
]

# SQLSTATE class 53 is "insufficient resources": 53100 disk_full, 53200 out_of_memory, ...
_PG_OUT_OF_SPACE = ("53100",)
_PG_UNIQUE_VIOLATION = "23505"


class StorageError(Exception):
    """Base of the errors below; the message is the API's ``detail``."""


class NotFound(StorageError):
    """The object named in the message does not exist (HTTP 404)."""


class Conflict(StorageError):
    """The change contradicts the stored state, e.g. a refused initial state (HTTP 409)."""


def _sqlstate(exc: DBAPIError) -> str:
    return str(getattr(exc.orig, "sqlstate", None) or "")


def database_message(exc: DBAPIError) -> str:
    """The driver's own first line, without SQLAlchemy's statement, parameters and link."""
    orig = exc.orig if exc.orig is not None else exc
    lines = str(orig).strip().splitlines()
    first = lines[0].strip() if lines else ""
    # asyncpg errors reach us as "<class 'asyncpg.exceptions.X'>: message".
    if first.startswith("<class '") and ">: " in first:
        first = first.split(">: ", 1)[1]
    return first or type(orig).__name__


def is_unique_violation(exc: DBAPIError) -> bool:
    """Whether ``exc`` is a refused duplicate of a primary or unique key."""
    if _sqlstate(exc) == _PG_UNIQUE_VIOLATION:
        return True
    orig = exc.orig
    if isinstance(orig, sqlite3.IntegrityError):
        return str(getattr(orig, "sqlite_errorname", "")).startswith(
            ("SQLITE_CONSTRAINT_PRIMARYKEY", "SQLITE_CONSTRAINT_UNIQUE")
        ) or "UNIQUE constraint failed" in str(orig)
    return False


def out_of_space(exc: DBAPIError) -> bool:
    """Whether the database refused a write because its disk (or quota) is full.

    SQLite says SQLITE_FULL ("database or disk is full"); PostgreSQL SQLSTATE 53100 (disk_full).
    """
    if _sqlstate(exc) in _PG_OUT_OF_SPACE:
        return True
    orig = exc.orig
    if isinstance(orig, sqlite3.Error):
        return getattr(orig, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL or (
            "database or disk is full" in str(orig)
        )
    return False
