"""Variables: create, read by name, list, change and delete; and the bounded read of a few values by
name that action templates use."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Collection
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from tideflow.schemas.variables import Variable, VariableCreate, VariableFilter, VariableUpdate
from tideflow.server.storage.dialect import dialect_name, json_array_contains_all
from tideflow.server.storage.errors import Conflict, is_unique_violation
from tideflow.server.storage.tables import variables

__all__ = [
    "MAX_TEMPLATE_VARIABLES",
    "create_variable",
    "delete_variable",
    "read_variable",
    "read_variable_values",
    "read_variables",
    "update_variable",
]

MAX_TEMPLATE_VARIABLES = 100
"""Most variables one action's templates may read (each at most MAX_VARIABLE_VALUE_BYTES)."""

_V = variables.c


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _variable(row: Any) -> Variable:
    return Variable.model_validate(dict(row._mapping))


async def create_variable(session: AsyncSession, body: VariableCreate) -> Variable:
    """Store a new variable; Conflict when the name is taken."""
    now = _now()
    values = {
        "id": uuid.uuid4(),
        "name": body.name,
        "value": body.value,
        "tags": list(dict.fromkeys(body.tags)),
        "created": now,
        "updated": now,
    }
    try:  # the unique name finds the duplicate; the Conflict rolls the transaction back
        await session.execute(sa.insert(variables).values(**values))
    except IntegrityError as exc:
        if is_unique_violation(exc):
            raise Conflict(f"a variable named {body.name!r} exists already") from None
        raise
    return Variable.model_validate(values)


async def read_variable(session: AsyncSession, name: str) -> Variable | None:
    row = (await session.execute(sa.select(variables).where(_V.name == name))).first()
    return _variable(row) if row is not None else None


async def read_variables(session: AsyncSession, flt: VariableFilter) -> list[Variable]:
    stmt = sa.select(variables).order_by(_V.name).limit(flt.limit).offset(flt.offset)
    if flt.name_like:
        stmt = stmt.where(_V.name.icontains(flt.name_like, autoescape=True))
    if flt.tags_all:
        stmt = stmt.where(json_array_contains_all(_V.tags, flt.tags_all, dialect_name(session)))
    return [_variable(row) for row in await session.execute(stmt)]


async def update_variable(
    session: AsyncSession, name: str, body: VariableUpdate
) -> Variable | None:
    """Change the fields ``body`` sets; None when there is no such variable."""
    changes: dict[str, Any] = {"updated": _now()}
    if "value" in body.model_fields_set:
        changes["value"] = body.value
    if body.tags is not None:
        changes["tags"] = list(dict.fromkeys(body.tags))
    result = await session.execute(sa.update(variables).where(_V.name == name).values(**changes))
    if not result.rowcount:  # type: ignore[attr-defined]
        return None
    return await read_variable(session, name)


async def delete_variable(session: AsyncSession, name: str) -> bool:
    result = await session.execute(sa.delete(variables).where(_V.name == name))
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def read_variable_values(session: AsyncSession, names: Collection[str]) -> dict[str, Any]:
    """The values of the variables named (those that exist), at most MAX_TEMPLATE_VARIABLES names."""
    wanted = sorted(set(names))[:MAX_TEMPLATE_VARIABLES]
    if not wanted:
        return {}
    stmt = sa.select(_V.name, _V.value).where(_V.name.in_(wanted))
    return {row.name: row.value for row in await session.execute(stmt)}
