"""The Database object: one async engine, its session factory, and the write discipline per backend.

SQLite allows one writer at a time, so write transactions are serialised inside the process by an
``asyncio.Lock`` held here and opened with ``BEGIN IMMEDIATE``; concurrent requests then queue in
Python instead of failing with "database is locked". PostgreSQL writes run concurrently and rely on
row locks (``SELECT ... FOR UPDATE``) where a read-modify-write must be atomic.

Once the server arms ``watch_file()`` (SQLite), every transaction first checks that the file at the
path is still the one opened, and a write checks again after its commit, before anyone acknowledges
it: a deleted or replaced file raises ``DatabaseUnavailable`` instead (see ``storage.guard``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from tideflow.exceptions import TideflowError
from tideflow.server.storage import _sqlite_driver as sqlite_driver
from tideflow.server.storage.guard import FileWatch
from tideflow.server.storage.outbox import OUTBOX_KEY, take_outbox

__all__ = ["Database", "mask_url", "parse_database_url"]

_SUPPORTED = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg"}
_WRITE = "tideflow_write"


def parse_database_url(url: str) -> URL:
    """Parse and check a database URL; only the async drivers tideflow ships are accepted."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise TideflowError(f"invalid database URL {url!r}") from None
    if parsed.drivername not in _SUPPORTED.values():
        raise TideflowError(
            f"unsupported database URL {mask_url(url)!r}: use sqlite+aiosqlite:///path/to/file.db "
            "or postgresql+asyncpg://user@host:port/dbname"
        )
    if parsed.get_backend_name() == "sqlite":
        if parsed.database in (None, "", ":memory:"):
            raise TideflowError("an in-memory SQLite database is not supported: give a file path")
        parsed = parsed.set(database=str(Path(parsed.database).expanduser()))
    return parsed


def mask_url(url: str | URL) -> str:
    """The URL with any password replaced by ``***``."""
    try:
        parsed = make_url(url) if isinstance(url, str) else url
    except ArgumentError:
        return "<invalid database URL>"
    return parsed.render_as_string(hide_password=True)


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # Take transaction control away from the sqlite3 module: we emit BEGIN ourselves (see _sqlite_begin).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    for pragma in (
        "journal_mode=WAL",
        "busy_timeout=30000",
        "foreign_keys=ON",
        "synchronous=NORMAL",
        # Event keys are random UUIDs, so inserts touch index pages all over the file: with the
        # default 2 MiB cache, 100,000-event ingests went to disk pages per row (raw SQLite test:
        # 84 -> 63 us/event with a larger cache). Pages are only held once read, up to this size.
        "cache_size=-32768",
    ):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def _sqlite_begin(conn: Any) -> None:
    # Writers take the database lock up front; readers start a deferred (snapshot) transaction.
    immediate = conn.get_execution_options().get(_WRITE, False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


class Database:
    """An engine, a session factory and the backend's name, built from one URL."""

    def __init__(self, url: str) -> None:
        parsed = parse_database_url(url)
        self.url = url
        self.dialect: str = parsed.get_backend_name()
        # The SQLite file (None on PostgreSQL) and, once armed, the watch on it.
        self.path: Path | None = None
        self.file_watch: FileWatch | None = None
        if self.dialect == "sqlite":
            assert parsed.database is not None
            self.path = Path(parsed.database)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            path = self.path

            async def connect() -> Any:
                # One thread hop per statement (see _sqlite_driver).
                return await sqlite_driver.connect(path)

            self.engine: AsyncEngine = create_async_engine(
                parsed, pool_size=8, max_overflow=8, async_creator=connect
            )
            event.listen(self.engine.sync_engine, "connect", _sqlite_connect)
            event.listen(self.engine.sync_engine, "begin", _sqlite_begin)
        else:
            self.engine = create_async_engine(
                parsed, pool_pre_ping=True, pool_size=10, max_overflow=20, pool_recycle=1800
            )
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False, autoflush=False)
        self._write_lock = asyncio.Lock()
        # Receives what committed write transactions queued with storage.outbox (the broker).
        self.on_commit: Callable[[list[tuple[str, Any]]], None] | None = None
        # Runs last inside a PostgreSQL write transaction that queued broker items, before its
        # commit: the replicas' fan-out notifies there, so a notice is sent iff the commit is made.
        self.before_commit: Callable[[AsyncSession], Awaitable[None]] | None = None

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @property
    def masked_url(self) -> str:
        return mask_url(self.url)

    def watch_file(self) -> None:
        """From now on, refuse every transaction once the SQLite file is deleted or replaced."""
        if self.path is not None:
            self.file_watch = FileWatch(self.path)

    def check_file(self) -> None:
        """Raise DatabaseUnavailable when the watched SQLite file is gone (no-op when unwatched)."""
        if self.file_watch is not None:
            self.file_watch.check()

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncSession]:
        """A session in a read transaction (a snapshot on SQLite; READ COMMITTED on PostgreSQL)."""
        # Also keeps the pool from opening a new connection, which would create an empty file.
        self.check_file()
        async with self.sessions() as session, session.begin():
            yield session

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncSession]:
        """A session in a write transaction, committed on exit and rolled back on error.

        On SQLite with a watched file, a commit that landed in a deleted or replaced file raises
        DatabaseUnavailable on exit (nothing is published), so the caller never acknowledges it.
        """
        if not self.is_sqlite:
            async with self.sessions() as session:
                async with session.begin():
                    yield session
                    if self.before_commit is not None and session.info.get(OUTBOX_KEY):
                        await self.before_commit(session)
                self._after_commit(session)
            return
        async with self._write_lock, self.sessions() as session:
            self.check_file()
            async with session.begin():
                await session.connection(execution_options={_WRITE: True})
                yield session
            self.check_file()
            self._after_commit(session)

    def _after_commit(self, session: AsyncSession) -> None:
        items = take_outbox(session)
        if items and self.on_commit is not None:
            self.on_commit(items)

    async def dispose(self) -> None:
        await self.engine.dispose()
