"""ServerContext: what one running server holds (settings, database), kept on ``app.state.context``.

Later services (event pipeline, scheduler, trigger engine) hang off this object, never off module
globals, so tests can build as many independent servers as they like.
"""

from __future__ import annotations

from dataclasses import dataclass

from tideflow.server.storage import Database
from tideflow.settings import Settings

__all__ = ["ServerContext"]


@dataclass
class ServerContext:
    """The per-app state built by ``create_app``'s lifespan."""

    settings: Settings
    database: Database
