"""The SQLite driver connection (storage._sqlite_driver): one thread hop per statement, with the
results, row counts and errors SQLAlchemy expects from aiosqlite."""

from __future__ import annotations

from pathlib import Path

import aiosqlite.core
import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from tideflow.server.storage import Database

pytestmark = pytest.mark.anyio


@pytest.fixture
async def db(tmp_path: Path):  # type: ignore[no-untyped-def]
    database = Database(f"sqlite+aiosqlite:///{tmp_path / 'd.db'}")
    async with database.write() as session:
        await session.execute(sa.text("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT UNIQUE)"))
    yield database
    await database.dispose()


async def test_one_thread_hop_per_statement(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    hops = []
    original = aiosqlite.core.Connection._execute

    async def counted(self, fn, *args, **kwargs):  # type: ignore[no-untyped-def]
        hops.append(fn)
        return await original(self, fn, *args, **kwargs)

    monkeypatch.setattr(aiosqlite.core.Connection, "_execute", counted)
    async with db.write() as session:
        hops.clear()
        for i in range(5):
            await session.execute(sa.text("INSERT INTO t (v) VALUES (:v)"), {"v": f"x{i}"})
        rows = (await session.execute(sa.text("SELECT v FROM t ORDER BY id"))).scalars().all()
        assert len(hops) == 6  # aiosqlite as SQLAlchemy drives it: 4 per statement
    assert rows == [f"x{i}" for i in range(5)]


async def test_results_counts_and_many(db: Database) -> None:
    async with db.write() as session:
        await session.execute(sa.text("INSERT INTO t (v) VALUES (:v)"), [{"v": "a"}, {"v": "b"}])
        inserted = await session.execute(sa.text("INSERT INTO t (v) VALUES ('c')"))
        assert inserted.lastrowid == 3
        updated = await session.execute(sa.text("UPDATE t SET v = v || '!' WHERE id < 3"))
        assert updated.rowcount == 2
    async with db.read() as session:
        result = await session.execute(sa.text("SELECT id, v FROM t ORDER BY id"))
        assert result.fetchone() == (1, "a!")
        assert result.fetchmany(1) == [(2, "b!")]
        assert result.fetchall() == [(3, "c")]
        empty = await session.execute(sa.text("SELECT v FROM t WHERE id > 10"))
        assert empty.first() is None


async def test_an_error_rolls_back_and_the_connection_stays_usable(db: Database) -> None:
    with pytest.raises(IntegrityError):
        async with db.write() as session:
            await session.execute(sa.text("INSERT INTO t (v) VALUES ('dup')"))
            await session.execute(sa.text("INSERT INTO t (v) VALUES ('dup')"))
    async with db.write() as session:
        await session.execute(sa.text("INSERT INTO t (v) VALUES ('after')"))
    async with db.read() as session:
        values = (await session.execute(sa.text("SELECT v FROM t"))).scalars().all()
    assert values == ["after"]
