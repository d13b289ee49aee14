"""The credentials the SDK and CLI send: ``Authorization: Bearer $TIDEFLOW_API_KEY`` on every HTTP
request and every websocket handshake (events in and out, the runner's and task workers' sockets)."""

from __future__ import annotations

from tideflow.settings import Settings, get_settings

__all__ = ["auth_headers"]


def auth_headers(settings: Settings | None = None) -> dict[str, str]:
    """The Authorization header for the configured API key; empty when none is set."""
    key = (settings or get_settings()).api_key
    return {"Authorization": f"Bearer {key.strip()}"} if key and key.strip() else {}
