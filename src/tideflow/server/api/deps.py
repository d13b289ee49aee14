"""Request dependencies: the server context and its database, taken from ``app.state``."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request

from tideflow.server.context import ServerContext
from tideflow.server.secret_box import SecretBox, SecretKeyError
from tideflow.server.storage import Database

__all__ = ["DB", "Actor", "get_actor", "get_context", "get_database", "get_secret_box"]


def get_context(request: Request) -> ServerContext:
    context: ServerContext = request.app.state.context
    return context


def get_database(request: Request) -> Database:
    return get_context(request).database


DB = Annotated[Database, Depends(get_database)]


def get_secret_box(request: Request) -> SecretBox:
    """The server's secrets key, loaded on first use (a server that never stores a secret makes
    no key file); a 500 naming the problem when the key is unusable."""
    state = request.app.state
    box: SecretBox | None = getattr(state, "secret_box", None)
    if box is None:
        try:
            box = SecretBox.from_settings(get_context(request).settings)
        except SecretKeyError as exc:
            raise HTTPException(500, str(exc)) from None
        state.secret_box = box
    return box


def get_actor(request: Request) -> str | None:
    """The name of who sent the request (a key, a user, the admin key); None with auth off."""
    identity = request.scope.get("state", {}).get("identity")
    return str(identity.name) if identity is not None else None


Actor = Annotated[str | None, Depends(get_actor)]
