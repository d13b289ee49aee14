"""Shared fixtures: an isolated TIDEFLOW_HOME per test, and the database backends to run storage on.

Every test gets a fresh ``TIDEFLOW_HOME`` and no ``TIDEFLOW_API_URL``; auto-start of the local server
is off unless a test turns it on, so no test ever touches a real ``~/.tideflow`` or port 4200.

Storage and API tests take the ``database_url`` fixture, parametrised over SQLite and PostgreSQL.
PostgreSQL cases run when ``TIDEFLOW_TEST_POSTGRES_URL`` is set (each test session creates its own
database there and drops it at the end); they skip with a reason when it is not set, and fail when it
is set but the server cannot be reached.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

PG_ENV = "TIDEFLOW_TEST_POSTGRES_URL"

_ISOLATED_ENV = (
    "TIDEFLOW_API_URL",
    "TIDEFLOW_DATABASE_URL",
    "TIDEFLOW_SERVER_HOST",
    "TIDEFLOW_LOGGING_LEVEL",
)


# The test files that take longest (from `--durations` of a full run), started first: pytest-xdist
# hands out whole files (--dist loadfile) in collection order, so a long file collected last keeps
# one worker busy alone at the end. Order only; a file missing here runs in its usual place.
SLOW_FIRST = (
    "tests/reliability/test_rel_contract_schemathesis.py",
    "tests/reliability/test_rel_faults_chain_sigkill.py",
    "tests/integration/test_workers.py",
    "tests/reliability/test_rel_faults_serve_spool.py",
    "tests/reliability/test_rel_load_sqlite_clients.py",
    "tests/server/test_automations_follows.py",
    "tests/reliability/test_rel_loops_automations.py",
    "tests/reliability/test_rel_faults_events_sigkill.py",
    "tests/integration/test_serve_runner.py",
    "tests/ui/test_ui_security.py",
    "tests/server/test_dispatch_websocket.py",
    "tests/integration/test_cli_prefect_compat.py",
    "tests/reliability/test_rel_schedules_hostile.py",
    "tests/reliability/test_rel_faults_client_spool.py",
    "tests/integration/test_auth_sessions.py",
    "tests/ui/test_ui_axe.py",
    "tests/ui/test_ui_facts.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    rank = {path: i for i, path in enumerate(SLOW_FIRST)}
    root = config.rootpath

    def key(item: pytest.Item) -> int:
        try:
            path = item.path.relative_to(root).as_posix()
        except ValueError:
            return len(rank)
        return rank.get(path, len(rank))

    items.sort(key=key)  # stable: the other files, and the tests within a file, keep their order


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "tideflow-home"
    home.mkdir()
    monkeypatch.setenv("TIDEFLOW_HOME", str(home))
    for name in _ISOLATED_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TIDEFLOW_SERVER_AUTOSTART", "false")
    # A port nothing listens on, so a test that forgot to point at its server fails fast.
    monkeypatch.setenv("TIDEFLOW_SERVER_PORT", str(free_port()))
    return home


async def _pg_admin(url: str, sql: str) -> None:
    import asyncpg

    dsn = url.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(dsn, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session (dropped afterwards)."""
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(
            f"PostgreSQL cases need {PG_ENV} (e.g. postgresql+asyncpg://postgres@127.0.0.1:5432/test)"
        )
    name = f"tideflow_test_{uuid.uuid4().hex[:10]}"
    try:
        asyncio.run(_pg_admin(base, f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # a set but unreachable PostgreSQL must fail the run, not skip
        pytest.fail(f"{PG_ENV} is set but PostgreSQL is unreachable: {type(exc).__name__}: {exc}")
    head, _, _ = base.rpartition("/")
    try:
        yield f"{head}/{name}"
    finally:
        asyncio.run(_pg_admin(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", "postgres"])
def database_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_url(database_kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """A database URL on each backend. On PostgreSQL, a schema-isolated fresh database per test."""
    if database_kind == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"
    base: str = request.getfixturevalue("postgres_url")
    name = f"t_{uuid.uuid4().hex[:12]}"
    asyncio.run(_pg_admin(base, f'CREATE DATABASE "{name}"'))
    request.addfinalizer(
        lambda: asyncio.run(_pg_admin(base, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    )
    head, _, _ = base.rpartition("/")
    return f"{head}/{name}"
