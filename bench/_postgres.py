"""A throwaway PostgreSQL database for one benchmark: created on 127.0.0.1:5432, dropped afterwards.

``BENCH_POSTGRES_ADMIN_URL`` (asyncpg DSN, default ``postgresql://postgres@127.0.0.1:5432/test``)
names the database to connect to while creating and dropping the benchmark's own.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import asyncpg

__all__ = ["ADMIN_DSN", "postgres_database"]

ADMIN_DSN = os.environ.get("BENCH_POSTGRES_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/test")


async def _execute(sql: str) -> None:
    conn = await asyncpg.connect(ADMIN_DSN, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextmanager
def postgres_database(prefix: str) -> Iterator[str]:
    """Yields the SQLAlchemy URL of a fresh database; raises OSError when PostgreSQL is unreachable."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    try:
        asyncio.run(_execute(f'CREATE DATABASE "{name}"'))
    except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
        raise OSError(f"PostgreSQL at {ADMIN_DSN} is unreachable: {exc}") from exc
    base = ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    try:
        yield f"{base}/{name}"
    finally:
        asyncio.run(_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
