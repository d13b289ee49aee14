"""Secret routes: set (encrypted with the server's key; 409 when it exists unless ``overwrite``), list
and read with the value masked, read the value (``runner`` scope or more, never ``read``: see
``api.scopes``), delete. No route logs a value; a bad value's 422 never quotes it."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Path, Request, Response, status

from tideflow.schemas.secrets import (
    SecretCreate,
    SecretFilter,
    SecretInfo,
    SecretValue,
    check_secret_value,
)
from tideflow.schemas.variables import VARIABLE_NAME_PATTERN
from tideflow.server.api.deps import DB, get_context, get_secret_box
from tideflow.server.api.validation import InvalidInput
from tideflow.server.secret_box import SecretBox, SecretKeyError
from tideflow.server.secret_redaction import SecretRedactor
from tideflow.server.storage import NotFound
from tideflow.server.storage import secrets as storage

__all__ = ["redactor", "router"]

router = APIRouter(prefix="/secrets", tags=["secrets"])

Name = Path(pattern=VARIABLE_NAME_PATTERN, description="The secret's name.")
_KEY_PROBLEM: dict[int | str, dict[str, Any]] = {
    500: {"description": "The secrets key is unusable or does not match the secret."}
}


def _box(request: Request) -> SecretBox:
    return get_secret_box(request)


def redactor(request: Request) -> SecretRedactor:
    """The app's masker of stored secret values (logs, run parameters), built on first use."""
    state = request.app.state
    found: SecretRedactor | None = getattr(state, "secret_redactor", None)
    if found is None:
        settings = get_context(request).settings
        found = SecretRedactor(
            get_context(request).database, lambda: SecretBox.from_settings(settings)
        )
        state.secret_redactor = found
    return found


def _missing(name: str) -> NotFound:
    return NotFound(f"no secret named {name!r}")


@router.post(
    "/",
    status_code=status.HTTP_201_CREATED,
    responses={
        200: {"model": SecretInfo, "description": "An existing secret's value was replaced."},
        409: {"description": "A secret of that name exists and overwrite is false."},
        **_KEY_PROBLEM,
    },
)
async def set_secret(
    body: SecretCreate, db: DB, request: Request, response: Response
) -> SecretInfo:
    """Store a secret encrypted (201), or replace one's value with ``overwrite`` (200)."""
    try:
        check_secret_value(body.value)
    except ValueError as exc:
        raise InvalidInput([(("body", "value"), str(exc))]) from None
    token = _box(request).encrypt(body.value)
    async with db.write() as session:
        info, created = await storage.set_secret(
            session, body.name, token, overwrite=body.overwrite
        )
    redactor(request).invalidate()
    if not created:
        response.status_code = status.HTTP_200_OK
    return info


@router.post("/filter")
async def read_secrets(db: DB, body: SecretFilter | None = None) -> list[SecretInfo]:
    """Secrets sorted by name, values masked."""
    async with db.read() as session:
        return await storage.read_secrets(session, body or SecretFilter())


@router.get("/name/{name}")
async def read_secret(db: DB, name: str = Name) -> SecretInfo:
    """A secret with its value masked."""
    async with db.read() as session:
        found = await storage.read_secret(session, name)
    if found is None:
        raise _missing(name)
    return found


@router.get("/name/{name}/value", responses=_KEY_PROBLEM)
async def read_secret_value(db: DB, request: Request, name: str = Name) -> SecretValue:
    """The secret's value, decrypted (needs the ``runner`` scope or more)."""
    async with db.read() as session:
        token = await storage.read_secret_token(session, name)
    if token is None:
        raise _missing(name)
    try:
        return SecretValue(name=name, value=_box(request).decrypt(token, name))
    except SecretKeyError as exc:
        raise HTTPException(500, str(exc)) from None


@router.delete("/name/{name}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_secret(db: DB, request: Request, name: str = Name) -> None:
    async with db.write() as session:
        if not await storage.delete_secret(session, name):
            raise _missing(name)
    redactor(request).invalidate()
