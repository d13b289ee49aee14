"""Three ``tideflow server start`` processes at once on a fresh PostgreSQL database (a compose file
with replicas): all three come up healthy and the schema is exactly at head, once. Before the
migration advisory lock, two of three exited with a unique violation on pg_type_typname_nsp_index."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest
import sqlalchemy as sa

from tideflow.server.storage import Database
from tideflow.server.storage.migrate import current, head_revision
from tideflow.server.storage.tables import metadata
from tideflow.testing import ServerProcess

REPLICAS = 3


@pytest.fixture
def fresh_pg(postgres_url: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database of its own, dropped afterwards."""
    name = f"rel_{uuid.uuid4().hex[:12]}"
    admin = postgres_url.replace("postgresql+asyncpg://", "postgresql://")

    async def execute(sql: str) -> None:
        conn = await asyncpg.connect(admin, timeout=5)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(execute(f'CREATE DATABASE "{name}"'))
    head, _, _ = postgres_url.rpartition("/")
    yield f"{head}/{name}"
    asyncio.run(execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _tables(url: str) -> tuple[set[str], list[str]]:
    db = Database(url)
    try:
        async with db.engine.connect() as conn:
            names = await conn.run_sync(lambda c: set(sa.inspect(c).get_table_names()))
            versions = await conn.execute(sa.text("SELECT version_num FROM alembic_version"))
            return names, [str(v) for v in versions.scalars().all()]
    finally:
        await db.dispose()


def test_three_servers_started_together_on_a_fresh_database_all_come_up(
    fresh_pg: str, tmp_path: Path
) -> None:
    servers = [ServerProcess(fresh_pg, home=tmp_path / f"home{i}") for i in range(REPLICAS)]
    gate = threading.Barrier(REPLICAS)
    failures: dict[int, BaseException] = {}

    def start(i: int) -> None:
        gate.wait()
        try:
            servers[i].start()
        except BaseException as exc:  # reported below, with the server's output
            failures[i] = exc

    threads = [threading.Thread(target=start, args=(i,)) for i in range(REPLICAS)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert not failures, {i: str(e) for i, e in failures.items()}
        for server in servers:
            assert httpx.get(f"{server.api_url}/health", timeout=5).status_code == 200
        # Each serves the same database: a flow made through one is seen through the others.
        made = httpx.post(f"{servers[0].api_url}/flows/", json={"name": "replica"}, timeout=10)
        assert made.status_code == 201, made.text
        for server in servers[1:]:
            seen = httpx.get(f"{server.api_url}/flows/name/replica", timeout=10)
            assert seen.status_code == 200 and seen.json()["id"] == made.json()["id"]
    finally:
        for server in servers:
            server.stop()
    names, versions = asyncio.run(_tables(fresh_pg))
    assert versions == [head_revision()]
    assert asyncio.run(current(fresh_pg)) == head_revision()
    assert names == {*metadata.tables, "alembic_version"}
