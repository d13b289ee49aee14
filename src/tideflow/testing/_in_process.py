"""in_process_client: the real app on a temporary SQLite file (or a given URL), called through ASGI."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

from tideflow.client import AsyncClient
from tideflow.server.app import create_app
from tideflow.settings import Settings, get_settings

__all__ = ["in_process_client"]

TEST_HOST = "testserver"  # the host name the in-process client sends


@asynccontextmanager
async def in_process_client(
    database_url: str | None = None, *, settings: Settings | None = None
) -> AsyncIterator[AsyncClient]:
    """An AsyncClient wired to a fresh app whose lifespan runs for the duration of the block."""
    with tempfile.TemporaryDirectory(prefix="tideflow-test-") as tmp:
        url = database_url or f"sqlite+aiosqlite:///{Path(tmp) / 'tideflow.db'}"
        settings = settings or get_settings()
        # The app answers only the hosts it knows (DNS-rebinding guard): add the test host.
        hosts = ",".join(filter(None, (settings.server_allowed_hosts, TEST_HOST)))
        app_settings = settings.model_copy(update={"server_allowed_hosts": hosts})
        app = create_app(app_settings, database_url=url)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with AsyncClient(
                api_url=f"http://{TEST_HOST}/api", settings=settings, transport=transport
            ) as client:
                yield client
