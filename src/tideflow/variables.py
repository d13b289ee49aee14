"""Variables from Python: named JSON values kept by the server, for configuration shared by flows.

``Variable.set("crew", ["Ada", "Alan"])``, ``Variable.get("crew", default=[])``,
``Variable.unset("crew")``, and the async pairs ``aset``/``aget``/``aunset`` (as in Prefect's
``prefect.variables``). Names are lowercase letters, digits, ``_`` and ``-``; a value is any JSON value
of at most ``MAX_VARIABLE_VALUE_BYTES`` bytes encoded. Both are checked here before anything is sent.
Variables are not secret: use :mod:`tideflow.secrets` for credentials.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tideflow.client import AsyncClient
from tideflow.engine.clients import sync_client
from tideflow.exceptions import ObjectNotFound, ServerError
from tideflow.schemas.variables import (
    MAX_VARIABLE_VALUE_BYTES,
    VariableCreate,
    VariableUpdate,
    check_variable_name,
)
from tideflow.schemas.variables import Variable as StoredVariable
from tideflow.settings import get_settings

__all__ = ["MAX_VARIABLE_VALUE_BYTES", "Variable"]


class Variable(BaseModel):
    """A named JSON value on the server; the classmethods read and write them by name."""

    model_config = ConfigDict(frozen=True)

    name: str
    value: Any = None
    tags: list[str] = Field(default_factory=list)
    created: dt.datetime | None = None
    updated: dt.datetime | None = None

    @classmethod
    def _from(cls, stored: StoredVariable) -> Variable:
        return cls(**stored.model_dump(include={"name", "value", "tags", "created", "updated"}))

    # -- sync --------------------------------------------------------------------------------

    @classmethod
    def set(
        cls, name: str, value: Any, *, tags: list[str] | None = None, overwrite: bool = False
    ) -> Variable:
        """Store ``value`` under ``name``; ValueError when it exists unless ``overwrite``."""
        body = VariableCreate(name=name, value=value, tags=tags or [])
        client = sync_client(get_settings())
        try:
            return cls._from(client.create_variable(body))
        except ServerError as exc:
            if exc.status_code != 409:
                raise
        if not overwrite:
            raise ValueError(f"variable {name!r} exists already; pass overwrite=True to change it")
        return cls._from(client.update_variable(name, _update(body, tags)))

    @classmethod
    def get(cls, name: str, default: Any = None) -> Any:
        """The value of variable ``name``, or ``default`` when there is none."""
        check_variable_name(name)
        try:
            return sync_client(get_settings()).read_variable_by_name(name).value
        except ObjectNotFound:
            return default

    @classmethod
    def read(cls, name: str) -> Variable | None:
        """The whole variable (value, tags, times), or None when there is none."""
        check_variable_name(name)
        try:
            return cls._from(sync_client(get_settings()).read_variable_by_name(name))
        except ObjectNotFound:
            return None

    @classmethod
    def unset(cls, name: str) -> bool:
        """Delete variable ``name``; False when there was none."""
        check_variable_name(name)
        try:
            sync_client(get_settings()).delete_variable_by_name(name)
        except ObjectNotFound:
            return False
        return True

    # -- async -------------------------------------------------------------------------------

    @classmethod
    async def aset(
        cls, name: str, value: Any, *, tags: list[str] | None = None, overwrite: bool = False
    ) -> Variable:
        """Async :meth:`set`."""
        body = VariableCreate(name=name, value=value, tags=tags or [])
        async with AsyncClient() as client:
            try:
                return cls._from(await client.create_variable(body))
            except ServerError as exc:
                if exc.status_code != 409:
                    raise
            if not overwrite:
                raise ValueError(
                    f"variable {name!r} exists already; pass overwrite=True to change it"
                )
            return cls._from(await client.update_variable(name, _update(body, tags)))

    @classmethod
    async def aget(cls, name: str, default: Any = None) -> Any:
        """Async :meth:`get`."""
        check_variable_name(name)
        async with AsyncClient() as client:
            try:
                return (await client.read_variable_by_name(name)).value
            except ObjectNotFound:
                return default

    @classmethod
    async def aunset(cls, name: str) -> bool:
        """Async :meth:`unset`."""
        check_variable_name(name)
        async with AsyncClient() as client:
            try:
                await client.delete_variable_by_name(name)
            except ObjectNotFound:
                return False
        return True


def _update(body: VariableCreate, tags: list[str] | None) -> VariableUpdate:
    # Tags left out keep the stored ones; the value always changes.
    if tags is None:
        return VariableUpdate(value=body.value)
    return VariableUpdate(value=body.value, tags=body.tags)
