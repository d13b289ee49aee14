"""HTTP clients for the tideflow API (sync and async over one call table) and local-server discovery."""

import sys

# httpx imports its optional command-line tool (and with it rich, ~40 ms) whenever rich is installed;
# marking that module absent makes httpx fall back to its stub, keeping `import tideflow` fast.
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
