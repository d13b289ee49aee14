"""Health, version, docs and the JSON answers for unknown routes."""

from __future__ import annotations

import httpx
import pytest

import tideflow
from tideflow.client import AsyncClient

pytestmark = pytest.mark.anyio


async def test_health(client: AsyncClient) -> None:
    assert await client.health() == {"status": "ok"}


async def test_version_names_the_database_dialect_only(
    client: AsyncClient, database_kind: str
) -> None:
    body = await client.version()
    assert body == {
        "version": tideflow.__version__,
        "api_version": "1",
        "database": "sqlite" if database_kind == "sqlite" else "postgresql",
    }  # no URL: its host, user or file path are not for anyone who can reach the API


async def test_unknown_route_is_json_404(http: httpx.AsyncClient) -> None:
    response = await http.get("/nope")
    assert response.status_code == 404
    assert response.json() == {"detail": "no such route: GET /api/nope"}


async def test_wrong_method_is_json_405(http: httpx.AsyncClient) -> None:
    response = await http.delete("/health")
    assert response.status_code == 405
    assert "DELETE" in response.json()["detail"]


async def test_root_is_the_ui_and_docs_are_offline(http: httpx.AsyncClient) -> None:
    root = await http.get("http://testserver/")
    assert root.status_code == 200
    assert "<title>Dashboard · tideflow</title>" in root.text
    docs = await http.get("http://testserver/docs")
    assert docs.status_code == 200
    assert "cdn.jsdelivr" not in docs.text and "unpkg.com" not in docs.text
    schema = await http.get("/openapi.json")
    paths = schema.json()["paths"]
    assert "/api/flow_runs/{run_id}/set_state" in paths
