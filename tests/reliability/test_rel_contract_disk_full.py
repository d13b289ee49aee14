"""A database whose disk is full answered 500 with SQLAlchemy's raw text; now a 507 with one line
("the database is out of space: ..."), no statement and no parameters. Filled for real: SQLite on a
small tmpfs, PostgreSQL with the logs table moved to a tablespace on a small tmpfs. What was stored
before stays readable, the server keeps answering, and writes work again once space is back. On
SQLite, /api/events/in closes with 1011 and the same reason (it ended with no close frame).

Mounting needs root (CAP_SYS_ADMIN); the PostgreSQL case also needs the database server on this host
(the tablespace is a local directory it writes to). Each skips naming what is missing.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import pwd
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosedError
from websockets.sync.client import connect

from tideflow.client._events import ws_url
from tideflow.testing import ServerProcess

PG_ENV = "TIDEFLOW_TEST_POSTGRES_URL"


def _need_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("filling a disk for real mounts a small tmpfs, which needs root")
    if shutil.which("mount") is None:
        pytest.skip("filling a disk for real needs the mount command")


@contextlib.contextmanager
def _mount_tmpfs(size: str, options: str = "") -> Iterator[Path]:
    directory = Path(tempfile.mkdtemp(prefix="tideflow-full-"))
    directory.chmod(0o755)
    opts = f"size={size}" + (f",{options}" if options else "")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(directory)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        directory.rmdir()
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield directory
    finally:
        subprocess.run(["umount", "-l", str(directory)], check=False)
        directory.rmdir()


def _grow(directory: Path, size: str) -> None:
    subprocess.run(["mount", "-o", f"remount,size={size}", str(directory)], check=True)


def _logs(run_id: str, count: int = 10) -> list[dict[str, Any]]:
    # Random text: PostgreSQL compresses long values, so repeated characters would never fill it.
    now = dt.datetime.now(dt.UTC).isoformat()
    return [
        {
            "flow_run_id": run_id,
            "name": "fill",
            "level": 20,
            "message": os.urandom(10_000).hex(),
            "timestamp": now,
        }
        for _ in range(count)
    ]


def _fill_until_refused(api: httpx.Client, run_id: str) -> tuple[int, httpx.Response]:
    """Post batches of 10 logs until one is refused; how many were stored, and the refusal."""
    stored = 0
    for _ in range(400):
        response = api.post("/logs/", json=_logs(run_id))
        if response.status_code != 201:
            return stored, response
        stored += response.json()["accepted"]
    raise AssertionError("the disk never filled")


def _assert_out_of_space(response: httpx.Response) -> None:
    assert response.status_code == 507, response.text
    detail = response.json()["detail"]
    assert detail.startswith("the database is out of space: "), detail
    assert "\n" not in detail
    for leak in ("INSERT", "[SQL", "parameters", "sqlalche.me", "fill"):
        assert leak not in detail, detail


def _assert_answers_and_kept(api: httpx.Client, run_id: str, stored: int) -> None:
    started = time.monotonic()
    assert api.get("/health").status_code == 200
    assert time.monotonic() - started < 5
    assert api.get(f"/flow_runs/{run_id}").json()["id"] == run_id
    kept = api.post("/logs/filter", json={"flow_run_id": [run_id], "limit": 10_000})
    assert kept.status_code == 200 and len(kept.json()) == stored


def _check_full_then_recovered(api: httpx.Client, grow: Any) -> None:
    run_id = api.post("/flow_runs/", json={"flow_name": "fill"}).json()["id"]
    stored, refused = _fill_until_refused(api, run_id)
    assert stored > 0
    _assert_out_of_space(refused)
    _assert_answers_and_kept(api, run_id, stored)

    grow()
    again = api.post("/logs/", json=_logs(run_id))
    assert again.status_code == 201, again.text
    _assert_answers_and_kept(api, run_id, stored + 10)


def _events_in_closes_for_space(server: ServerProcess, api: httpx.Client) -> None:
    """/api/events/in on a full disk: closed with 1011 and the reason, nothing acknowledged."""
    now = dt.datetime.now(dt.UTC).isoformat()
    events = [
        {
            "id": str(uuid.uuid4()),
            "occurred": now,
            "event": "disk.fill",
            "resource": {"tideflow.resource.id": "disk"},
            "payload": {"fill": os.urandom(5_000).hex()},
        }
        for _ in range(20)
    ]
    with connect(ws_url(server.api_url, "/events/in")) as ws:
        ws.send(json.dumps(events))
        with pytest.raises(ConnectionClosedError) as closed:
            ws.recv(timeout=30)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1011
    assert closed.value.rcvd.reason.startswith("the database is out of space: "), closed.value
    assert api.get(f"/events/{events[0]['id']}").status_code == 404


def test_sqlite_disk_full_is_a_507(tmp_path: Path) -> None:
    _need_root()
    with _mount_tmpfs("3m") as directory:
        url = f"sqlite+aiosqlite:///{directory / 'tideflow.db'}"
        with ServerProcess(url, home=tmp_path / "home") as server:
            with httpx.Client(base_url=server.api_url, timeout=30) as api:

                def check_events_then_grow() -> None:
                    _events_in_closes_for_space(server, api)
                    _grow(directory, "64m")

                _check_full_then_recovered(api, check_events_then_grow)
            # The server's log says why, in one line.
            log = server.output_tail(50)
            assert "the database is out of space: database or disk is full" in log


async def _pg(url: str, sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"), timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture
def postgres_tablespace() -> Iterator[tuple[str, str, Path]]:
    """(admin URL, tablespace name, its directory): a tablespace on a 1 MiB tmpfs."""
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(f"the PostgreSQL case needs {PG_ENV}")
    _need_root()
    try:
        owner = pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("the PostgreSQL case needs the database server on this host (no postgres user)")
    name = f"tideflow_full_{uuid.uuid4().hex[:10]}"
    with _mount_tmpfs("1m", f"uid={owner.pw_uid},gid={owner.pw_gid},mode=0700") as directory:
        try:
            asyncio.run(_pg(base, f"CREATE TABLESPACE {name} LOCATION '{directory}'"))
        except Exception as exc:  # a server elsewhere cannot see our directory
            pytest.skip(f"PostgreSQL cannot use a local tablespace here: {exc}")
        try:
            yield base, name, directory
        finally:
            asyncio.run(_pg(base, f"DROP TABLESPACE IF EXISTS {name}"))


def test_postgres_disk_full_is_a_507(postgres_tablespace: tuple[str, str, Path]) -> None:
    base, tablespace, directory = postgres_tablespace
    database = f"t_{uuid.uuid4().hex[:12]}"
    asyncio.run(_pg(base, f'CREATE DATABASE "{database}"'))
    url = f"{base.rpartition('/')[0]}/{database}"
    try:
        with ServerProcess(url) as server:
            # Only the logs table lives on the small disk: the rest of the server keeps working.
            asyncio.run(_pg(url, f"ALTER TABLE logs SET TABLESPACE {tablespace}"))
            with httpx.Client(base_url=server.api_url, timeout=30) as api:
                _check_full_then_recovered(api, lambda: _grow(directory, "64m"))
            assert "the database is out of space: could not extend file" in server.output_tail(50)
    finally:
        asyncio.run(_pg(base, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
