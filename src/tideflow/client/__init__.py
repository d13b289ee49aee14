"""HTTP clients for the tideflow API (sync and async over one call table) and local-server discovery."""

import sys

# httpx's package import also loads its command-line tool whenever click is installed (uvicorn
# needs click): rich's console, syntax and progress, click and pygments, ~6 MiB and ~30 ms in every
# flow and serve() process. tideflow never runs it; marked absent before the first httpx import,
# httpx keeps its stub ``httpx.main``. A process that imported httpx first keeps the real one.
if "httpx" not in sys.modules:
    sys.modules.setdefault("httpx._main", None)  # type: ignore[assignment]

from tideflow.client._async import AsyncClient, get_async_client
from tideflow.client._local import resolve_api_url, server_is_healthy
from tideflow.client._sync import SyncClient, get_client

__all__ = [
    "AsyncClient",
    "SyncClient",
    "get_async_client",
    "get_client",
    "resolve_api_url",
    "server_is_healthy",
]
