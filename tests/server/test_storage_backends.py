"""Storage below the API: migrations on both backends, SQLite pragmas and write locking, types."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from tideflow.exceptions import TideflowError
from tideflow.schemas import FlowRunCreate
from tideflow.server.app import create_app
from tideflow.server.storage import Database, mask_url, migrate, parse_database_url
from tideflow.server.storage import flow_runs as flow_runs_storage
from tideflow.server.storage.names import ADJECTIVES, ANIMALS, generate_name
from tideflow.server.storage.tables import metadata
from tideflow.server.storage.types import UTCDateTime

pytestmark = pytest.mark.anyio

TABLES = {"flows", "flow_runs", "flow_run_states", "logs"}


async def _tables(url: str) -> set[str]:
    db = Database(url)
    try:
        async with db.engine.connect() as conn:
            return set(await conn.run_sync(lambda c: sa.inspect(c).get_table_names()))
    finally:
        await db.dispose()


def test_head_is_the_single_latest_revision() -> None:
    script = ScriptDirectory.from_config(migrate.alembic_config())
    assert len(script.get_heads()) == 1
    assert [r.revision for r in script.walk_revisions()][-1] == "0001"


async def test_upgrade_downgrade_upgrade(database_url: str) -> None:
    assert await migrate.current(database_url) is None
    await migrate.upgrade(database_url)
    head = ScriptDirectory.from_config(migrate.alembic_config()).get_current_head()
    assert await migrate.current(database_url) == head
    assert TABLES <= await _tables(database_url)
    await migrate.downgrade(database_url, "base")
    assert await migrate.current(database_url) is None
    assert not (TABLES & await _tables(database_url))
    await migrate.upgrade(database_url)
    assert TABLES <= await _tables(database_url)
    await migrate.reset(database_url)
    assert await migrate.current(database_url) == head


async def test_migrations_match_the_table_definitions(database_url: str) -> None:
    await migrate.upgrade(database_url)
    db = Database(database_url)
    try:
        async with db.engine.connect() as conn:
            diff = await conn.run_sync(
                lambda c: compare_metadata(
                    MigrationContext.configure(c, opts={"compare_type": True}), metadata
                )
            )
    finally:
        await db.dispose()
    assert diff == []


async def test_app_lifespan_upgrades_the_database(database_url: str) -> None:
    app = create_app(database_url=database_url)
    async with app.router.lifespan_context(app):
        assert TABLES <= await _tables(database_url)
    assert await migrate.current(database_url) is not None


def _schema(connection: sa.Connection) -> dict[str, object]:
    """Everything the inspector reports about the database's tables (and PostgreSQL sequences)."""
    inspector = sa.inspect(connection)
    tables = {}
    for name in sorted(inspector.get_table_names()):
        columns = [
            {**c, "type": c["type"].compile(connection.dialect)}
            for c in inspector.get_columns(name)
        ]
        tables[name] = {
            "columns": columns,
            "pk": inspector.get_pk_constraint(name),
            "fks": sorted(inspector.get_foreign_keys(name), key=lambda f: str(f["name"])),
            "indexes": sorted(inspector.get_indexes(name), key=lambda i: str(i["name"])),
            "uniques": sorted(inspector.get_unique_constraints(name), key=lambda u: str(u["name"])),
            "checks": sorted(inspector.get_check_constraints(name), key=lambda c: str(c["name"])),
        }
    sequences = inspector.get_sequence_names() if connection.dialect.name == "postgresql" else []
    return {"tables": tables, "sequences": sorted(sequences)}


async def _snapshot(url: str) -> dict[str, object]:
    db = Database(url)
    try:
        async with db.engine.connect() as conn:
            return await conn.run_sync(_schema)
    finally:
        await db.dispose()


async def _upgrade_engine(url: str) -> None:
    db = Database(url)
    try:
        await migrate.upgrade_engine(db.engine)
    finally:
        await db.dispose()


async def _drop_version_table(url: str) -> None:
    db = Database(url)
    try:
        async with db.engine.begin() as conn:
            await conn.execute(sa.text("DROP TABLE alembic_version"))
    finally:
        await db.dispose()


def test_head_revision_read_without_alembic_is_alembics_head() -> None:
    script = ScriptDirectory.from_config(migrate.alembic_config())
    assert migrate.head_revision() == script.get_current_head()


