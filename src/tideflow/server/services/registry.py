"""The background services one server runs: ``build_services(context)`` lists them, one line each;
the app's lifespan runs each as an asyncio task and stops them at shutdown."""

from __future__ import annotations

from tideflow.server.context import ServerContext
from tideflow.server.services.base import Service
from tideflow.server.triggers.engine import TriggerEngine

__all__ = ["build_services"]


def build_services(context: ServerContext) -> list[Service]:
    """Fresh service objects for one server (no shared state between apps)."""
    return [
        TriggerEngine(context.database, context.broker, crash_at=context.settings.test_crash_at),
    ]
