"""HTTP clients for the tideflow API (sync and async over one call table) and local-server discovery."""

from tideflow.client._async import AsyncClient, get_async_client
from tideflow.client._local import resolve_api_url, server_is_healthy
from tideflow.client._sync import SyncClient, get_client

__all__ = ["AsyncClient", "SyncClient", "get_async_client", "get_client", "resolve_api_url", "server_is_healthy"]
