"""Alembic migrations run from code: no alembic.ini, the scripts ship inside the package.

Migrations run on the async engine through ``connection.run_sync``. The server's start-up check
(``upgrade_engine``) avoids importing Alembic (~50 ms, ~6 MiB) in the two common cases: a database
already at head is left alone, and an empty one gets ``metadata.create_all`` stamped with the head
revision, which tests prove yields the schema the migrations build. Anything else runs Alembic.

On PostgreSQL every migration holds a session advisory lock (one fixed key) on a side connection:
servers started together on a fresh database (replicas) create the schema one at a time, and the
others, once the lock is theirs, find it at head and go on. (Without it, concurrent ``CREATE TABLE``
of the same type failed with a unique violation on ``pg_type_typname_nsp_index``.)
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from tideflow.exceptions import TideflowError
from tideflow.server.storage.database import Database
from tideflow.server.storage.tables import metadata

if TYPE_CHECKING:
    from alembic.config import Config
    from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = [
    "alembic_config",
    "current",
    "downgrade",
    "head_revision",
    "migration_lock",
    "reset",
    "upgrade",
    "upgrade_engine",
]

_SCRIPTS = Path(__file__).with_name("migrations")
_VERSION_TABLE = "alembic_version"
_REVISION_LINE = re.compile(r"^(revision|down_revision)\s*(?::[^=]*)?=\s*(.+?)\s*$", re.MULTILINE)
_QUOTED = re.compile(r"""^["']([\w-]+)["']$""")
# PostgreSQL advisory lock key for migrations: the bytes of "tideflow" as a signed 64-bit integer.
MIGRATION_LOCK_KEY = int.from_bytes(b"tideflow", "big", signed=True)

# The table Alembic keeps its revision in, as Alembic itself creates it.
_version_metadata = sa.MetaData()
_version_table = sa.Table(
    _VERSION_TABLE,
    _version_metadata,
    sa.Column("version_num", sa.String(32), nullable=False),
    sa.PrimaryKeyConstraint("version_num", name="alembic_version_pkc"),
)


def alembic_config() -> Config:
    """An Alembic config pointing at the packaged scripts."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_SCRIPTS))
    return config


@cache
def head_revision() -> str | None:
    """The head revision id, read from the scripts' ``revision =`` lines without importing Alembic.

    None when the scripts are not one plain linear chain (then callers let Alembic decide), so a new
    migration version can never leave this stale.
    """
    revisions: dict[str, str | None] = {}
    for path in sorted((_SCRIPTS / "versions").glob("*.py")):
        found = dict(_REVISION_LINE.findall(path.read_text(encoding="utf-8")))
        if not found:
            continue  # __init__.py and helpers
        rev, down = (_QUOTED.match(found.get(k, "")) for k in ("revision", "down_revision"))
        if rev is None or (down is None and found.get("down_revision") != "None"):
            return None  # a tuple (merge), a computed id: not ours to interpret
        revisions[rev.group(1)] = down.group(1) if down else None
    heads = set(revisions) - set(revisions.values())
    return heads.pop() if len(heads) == 1 else None


def _run(engine_connection: Any, fn_name: str, revision: str) -> None:
    from alembic import command

    config = alembic_config()
    # env.py picks the live connection up from here instead of building its own engine.
    config.attributes["connection"] = engine_connection
    getattr(command, fn_name)(config, revision)


@asynccontextmanager
async def migration_lock(engine: AsyncEngine) -> AsyncIterator[None]:
    """Hold the migration advisory lock on PostgreSQL (waiting for it); nothing on SQLite.

    A session lock on its own connection, so the migration's own transactions stay as they are; a
    process that dies holding it loses its connection, and with it the lock.
    """
    if engine.dialect.name != "postgresql":
        yield
        return
    async with engine.connect() as conn:
        await conn.execute(sa.text(f"SELECT pg_advisory_lock({MIGRATION_LOCK_KEY})"))
        await conn.commit()
        try:
            yield
        finally:
            await conn.execute(sa.text(f"SELECT pg_advisory_unlock({MIGRATION_LOCK_KEY})"))
            await conn.commit()


async def _with_engine(engine: AsyncEngine, fn_name: str, revision: str) -> None:
    async with engine.connect() as conn:
        await conn.run_sync(_run, fn_name, revision)
        await conn.commit()


def _our_tables(connection: sa.Connection) -> set[str]:
    return set(sa.inspect(connection).get_table_names())


def _fast_path(connection: sa.Connection, head: str, refuse_empty: str | None) -> bool:
    """True when the database is now at ``head`` without Alembic: already there, or created empty."""
    names = _our_tables(connection)
    if _VERSION_TABLE in names:
        versions = connection.execute(sa.select(_version_table.c.version_num)).scalars().all()
        return versions == [head]
    if names & set(metadata.tables):
        return False  # tables without a revision: let Alembic say what is wrong
    if refuse_empty is not None:
        raise TideflowError(refuse_empty)
    metadata.create_all(connection, checkfirst=False)
    _version_metadata.create_all(connection, checkfirst=False)
    connection.execute(_version_table.insert().values(version_num=head))
    return True


def _refuse_if_empty(connection: sa.Connection, refuse_empty: str) -> None:
    if not _our_tables(connection) & {_VERSION_TABLE, *metadata.tables}:
        raise TideflowError(refuse_empty)


async def upgrade_engine(
    engine: AsyncEngine, revision: str = "head", *, refuse_empty: str | None = None
) -> None:
    """Upgrade the database behind ``engine`` (used by the app's lifespan, sharing its engine).

    With ``refuse_empty``, a database holding no tideflow tables is not created but refused with
    that message (the file that was there is gone; see ``storage.guard``).
    """
    head = head_revision() if revision == "head" else None
    async with migration_lock(engine):
        if head is not None:
            async with engine.connect() as conn:
                done = await conn.run_sync(_fast_path, head, refuse_empty)
                await conn.commit()
            if done:
                return
        elif refuse_empty is not None:
            async with engine.connect() as conn:
                await conn.run_sync(_refuse_if_empty, refuse_empty)
        await _with_engine(engine, "upgrade", revision)


async def _on_url(url: str, fn_name: str, revision: str) -> None:
    db = Database(url)
    try:
        async with migration_lock(db.engine):
            await _with_engine(db.engine, fn_name, revision)
    finally:
        await db.dispose()


async def upgrade(url: str, revision: str = "head") -> None:
    """Upgrade the database at ``url`` to ``revision`` (always through Alembic)."""
    await _on_url(url, "upgrade", revision)


async def downgrade(url: str, revision: str = "base") -> None:
    """Downgrade the database at ``url`` to ``revision`` (``base`` drops every table)."""
    await _on_url(url, "downgrade", revision)


async def reset(url: str) -> None:
    """Drop everything and recreate the schema: downgrade to base, then upgrade to head."""
    await downgrade(url, "base")
    await upgrade(url, "head")


async def current(url: str) -> str | None:
    """The revision the database at ``url`` is at, or None before any migration."""
    from alembic.runtime.migration import MigrationContext

    db = Database(url)
    try:
        async with db.engine.connect() as conn:
            return await conn.run_sync(
                lambda c: MigrationContext.configure(c).get_current_revision()
            )
    finally:
        await db.dispose()
