"""SDK tests run flows against ONE real server subprocess for the session; each test points
``TIDEFLOW_API_URL`` at it (the root conftest isolates everything else per test)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tideflow.client import SyncClient
from tideflow.testing import ServerProcess


@pytest.fixture(scope="session")
def sdk_server() -> Iterator[ServerProcess]:
    with ServerProcess() as server:
        yield server


@pytest.fixture(autouse=True)
def _point_at_server(sdk_server: ServerProcess, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("TIDEFLOW_API_URL", sdk_server.api_url)
    return sdk_server.api_url


@pytest.fixture
def client(sdk_server: ServerProcess) -> Iterator[SyncClient]:
    with SyncClient(sdk_server.api_url) as c:
        yield c
