"""Replicas on one real PostgreSQL: a fresh database per test (created and dropped here), server
processes started with ``tideflow.testing.ServerProcess``, and who holds which lease read from
``pg_locks``. Every test here needs ``TIDEFLOW_TEST_POSTGRES_URL``."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import pytest

from tideflow.server.replicas.lease import asyncpg_dsn, lease_key
from tideflow.testing import ServerProcess

T = TypeVar("T")


async def _admin(url: str, sql: str) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(url), timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture
def pg_db(postgres_url: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database of this test's own, dropped afterwards."""
    name = f"scale_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(postgres_url, f'CREATE DATABASE "{name}"'))
    head, _, _ = postgres_url.rpartition("/")
    yield f"{head}/{name}"
    asyncio.run(_admin(postgres_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def start_replicas(
    url: str,
    home: Path,
    count: int,
    *,
    args: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
) -> list[ServerProcess]:
    """``count`` servers on ``url``, started one after the other (the first takes the leases)."""
    servers = []
    for i in range(count):
        server = ServerProcess(url, home=home / f"replica{i}", startup_timeout=90, args=args,
                               env=env)  # fmt: skip
        server.start()
        servers.append(server)
    return servers


def lease_holder(url: str, name: str) -> int | None:
    """The pid of the process holding the lease ``name`` (from its lock connection's
    application_name), or None when nobody holds it."""

    async def read() -> int | None:
        conn = await asyncpg.connect(asyncpg_dsn(url), timeout=5)
        try:
            key = lease_key(name)
            row = await conn.fetchrow(
                "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
                " WHERE l.locktype = 'advisory' AND l.granted AND l.database = "
                "(SELECT oid FROM pg_database WHERE datname = current_database())"
                " AND l.classid = $1 AND l.objid = $2",
                (key >> 32) & 0xFFFFFFFF,
                key & 0xFFFFFFFF,
            )
        finally:
            await conn.close()
        if row is None:
            return None
        return int(str(row[0]).rsplit(":", 1)[1])

    return asyncio.run(read())


def wait_for(what: str, check: Callable[[], T | None], timeout: float = 60.0) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


class Script:
    """A Python script run as a subprocess against ``api_url`` (serve(), a services process)."""

    def __init__(self, argv: list[str], log: Path, env: dict[str, str]) -> None:
        self.log = log
        with log.open("wb") as out:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT,
                                         env={**os.environ, **env})  # fmt: skip

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def serve_script(path: Path, source: str, api_url: str, home: Path, **env: str) -> Script:
    path.write_text(source)
    return Script([sys.executable, str(path)], path.with_suffix(".log"),
                  {"TIDEFLOW_API_URL": api_url, "TIDEFLOW_HOME": str(home), **env})  # fmt: skip


def services_process(url: str, home: Path, *only: str) -> Script:
    argv = [sys.executable, "-m", "tideflow", "server", "services", "start",
            "--database-url", url, "--log-level", "INFO"]  # fmt: skip
    if only:
        argv += ["--only", ",".join(only)]
    home.mkdir(parents=True, exist_ok=True)
    return Script(argv, home / "services.log", {"TIDEFLOW_HOME": str(home)})


def stop_all(*things: Any) -> None:
    for thing in things:
        if thing is not None:
            thing.stop()


def served(api_url: str, *names: str, timeout: float = 60.0) -> list[Any]:
    """The deployments ``names`` once all are READY (served by a connected runner)."""
    from tideflow.client import SyncClient
    from tideflow.exceptions import ObjectNotFound

    def check() -> list[Any] | None:
        with SyncClient(api_url) as client:
            try:
                found = [client.read_deployment_by_name(n) for n in names]
            except ObjectNotFound:
                return None
        return found if all(d.status.value == "READY" for d in found) else None

    return wait_for(f"{', '.join(names)} to be served", check, timeout)


@pytest.fixture(scope="module")
def pg_module_db(postgres_url: str) -> Iterator[str]:
    """Like ``pg_db``, shared by the tests of one module (one cluster of replicas)."""
    name = f"scale_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(postgres_url, f'CREATE DATABASE "{name}"'))
    head, _, _ = postgres_url.rpartition("/")
    yield f"{head}/{name}"
    asyncio.run(_admin(postgres_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
