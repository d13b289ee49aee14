"""Request dependencies: the server context and its database, taken from ``app.state``."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from tideflow.server.context import ServerContext
from tideflow.server.storage import Database

__all__ = ["DB", "Actor", "get_actor", "get_context", "get_database"]


def get_context(request: Request) -> ServerContext:
    context: ServerContext = request.app.state.context
    return context


def get_database(request: Request) -> Database:
    return get_context(request).database


DB = Annotated[Database, Depends(get_database)]


def get_actor(request: Request) -> str | None:
    """The name of who sent the request (a key, a user, the admin key); None with auth off."""
    identity = request.scope.get("state", {}).get("identity")
    return str(identity.name) if identity is not None else None


Actor = Annotated[str | None, Depends(get_actor)]
