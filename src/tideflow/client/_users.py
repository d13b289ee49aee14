"""The UI user calls (scope ``admin``), sent with ``SyncClient.send`` / ``AsyncClient.send``."""

from __future__ import annotations

from uuid import UUID

from tideflow.client._calls import Call, _model, _none
from tideflow.schemas.api_keys import Scope
from tideflow.schemas.users import User, UserCreate, UserPassword

__all__ = ["create_user", "delete_user", "read_users", "set_password"]


def create_user(name: str, password: str, scopes: list[Scope]) -> Call[User]:
    body = UserCreate(name=name, password=password, scopes=scopes).model_dump(mode="json")
    return Call("POST", "/users/", _model(User), body)


def read_users() -> Call[list[User]]:
    return Call("GET", "/users/", _model(list[User]))


def set_password(user_id: UUID, password: str) -> Call[User]:
    body = UserPassword(password=password).model_dump(mode="json")
    return Call("POST", f"/users/{user_id}/password", _model(User), body)


def delete_user(user_id: UUID) -> Call[None]:
    return Call("DELETE", f"/users/{user_id}", _none)
