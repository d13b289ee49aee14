"""tideflow.testing: the in-process client on its own temporary SQLite, and ServerProcess defaults."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tideflow.schemas import FlowRunCreate
from tideflow.testing import ServerProcess, free_port, in_process_client


@pytest.mark.anyio
async def test_in_process_client_uses_a_fresh_temporary_sqlite() -> None:
    async with in_process_client() as client:
        version = await client.version()
        assert version["database"] == "sqlite"
        app = client._http._transport.app  # type: ignore[attr-defined]
        url = app.state.context.database.url
        path = Path(url.removeprefix("sqlite+aiosqlite:///"))
        assert path.exists()
        run = await client.create_flow_run(FlowRunCreate(flow_name="f"))
        assert (await client.read_flow_run(run.id)).flow_name == "f"
    assert not path.exists()
    async with in_process_client() as client:
        assert await client.count_flow_runs() == 0


def test_server_process_defaults_and_cleanup() -> None:
    server = ServerProcess()
    home = server.home
    assert server.api_url == f"http://127.0.0.1:{server.port}/api"
    assert server.database_url == f"sqlite+aiosqlite:///{home / 'tideflow.db'}"
    with server:
        assert httpx.get(f"{server.api_url}/health").json() == {"status": "ok"}
        assert (home / "tideflow.db").exists()
    assert server.proc is not None and server.proc.returncode == 0
    assert not home.exists()
    assert 1024 <= free_port() <= 65535
