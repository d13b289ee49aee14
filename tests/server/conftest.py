"""Server test fixtures: an in-process API client on each database backend."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tideflow.client import AsyncClient
from tideflow.testing import in_process_client


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def client(database_url: str) -> AsyncIterator[AsyncClient]:
    """A typed client over ASGI to a fresh app on ``database_url`` (SQLite or PostgreSQL)."""
    async with in_process_client(database_url) as c:
        yield c


@pytest.fixture
def http(client: AsyncClient):  # type: ignore[no-untyped-def]
    """The client's raw httpx client, for checking status codes and error bodies."""
    return client._http