def test_head_revision_is_none_unless_the_history_is_one_chain(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    versions = tmp_path / "migrations" / "versions"
    versions.mkdir(parents=True)
    (versions / "__init__.py").write_text("")
    (versions / "a.py").write_text('revision = "a"\ndown_revision = None\n')
    (versions / "b.py").write_text('revision: str = "b"\ndown_revision = "a"\n')
    monkeypatch.setattr(migrate, "_SCRIPTS", tmp_path / "migrations")
    migrate.head_revision.cache_clear()
    try:
        assert migrate.head_revision() == "b"
        migrate.head_revision.cache_clear()
        (versions / "c.py").write_text('revision = "c"\ndown_revision = "a"\n')  # two heads
        assert migrate.head_revision() is None
        migrate.head_revision.cache_clear()
        (versions / "c.py").write_text('revision = "c"\ndown_revision = ("a", "b")\n')  # merge
        assert migrate.head_revision() is None
    finally:
        migrate.head_revision.cache_clear()


async def test_created_schema_is_the_migrated_schema(database_url: str) -> None:
    # The server creates an empty database from the table definitions (no Alembic): the result must
    # be exactly what replaying every migration builds, on both backends.
    await migrate.upgrade(database_url)
    migrated = await _snapshot(database_url)
    assert TABLES <= set(migrated["tables"])  # type: ignore[call-overload]
    await migrate.downgrade(database_url, "base")
    await _drop_version_table(database_url)
    assert (await _snapshot(database_url))["tables"] == {}
    await _upgrade_engine(database_url)
    assert await migrate.current(database_url) == migrate.head_revision()
    assert await _snapshot(database_url) == migrated


async def test_created_schema_migrates_down_and_up(database_url: str) -> None:
    await _upgrade_engine(database_url)  # the created (not migrated) schema
    head = migrate.head_revision()
    assert await migrate.current(database_url) == head
    await migrate.downgrade(database_url, "0004")
    assert await migrate.current(database_url) == "0004"
    await _upgrade_engine(database_url)  # not at head: Alembic upgrades it
    assert await migrate.current(database_url) == head
    await migrate.downgrade(database_url, "base")
    assert not (TABLES & await _tables(database_url))
    await _upgrade_engine(database_url)  # an empty version table left by a downgrade: Alembic
    assert TABLES <= await _tables(database_url)
    await migrate.reset(database_url)
    assert await migrate.current(database_url) == head


async def test_tables_without_a_revision_are_left_to_alembic(database_url: str) -> None:
    await migrate.upgrade(database_url)
    await _drop_version_table(database_url)
    with pytest.raises(sa.exc.DatabaseError):  # Alembic replays 0001 on top: the tables exist
        await _upgrade_engine(database_url)


def test_server_start_imports_alembic_only_when_it_migrates(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"
    script = (
        "import asyncio, sys\n"
        "from tideflow.server.app import create_app\n"
        "async def main():\n"
        f"    app = create_app(database_url={url!r})\n"
        "    async with app.router.lifespan_context(app):\n"
        "        pass\n"
        "asyncio.run(main())\n"
        "print('alembic' in sys.modules)\n"
    )
    runs = [
        subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, check=True
        ).stdout.strip()
        for _ in ("fresh", "existing")
    ]
    assert runs == ["False", "False"]
    assert asyncio.run(migrate.current(url)) == migrate.head_revision()
    asyncio.run(migrate.downgrade(url, "0004"))
    older = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert older.stdout.strip() == "True", older.stderr
    assert asyncio.run(migrate.current(url)) == migrate.head_revision()


async def test_sqlite_pragmas_are_in_effect(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'nested' / 'dirs' / 'x.db'}"
    db = Database(url)
    try:
        async with db.read() as session:
            values = {
                name: (await session.execute(sa.text(f"PRAGMA {name}"))).scalar()
                for name in (
                    "journal_mode", "foreign_keys", "busy_timeout", "synchronous", "cache_size"
                )
            }  # fmt: skip
    finally:
        await db.dispose()
    assert values == {
        "journal_mode": "wal",
        "foreign_keys": 1,
        "busy_timeout": 30000,
        "synchronous": 1,
        "cache_size": -32768,  # 32 MiB: random-UUID index inserts stay in memory
    }
    assert (tmp_path / "nested" / "dirs" / "x.db").exists()


async def test_sqlite_write_transaction_takes_the_lock_up_front(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    url = f"sqlite+aiosqlite:///{path}"
    await migrate.upgrade(url)
    db = Database(url)
    try:
        async with db.write() as session:
            await session.execute(sa.text("SELECT 1"))  # a read only, yet the write lock is held
            other = sqlite3.connect(path, timeout=0)
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute(
                    "INSERT INTO flows VALUES (x'00', 'n', '[]', '2020-01-01', '2020-01-01')"
                )
            other.close()
        async with db.read() as session:
            await session.execute(sa.text("SELECT 1"))
            other = sqlite3.connect(path, timeout=0)
            other.execute("BEGIN IMMEDIATE")  # a reader does not block a writer
            other.rollback()
            other.close()
    finally:
        await db.dispose()


async def test_foreign_keys_are_enforced(database_url: str) -> None:
    await migrate.upgrade(database_url)
    db = Database(database_url)
    try:
        with pytest.raises(sa.exc.IntegrityError):
            async with db.write() as session:
                await session.execute(
                    sa.text(
                        "INSERT INTO logs (flow_run_id, name, level, message, timestamp) "
                        "VALUES (:r, 'n', 20, 'm', :t)"
                    ).bindparams(
                        sa.bindparam("r", type_=sa.Uuid()), sa.bindparam("t", type_=UTCDateTime())
                    ),
                    {"r": uuid.uuid4(), "t": dt.datetime.now(dt.UTC)},
                )
    finally:
        await db.dispose()


def test_utc_datetime_round_trip_rules() -> None:
    t = UTCDateTime()
    sqlite_dialect = sa.dialects.sqlite.dialect()
    pg_dialect = sa.dialects.postgresql.dialect()
    aware = dt.datetime(2030, 1, 1, 14, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    assert t.process_bind_param(aware, sqlite_dialect) == dt.datetime(2030, 1, 1, 12)
    assert t.process_bind_param(aware, pg_dialect) == dt.datetime(2030, 1, 1, 12, tzinfo=dt.UTC)
    assert t.process_bind_param(dt.datetime(2030, 1, 1, 12), pg_dialect) == dt.datetime(
        2030, 1, 1, 12, tzinfo=dt.UTC
    )
    assert t.process_result_value(dt.datetime(2030, 1, 1, 12), sqlite_dialect) == dt.datetime(
        2030, 1, 1, 12, tzinfo=dt.UTC
    )
    with pytest.raises(TypeError):
        t.process_bind_param("2030-01-01", sqlite_dialect)


def test_database_url_checks_and_masking() -> None:
    with pytest.raises(TideflowError, match="unsupported database URL"):
        parse_database_url("mysql://u@h/db")
    with pytest.raises(
        TideflowError, match="unsupported database URL 'postgresql://u:\\*\\*\\*@h/db'"
    ):
        parse_database_url("postgresql://u:secret@h/db")
    with pytest.raises(TideflowError, match="invalid database URL"):
        parse_database_url("not a url")
    with pytest.raises(TideflowError, match="in-memory"):
        parse_database_url("sqlite+aiosqlite://")
    assert (
        mask_url("postgresql+asyncpg://u:secret@h:5432/db")
        == "postgresql+asyncpg://u:***@h:5432/db"
    )
    with pytest.raises(TideflowError, match="unsupported"):
        create_app(database_url="sqlite:///x.db")


async def test_sqlite_path_with_tilde_is_expanded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    db = Database("sqlite+aiosqlite:///~/deep/er/t.db")
    try:
        async with db.write() as session:
            await session.execute(sa.text("CREATE TABLE t (x INTEGER)"))
    finally:
        await db.dispose()
    assert (tmp_path / "deep" / "er" / "t.db").exists()


async def test_absent_json_values_are_sql_null(database_url: str) -> None:
    app = create_app(database_url=database_url)
    async with app.router.lifespan_context(app):
        db: Database = app.state.context.database
        async with db.write() as session:
            run, _ = await flow_runs_storage.create_flow_run(session, FlowRunCreate(flow_name="f"))
        async with db.read() as session:
            row = (
                await session.execute(
                    sa.text("SELECT created_by IS NULL FROM flow_runs WHERE id = :id").bindparams(
                        sa.bindparam("id", type_=sa.Uuid())
                    ),
                    {"id": run.id},
                )
            ).scalar_one()
    assert row in (True, 1)


def test_generated_names_are_adjective_animal() -> None:
    assert len(set(ADJECTIVES)) >= 100 and len(set(ANIMALS)) >= 100
    rng = random.Random(7)
    names = {generate_name(rng) for _ in range(200)}
    assert len(names) > 190  # ~12,000 combinations: collisions are rare
    for name in names:
        adjective, animal = name.split("-")
        assert adjective in ADJECTIVES and animal in ANIMALS


def test_generated_names_leave_the_global_random_state_alone() -> None:
    # Servers in threads name runs while user code or Hypothesis uses ``random``: never touch it.
    before = random.getstate()
    names = {generate_name() for _ in range(50)}
    assert random.getstate() == before and len(names) > 1
