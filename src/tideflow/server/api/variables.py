"""Variable routes: create (409 when the name is taken), list with filters, read, change and delete
by name."""

from __future__ import annotations

from fastapi import APIRouter, Path, status

from tideflow.schemas.variables import (
    VARIABLE_NAME_PATTERN,
    Variable,
    VariableCreate,
    VariableFilter,
    VariableUpdate,
)
from tideflow.server.api.deps import DB
from tideflow.server.storage import NotFound
from tideflow.server.storage import variables as storage

__all__ = ["router"]

router = APIRouter(prefix="/variables", tags=["variables"])

Name = Path(pattern=VARIABLE_NAME_PATTERN, description="The variable's name.")


def _missing(name: str) -> NotFound:
    return NotFound(f"no variable named {name!r}")


@router.post(
    "/",
    status_code=status.HTTP_201_CREATED,
    responses={409: {"description": "A variable of that name exists."}},
)
async def create_variable(body: VariableCreate, db: DB) -> Variable:
    """Create a variable; 409 when one of that name exists (change it with PATCH)."""
    async with db.write() as session:
        return await storage.create_variable(session, body)


@router.post("/filter")
async def read_variables(db: DB, body: VariableFilter | None = None) -> list[Variable]:
    """Variables sorted by name, narrowed by the filter."""
    async with db.read() as session:
        return await storage.read_variables(session, body or VariableFilter())


@router.get("/name/{name}")
async def read_variable(db: DB, name: str = Name) -> Variable:
    async with db.read() as session:
        found = await storage.read_variable(session, name)
    if found is None:
        raise _missing(name)
    return found


@router.patch("/name/{name}")
async def update_variable(body: VariableUpdate, db: DB, name: str = Name) -> Variable:
    """Change the value and/or the tags the body gives."""
    async with db.write() as session:
        found = await storage.update_variable(session, name, body)
    if found is None:
        raise _missing(name)
    return found


@router.delete("/name/{name}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_variable(db: DB, name: str = Name) -> None:
    async with db.write() as session:
        if not await storage.delete_variable(session, name):
            raise _missing(name)
