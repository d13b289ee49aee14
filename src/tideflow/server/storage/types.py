"""Portable column types: aware UTC datetimes on every backend, JSON (JSONB on PostgreSQL), UUIDs."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Integer, Uuid
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

__all__ = ["BigIntId", "JSONType", "UTCDateTime", "UuidType"]


class _JSON(TypeDecorator[Any]):
    """JSON text; JSONB on PostgreSQL (containment ``@>`` for tag filters).

    A decorator rather than ``with_variant(JSONB)`` so a SQLite server never imports the
    PostgreSQL dialect (~35 ms and ~2 MiB at start). Python None is SQL NULL (not the JSON literal
    null), so "IS NULL" means "absent" everywhere.
    """

    impl = JSON(none_as_null=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import JSONB

            return dialect.type_descriptor(JSONB(none_as_null=True))
        return dialect.type_descriptor(JSON(none_as_null=True))


JSONType = _JSON()

# SQLite only autoincrements an INTEGER PRIMARY KEY (the rowid alias), not BIGINT.
BigIntId = BigInteger().with_variant(Integer(), "sqlite")

UuidType = Uuid(as_uuid=True)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timestamp stored in UTC and always read back timezone-aware (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if not isinstance(value, dt.datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}")
        # Naive datetimes are taken as UTC, the wire convention.
        aware = value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
        if dialect.name == "sqlite":
            # Stored naive so that text comparison and sorting in SQLite stay chronological.
            return aware.replace(tzinfo=None)
        return aware

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if not isinstance(value, dt.datetime):
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)
