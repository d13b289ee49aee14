"""Items a transaction publishes once it has committed.

Storage functions call ``publish_after_commit(session, topic, item)``; ``Database.write`` passes the
collected items to the broker only after a successful commit, and drops them on rollback.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

__all__ = ["OUTBOX_KEY", "publish_after_commit", "take_outbox"]

OUTBOX_KEY = "tideflow_outbox"


def publish_after_commit(session: AsyncSession, topic: str, item: Any) -> None:
    session.info.setdefault(OUTBOX_KEY, []).append((topic, item))


def take_outbox(session: AsyncSession) -> list[tuple[str, Any]]:
    return list(session.info.pop(OUTBOX_KEY, []))
