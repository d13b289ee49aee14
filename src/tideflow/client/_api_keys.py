"""The API key calls (scope ``admin``), sent with ``SyncClient.send`` / ``AsyncClient.send``."""

from __future__ import annotations

from uuid import UUID

from tideflow.client._calls import Call, _model
from tideflow.schemas.api_keys import ApiKey, ApiKeyCreate, ApiKeyCreated, Scope

__all__ = ["create_api_key", "read_api_keys", "revoke_api_key"]


def create_api_key(name: str, scopes: list[Scope]) -> Call[ApiKeyCreated]:
    body = ApiKeyCreate(name=name, scopes=scopes).model_dump(mode="json")
    return Call("POST", "/api-keys/", _model(ApiKeyCreated), body)


def read_api_keys(*, include_revoked: bool = False) -> Call[list[ApiKey]]:
    params = {"include_revoked": "true"} if include_revoked else None
    return Call("GET", "/api-keys/", _model(list[ApiKey]), params=params)


def revoke_api_key(key_uuid: UUID) -> Call[ApiKey]:
    return Call("POST", f"/api-keys/{key_uuid}/revoke", _model(ApiKey))
