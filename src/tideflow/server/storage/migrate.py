"""Alembic migrations run from code: no alembic.ini, the scripts ship inside the package.

The schema is created only here. Migrations run on the async engine through ``connection.run_sync``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy.ext.asyncio import AsyncEngine

from tideflow.server.storage.database import Database

__all__ = ["alembic_config", "current", "downgrade", "reset", "upgrade", "upgrade_engine"]

_SCRIPTS = Path(__file__).with_name("migrations")


def alembic_config() -> Config:
    """An Alembic config pointing at the packaged scripts."""
    config = Config()
    config.set_main_option("script_location", str(_SCRIPTS))
    return config


def _run(engine_connection: Any, fn: Any, revision: str) -> None:
    config = alembic_config()
    # env.py picks the live connection up from here instead of building its own engine.
    config.attributes["connection"] = engine_connection
    fn(config, revision)


async def _with_engine(engine: AsyncEngine, fn: Any, revision: str) -> None:
    async with engine.connect() as conn:
        await conn.run_sync(_run, fn, revision)
        await conn.commit()


async def upgrade_engine(engine: AsyncEngine, revision: str = "head") -> None:
    """Upgrade the database behind ``engine`` (used by the app's lifespan, sharing its engine)."""
    await _with_engine(engine, command.upgrade, revision)


async def _on_url(url: str, fn: Any, revision: str) -> None:
    db = Database(url)
    try:
        await _with_engine(db.engine, fn, revision)
    finally:
        await db.dispose()


async def upgrade(url: str, revision: str = "head") -> None:
    """Upgrade the database at ``url`` to ``revision``."""
    await _on_url(url, command.upgrade, revision)


async def downgrade(url: str, revision: str = "base") -> None:
    """Downgrade the database at ``url`` to ``revision`` (``base`` drops every table)."""
    await _on_url(url, command.downgrade, revision)


async def reset(url: str) -> None:
    """Drop everything and recreate the schema: downgrade to base, then upgrade to head."""
    await downgrade(url, "base")
    await upgrade(url, "head")


async def current(url: str) -> str | None:
    """The revision the database at ``url`` is at, or None before any migration."""
    db = Database(url)
    try:
        async with db.engine.connect() as conn:
            return await conn.run_sync(
                lambda c: MigrationContext.configure(c).get_current_revision()
            )
    finally:
        await db.dispose()
