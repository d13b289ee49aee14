"""SDK tests run flows against ONE real server subprocess for the session; each test points
``TIDEFLOW_API_URL`` at it (the root conftest isolates everything else per test)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import pytest

from tideflow.client import SyncClient
from tideflow.schemas import FlowRunFilter, LogFilter
from tideflow.testing import ServerProcess

REPO = Path(__file__).resolve().parents[2]


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


def state_names(client: SyncClient, run_id: UUID) -> list[str]:
    return [s.name for s in client.read_flow_run_states(run_id)]


def runs_of(client: SyncClient, flow_name: str) -> list:  # type: ignore[type-arg]
    return client.read_flow_runs(FlowRunFilter(flow_name=[flow_name], sort="CREATED_ASC"))


def log_messages(client: SyncClient, run_id: UUID, level_ge: int | None = None) -> list[str]:
    return [
        log.message for log in client.read_logs(LogFilter(flow_run_id=[run_id], level_ge=level_ge))
    ]


def run_script(
    code: str, env: dict[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run ``code`` as a user's script would run: ``python script.py`` in a fresh interpreter."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    full_env.update(env)
    return subprocess.run(
        [sys.executable, "-c", code],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
    )
