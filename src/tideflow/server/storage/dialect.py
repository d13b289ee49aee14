"""The few statements that differ between SQLite and PostgreSQL, chosen by the session's dialect."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite
from sqlalchemy.ext.asyncio import AsyncSession

__all__ = [
    "dialect_insert",
    "dialect_name",
    "insert_ignoring_conflict",
    "json_array_contains_all",
    "jsonb",
]


def dialect_name(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


def _postgresql() -> Any:
    # Imported on first use: a SQLite server never loads the PostgreSQL dialect (~35 ms, ~2 MiB).
    from sqlalchemy.dialects import postgresql

    return postgresql


def dialect_insert(session: AsyncSession) -> Any:
    """The dialect's ``insert`` construct (with ``on_conflict_do_*``) for the session's database."""
    return _postgresql().insert if dialect_name(session) == "postgresql" else sqlite.insert


def jsonb() -> Any:
    """PostgreSQL's JSONB type, for ``type_coerce`` in PostgreSQL-only expressions."""
    return _postgresql().JSONB


async def insert_ignoring_conflict(
    session: AsyncSession, table: sa.Table, values: dict[str, Any], conflict: Sequence[str]
) -> bool:
    """INSERT ... ON CONFLICT (conflict) DO NOTHING; True when the row was inserted."""
    insert = dialect_insert(session)
    stmt = (
        insert(table)
        .values(**values)
        .on_conflict_do_nothing(index_elements=list(conflict))
        .returning(table.c.id)
    )
    return (await session.execute(stmt)).first() is not None


def json_array_contains_all(
    column: sa.ColumnElement[Any], items: Sequence[str], dialect: str
) -> sa.ColumnElement[bool]:
    """A condition: the JSON array in ``column`` holds every one of ``items``."""
    if dialect == "postgresql":
        return sa.type_coerce(column, jsonb()).contains(list(items))
    clauses = []
    for item in items:
        each = sa.func.json_each(column).table_valued("value")
        clauses.append(sa.exists(sa.select(1).select_from(each).where(each.c.value == item)))
    return sa.and_(sa.true(), *clauses)
