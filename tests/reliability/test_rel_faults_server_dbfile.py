"""The SQLite database file under a real server: deleted while events are posted (no write is
acknowledged after it: 503 with a detail, websocket closed with the reason, health 503, one ERROR
line), a restart that would silently create an empty database in its place (refused, one line,
unless ``--create-database``), and a read-only home (one line, non-zero exit, no traceback; the
auto-starting client shows that line too)."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tideflow.client._events import ws_url
from tideflow.testing import ServerProcess, free_port

PY = sys.executable
GONE = "stopped accepting writes"


def _events(n: int) -> list[dict[str, Any]]:
    now = dt.datetime.now(dt.UTC).isoformat()
    return [
        {
            "id": str(uuid.uuid4()),
            "occurred": now,
            "event": "fault.tick",
            "resource": {"tideflow.resource.id": "fault.r"},
            "payload": {"i": i},
        }
        for i in range(n)
    ]


def _start_cli(
    home: Path, url: str, *extra: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``tideflow server start`` expected to refuse (it exits by itself, before serving)."""
    return subprocess.run(
        [
            PY,
            "-m",
            "tideflow",
            "server",
            "start",
            "--host",
            "127.0.0.1",
            "--port",
            str(free_port()),
            "--database-url",
            url,
            *extra,
        ],
        env={**os.environ, "TIDEFLOW_HOME": str(home), **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def _one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: "), lines
    return lines[0]


class Poster(threading.Thread):
    """POSTs batches of events until stopped; records (started, status, body) per request."""

    def __init__(self, api_url: str) -> None:
        super().__init__(daemon=True)
        self.api_url = api_url
        self.results: list[tuple[float, int, dict[str, Any]]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        with httpx.Client(base_url=self.api_url, timeout=10) as http:
            while not self.stop.is_set():
                started = time.monotonic()
                response = http.post("/events", json=_events(20))
                self.results.append((started, response.status_code, response.json()))

    def acked(self) -> int:
        return sum(len(body.get("accepted", [])) for _, code, body in self.results if code == 200)


@pytest.fixture
def data_server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A server whose SQLite file lives in its own directory (the log stays in the home)."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'data' / 'tideflow.db'}"
    with ServerProcess(url, home=tmp_path / "home") as server:
        yield server


def test_deleting_the_data_directory_stops_every_acknowledgement(
    data_server: ServerProcess, tmp_path: Path
) -> None:
    poster = Poster(data_server.api_url)
    poster.start()
    try:
        deadline = time.monotonic() + 30
        while poster.acked() < 200 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert poster.acked() >= 200, poster.results[-1:]
        shutil.rmtree(tmp_path / "data")
        deleted = time.monotonic()
        while time.monotonic() < deleted + 1.0 and poster.is_alive():
            time.sleep(0.05)
    finally:
        poster.stop.set()
        poster.join(15)
    after = [(code, body) for started, code, body in poster.results if started > deleted]
    assert after, "no request was sent after the deletion"
    # Not one acknowledgement after the file is gone: every write answers 503, naming the file.
    assert {code for code, _ in after} == {503}, after[:3]
    assert all(f"{tmp_path / 'data' / 'tideflow.db'}" in body["detail"] for _, body in after)
    assert all("was deleted" in body["detail"] and GONE in body["detail"] for _, body in after)

    with httpx.Client(base_url=data_server.api_url, timeout=5) as http:
        health = http.get("/health")
        assert health.status_code == 503
        assert GONE in health.json()["detail"]
        # Any other change is refused the same way, not a 500.
        flow = http.post("/flows/", json={"name": "after-delete"})
        assert flow.status_code == 503, flow.text
    # The websocket ingest closes with the reason instead of acknowledging.
    with connect(ws_url(data_server.api_url, "/events/in")) as ws:
        ws.send(json.dumps(_events(3)))
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1011
    assert GONE in closed.value.rcvd.reason
    # One ERROR line saying so, not a traceback per request.
    log = data_server.log_path.read_text(errors="replace")
    errors = [line for line in log.splitlines() if "was deleted" in line]
    assert len(errors) == 1, log[-3000:]
    assert errors[0].startswith("ERROR:"), errors[0]
    assert "Traceback" not in log
    # The deleted directory was not recreated behind the user's back.
    assert not (tmp_path / "data").exists()


def test_restart_after_the_database_file_was_deleted_refuses_an_empty_database(
    tmp_path: Path,
) -> None:
    home = tmp_path / "home"
    db = home / "tideflow.db"
    url = f"sqlite+aiosqlite:///{db}"
    with ServerProcess(url, home=home) as server:
        with httpx.Client(base_url=server.api_url, timeout=10) as http:
            assert http.post("/events", json=_events(50)).status_code == 200
            db.unlink()
            refused = http.post("/events", json=_events(5))
            assert refused.status_code == 503
            assert "was deleted" in refused.json()["detail"]
    assert not db.exists()

    line = _one_error_line(_start_cli(home, url))
    assert str(db) in line and "missing" in line and "--create-database" in line
    assert not db.exists(), "the refused start created a database file"

    # A file that is there but empty (recreated by some tool) is refused the same way.
    db.touch()
    line = _one_error_line(_start_cli(home, url))
    assert str(db) in line and "empty" in line
    db.unlink()

    # Asked for explicitly, an empty database is created and served.
    port = free_port()
    proc = subprocess.Popen(
        [
            PY,
            "-m",
            "tideflow",
            "server",
            "start",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--database-url",
            url,
            "--create-database",
        ],
        env={**os.environ, "TIDEFLOW_HOME": str(home)},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        status = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                status = httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=1).status_code
            except httpx.HTTPError:
                status = None
            if status == 200:
                break
            time.sleep(0.1)
        assert status == 200
        assert db.exists()
    finally:
        proc.terminate()
        proc.communicate(timeout=20)


def test_a_fresh_home_still_creates_its_database_silently(tmp_path: Path) -> None:
    home = tmp_path / "fresh"
    with ServerProcess(home=home) as server:
        assert httpx.get(f"{server.api_url}/health", timeout=5).status_code == 200
    assert (home / "tideflow.db").exists()


@contextmanager
def read_only(path: Path) -> Iterator[None]:
    """Make ``path`` read-only for the server: a mode change, or as root a read-only bind mount
    (root writes through modes). Skips when neither makes it read-only here."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = False
    if os.geteuid() == 0:
        done = subprocess.run(
            ["mount", "--bind", "-o", "ro", str(path), str(path)], capture_output=True
        )
        mounted = done.returncode == 0
    else:
        path.chmod(0o555)
    try:
        probe = path / "probe"
        try:
            probe.touch()
        except OSError:
            pass
        else:
            probe.unlink()
            pytest.skip(f"cannot make {path} read-only here")
        yield
    finally:
        if mounted:
            subprocess.run(["umount", str(path)], check=True)
        else:
            path.chmod(0o755)


def test_a_read_only_home_is_one_line_at_start(tmp_path: Path) -> None:
    home = tmp_path / "ro-home"
    with read_only(home):
        result = _start_cli(home, f"sqlite+aiosqlite:///{home / 'tideflow.db'}")
    line = _one_error_line(result)
    assert str(home) in line and "not writable" in line, line


def test_a_read_only_database_directory_is_one_line_at_start(tmp_path: Path) -> None:
    home, data = tmp_path / "home", tmp_path / "data"
    url = f"sqlite+aiosqlite:///{data / 'tideflow.db'}"
    with ServerProcess(url, home=home):
        pass  # creates the database
    with read_only(data):
        result = _start_cli(home, url)
    line = _one_error_line(result)
    assert str(data) in line and "not writable" in line, line


def test_autostart_surfaces_the_servers_line_for_a_read_only_home(tmp_path: Path) -> None:
    home = tmp_path / "ro-home"
    env = {
        **os.environ,
        "TIDEFLOW_HOME": str(home),
        "TIDEFLOW_SERVER_AUTOSTART": "true",
        "TIDEFLOW_SERVER_PORT": str(free_port()),
        "TIDEFLOW_SERVER_START_TIMEOUT": "60",
    }
    with read_only(home):
        started = time.monotonic()
        result = subprocess.run(
            [PY, "-m", "tideflow", "server", "status"],
            env=env,
            capture_output=True,
            text=True,
            timeout=90,
            stdin=subprocess.DEVNULL,
        )
        flows = subprocess.run(
            [PY, "-m", "tideflow", "flow-run", "ls"],
            env=env,
            capture_output=True,
            text=True,
            timeout=90,
            stdin=subprocess.DEVNULL,
        )
        took = time.monotonic() - started
    assert result.returncode != 0  # status never auto-starts; it says nothing answers
    line = _one_error_line(flows)
    assert str(home) in line and "not writable" in line, line
    assert took < 45, "the client waited for a start timeout instead of reporting the cause"


def test_autostart_surfaces_the_servers_line_for_a_read_only_database(tmp_path: Path) -> None:
    home, data = tmp_path / "home", tmp_path / "data"
    url = f"sqlite+aiosqlite:///{data / 'tideflow.db'}"
    env = {
        **os.environ,
        "TIDEFLOW_HOME": str(home),
        "TIDEFLOW_SERVER_AUTOSTART": "true",
        "TIDEFLOW_DATABASE_URL": url,
        "TIDEFLOW_SERVER_PORT": str(free_port()),
        "TIDEFLOW_SERVER_START_TIMEOUT": "60",
    }
    with read_only(data):
        started = time.monotonic()
        flows = subprocess.run(
            [PY, "-m", "tideflow", "flow-run", "ls"],
            env=env,
            capture_output=True,
            text=True,
            timeout=90,
            stdin=subprocess.DEVNULL,
        )
        took = time.monotonic() - started
    line = _one_error_line(flows)
    assert str(data) in line and "not writable" in line, line
    assert took < 45, "the client waited for a start timeout instead of reporting the cause"
