"""Secrets from Python: named strings the server keeps encrypted, for credentials flows need.

``Secret.set("db-password", "s3cr3t")``, ``Secret.get("db-password")``, ``Secret.delete(...)`` and the
async pairs ``aset``/``aget``/``adelete``. A value read with ``get`` in a process is masked
(``********``) in that process's run logs from then on. Prefect keeps secrets in a block
(``from prefect.blocks.system import Secret``: ``Secret(value=v).save(name)``,
``Secret.load(name).get()``); here they are ``Secret.set(name, v)`` and ``Secret.get(name)``.
Reading a value needs an API key with the ``runner`` scope or more (a ``read`` key cannot).
"""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict

from tideflow._redaction import register_secret
from tideflow.client import AsyncClient
from tideflow.engine.clients import sync_client
from tideflow.exceptions import ObjectNotFound, ServerError
from tideflow.schemas.secrets import (
    MASK,
    MAX_SECRET_VALUE_LENGTH,
    SecretCreate,
    SecretInfo,
    check_secret_value,
)
from tideflow.schemas.variables import check_variable_name
from tideflow.settings import get_settings

__all__ = ["MASK", "MAX_SECRET_VALUE_LENGTH", "Secret", "SecretMetadata"]


class SecretMetadata(BaseModel):
    """A stored secret without its value (``value`` is always the mask)."""

    model_config = ConfigDict(frozen=True)

    name: str
    value: str = MASK
    created: dt.datetime
    updated: dt.datetime


def _body(name: str, value: str, overwrite: bool) -> SecretCreate:
    check_variable_name(name, "secret")
    check_secret_value(value)  # its message never quotes the value
    return SecretCreate(name=name, value=value, overwrite=overwrite)


def _metadata(info: SecretInfo) -> SecretMetadata:
    return SecretMetadata(name=info.name, created=info.created, updated=info.updated)


class Secret:
    """Read and write secrets by name (class methods only; a value is never kept on an object)."""

    @classmethod
    def set(cls, name: str, value: str, *, overwrite: bool = False) -> SecretMetadata:
        """Store ``value`` encrypted under ``name``; ValueError when it exists unless ``overwrite``."""
        body = _body(name, value, overwrite)
        try:
            return _metadata(sync_client(get_settings()).set_secret(body))
        except ServerError as exc:
            raise _refused(exc, name) from None

    @classmethod
    def get(cls, name: str) -> str:
        """The value of secret ``name`` (ObjectNotFound when there is none); masked in run logs."""
        check_variable_name(name, "secret")
        value = sync_client(get_settings()).read_secret_value(name).value
        register_secret(value)
        return value

    @classmethod
    def delete(cls, name: str) -> bool:
        """Delete secret ``name``; False when there was none."""
        check_variable_name(name, "secret")
        try:
            sync_client(get_settings()).delete_secret(name)
        except ObjectNotFound:
            return False
        return True

    @classmethod
    async def aset(cls, name: str, value: str, *, overwrite: bool = False) -> SecretMetadata:
        """Async :meth:`set`."""
        body = _body(name, value, overwrite)
        async with AsyncClient() as client:
            try:
                return _metadata(await client.set_secret(body))
            except ServerError as exc:
                raise _refused(exc, name) from None

    @classmethod
    async def aget(cls, name: str) -> str:
        """Async :meth:`get`."""
        check_variable_name(name, "secret")
        async with AsyncClient() as client:
            value = (await client.read_secret_value(name)).value
        register_secret(value)
        return value

    @classmethod
    async def adelete(cls, name: str) -> bool:
        """Async :meth:`delete`."""
        check_variable_name(name, "secret")
        async with AsyncClient() as client:
            try:
                await client.delete_secret(name)
            except ObjectNotFound:
                return False
        return True


def _refused(exc: ServerError, name: str) -> Exception:
    # A 409 says the name is taken: the usual Python answer is a ValueError naming the fix.
    if exc.status_code == 409:
        return ValueError(f"secret {name!r} exists already; pass overwrite=True to replace it")
    return exc
