"""The API clients flow runs use: one SyncClient per process (reused by every sync run), and an
AsyncClient per top-level async run (an httpx AsyncClient belongs to one event loop).

Reusing the sync client keeps its connection open, which keeps a trivial flow call in milliseconds.
"""

from __future__ import annotations

import atexit
import os
import threading

from tideflow.client import AsyncClient, SyncClient
from tideflow.settings import Settings

__all__ = ["forget_sync_client", "new_async_client", "sync_client"]

_lock = threading.Lock()
_client: SyncClient | None = None
_client_key: tuple[str | None, str] | None = None


def _key(settings: Settings) -> tuple[str | None, str]:
    return (settings.api_url.rstrip("/") if settings.api_url else None, settings.local_api_url)


def sync_client(settings: Settings) -> SyncClient:
    """The process's SyncClient for the API ``settings`` point at (a new one when they changed)."""
    global _client, _client_key
    key = _key(settings)
    client = _client
    if client is not None and _client_key == key:
        return client
    with _lock:
        if _client is not None and _client_key == key:
            return _client
        old = _client
        _client = SyncClient(settings=settings)
        _client_key = key
        if old is None:
            atexit.register(_close)
        else:
            old.close()
        return _client


def forget_sync_client() -> None:
    """Drop the cached client (e.g. after the local server went away) so the next run resolves again."""
    global _client, _client_key
    with _lock:
        old, _client, _client_key = _client, None, None
    if old is not None:
        old.close()


def new_async_client(settings: Settings) -> AsyncClient:
    """A fresh AsyncClient for the same API as the sync client (the URL is resolved once per process)."""
    return AsyncClient(sync_client(settings).api_url, settings=settings)


def _close() -> None:
    if _client is not None:
        _client.close()


def _forget_after_fork() -> None:
    # A forked flow-run process must not share the parent's pooled connections (two processes on
    # one socket garble each other's responses) nor a lock some thread held at fork time. The old
    # client is dropped, not closed: closing would act on sockets the parent still uses.
    global _lock, _client, _client_key
    _lock = threading.Lock()
    _client, _client_key = None, None


os.register_at_fork(after_in_child=_forget_after_fork)
