"""aiosqlite with one thread hop per statement instead of four.

aiosqlite runs every call on its connection's thread and hands the result back through the event
loop, and SQLAlchemy's adapter makes four such calls per statement: create a cursor, execute, fetch
all rows, close. Each hop waits for the loop to come round (and for the GIL); on a busy server the
write transaction that holds SQLite's lock spends most of its time in those waits (a profile of 50
chains at once: the lock held 78 % of the time, ~21 hops per state change). Here a statement is
one hop: the cursor is made on the connection's thread at the first execute, the rows are fetched
in the same call and served from memory, and closing is queued on that thread without waiting (the
queue keeps the order, so it runs before the next statement).
"""

from __future__ import annotations

import sqlite3
from collections import deque
from pathlib import Path
from typing import Any

import aiosqlite
from aiosqlite.context import contextmanager

__all__ = ["connect"]


class _Cursor(aiosqlite.Cursor):
    """An aiosqlite cursor that executes and fetches in one call on the connection's thread."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self.iter_chunk_size = conn._iter_chunk_size
        self._conn = conn
        self._cursor: sqlite3.Cursor | None = None  # type: ignore[assignment]
        self._rows: deque[Any] = deque()
        self._closed = False  # the sqlite3 cursor is kept after close: rowcount, lastrowid

    def _sqlite_cursor(self) -> sqlite3.Cursor:
        # On the connection's thread only (sqlite3 objects refuse other threads).
        if self._cursor is None or self._closed:
            self._cursor, self._closed = self._conn._conn.cursor(), False
        return self._cursor

    async def execute(self, sql: str, parameters: Any = None) -> _Cursor:
        def run() -> list[Any]:
            cursor = self._sqlite_cursor()
            cursor.execute(sql, () if parameters is None else parameters)
            return cursor.fetchall() if cursor.description else []

        self._rows = deque(await self._conn._execute(run))  # type: ignore[no-untyped-call]
        return self

    async def executemany(self, sql: str, parameters: Any) -> _Cursor:
        def run() -> None:
            self._sqlite_cursor().executemany(sql, parameters)

        self._rows.clear()
        await self._conn._execute(run)  # type: ignore[no-untyped-call]
        return self

    async def fetchone(self) -> Any:
        return self._rows.popleft() if self._rows else None

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        count = min(len(self._rows), size if size is not None else self.arraysize)
        return [self._rows.popleft() for _ in range(count)]

    async def fetchall(self) -> list[Any]:
        rows, self._rows = list(self._rows), deque()
        return rows

    async def close(self) -> None:
        self._rows.clear()
        if self._cursor is not None and not self._closed and self._conn._running:
            # Queued behind any statement already sent; nothing waits for it.
            self._closed = True
            self._conn._tx.put_nowait((None, self._cursor.close))

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount if self._cursor is not None else -1

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid if self._cursor is not None else None

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize if self._cursor is not None else 1

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        if self._cursor is not None:
            self._cursor.arraysize = value

    @property
    def description(self) -> Any:
        return self._cursor.description if self._cursor is not None else None


class _Connection(aiosqlite.Connection):
    @contextmanager  # aiosqlite's: awaitable and an async context manager, as the original
    async def cursor(self) -> _Cursor:  # type: ignore[override]
        return _Cursor(self)


def connect(path: Path) -> _Connection:
    """An (awaitable) connection to the SQLite file at ``path``, for ``async_creator``."""

    def connector() -> sqlite3.Connection:
        return sqlite3.connect(str(path))

    conn = _Connection(connector, 64)
    conn._thread.daemon = True  # as SQLAlchemy does for its own aiosqlite connections
    return conn
