"""`tideflow server start|status|stop` as real processes: banner, pid file, signals, port clashes,
bad databases, stale pid files and the SIGKILL fallback. Every server started here is stopped."""

from __future__ import annotations

import http.server
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

PY = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def tideflow(
    *args: str, timeout: float = 60, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the CLI in a fresh interpreter with this test's environment (TIDEFLOW_HOME, port)."""
    return subprocess.run(
        [PY, "-m", "tideflow", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
    )


def healthy(api_url: str) -> bool:
    try:
        return httpx.get(f"{api_url}/health", timeout=0.5).status_code == 200
    except httpx.HTTPError:
        return False


def wait_until(predicate, timeout: float = 30.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


class Started:
    """A `tideflow server start` child process with its output captured to files."""

    def __init__(self, home: Path, port: int, *extra: str) -> None:
        self.home, self.port = home, port
        self.api_url = f"http://127.0.0.1:{port}/api"
        self.out_path, self.err_path = home / f"out-{port}.txt", home / f"err-{port}.txt"
        with self.out_path.open("w") as out, self.err_path.open("w") as err:
            self.proc = subprocess.Popen(
                [PY, "-m", "tideflow", "server", "start", "--port", str(port), *extra],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
            )

    @property
    def stdout(self) -> str:
        return self.out_path.read_text()

    @property
    def stderr(self) -> str:
        return self.err_path.read_text()

    def wait_healthy(self) -> None:
        assert wait_until(lambda: healthy(self.api_url) or self.proc.poll() is not None), (
            self.stderr
        )
        assert self.proc.poll() is None, f"server exited {self.proc.returncode}: {self.stderr}"

    def terminate(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


@pytest.fixture
def home() -> Path:
    return Path(os.environ["TIDEFLOW_HOME"])


@pytest.fixture
def port() -> int:
    return int(os.environ["TIDEFLOW_SERVER_PORT"])


@pytest.fixture
def servers(home: Path) -> Iterator[list[Started]]:
    """Servers a test starts; all are terminated at the end, and so is any pid-file server left."""
    started: list[Started] = []
    yield started
    for server in started:
        server.terminate()
    try:
        pid = json.loads((home / "server.pid").read_text())["pid"]
    except (OSError, ValueError, KeyError):
        return
    if pid_alive(pid) and b"tideflow" in Path(f"/proc/{pid}/cmdline").read_bytes():
        os.kill(pid, signal.SIGKILL)


def read_pid_file(home: Path) -> dict[str, object]:
    return dict(json.loads((home / "server.pid").read_text()))


def test_foreground_start_status_and_sigterm(home: Path, port: int, servers: list[Started]) -> None:
    server = Started(home, port)
    servers.append(server)
    server.wait_healthy()

    banner = server.stdout.strip().splitlines()[0]
    db = f"sqlite+aiosqlite:///{home / 'tideflow.db'}"
    assert (
        banner
        == f"tideflow server on http://127.0.0.1:{port} · API /api · docs /docs · database {db}"
    )
    info = read_pid_file(home)
    assert info["pid"] == server.proc.pid
    assert info["api_url"] == server.api_url
    assert info["database"] == db
    assert str(info["started"]).startswith("20")

    status = tideflow("server", "status")
    assert status.returncode == 0, status.stderr
    assert f"at {server.api_url}" in status.stdout
    assert "0.1.0" in status.stdout and "sqlite" in status.stdout
    assert f"pid {server.proc.pid}" in status.stdout

    as_json = tideflow("server", "status", "--json")
    assert as_json.returncode == 0
    data = json.loads(as_json.stdout)
    assert data["up"] is True and data["pid"] == server.proc.pid and data["database"] == "sqlite"
    assert data["api_url"] == server.api_url and data["database_url"] == db

    assert server.terminate() == 0
    assert not (home / "server.pid").exists()
    assert "Traceback" not in server.stderr
    down = tideflow("server", "status")
    assert down.returncode == 1
    assert down.stdout.strip() == f"nothing answers at {server.api_url}"


def test_port_in_use_is_one_line_and_keeps_the_running_servers_pid_file(
    home: Path, port: int, servers: list[Started]
) -> None:
    first = Started(home, port)
    servers.append(first)
    first.wait_healthy()
    second = tideflow("server", "start", "--port", str(port))
    assert second.returncode == 1
    assert second.stderr.strip() == (
        f"Error: port {port} on 127.0.0.1 is already in use — is a tideflow server running? "
        "(tideflow server status)"
    )
    assert second.stdout == ""
    assert read_pid_file(home)["pid"] == first.proc.pid
    assert healthy(first.api_url)


def test_port_taken_by_another_program(port: int) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
        sock.listen()
        result = tideflow("server", "start")
    assert result.returncode == 1
    assert f"port {port} on 127.0.0.1 is already in use" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("mysql://root@localhost/db", "unsupported database URL"),
        ("not a url", "invalid database URL"),
        ("sqlite+aiosqlite://", "in-memory SQLite"),
    ],
)
def test_bad_database_url_is_one_line(home: Path, url: str, expected: str) -> None:
    result = tideflow("server", "start", "--database-url", url)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: ") and expected in lines[0], (
        result.stderr
    )
    assert not (home / "server.pid").exists()


def test_database_that_cannot_open_is_one_line_and_cleans_the_pid_file(
    home: Path, tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    url = f"sqlite+aiosqlite:///{blocker / 'sub' / 'tideflow.db'}"
    result = tideflow("server", "start", "--database-url", url, "--background")
    assert result.returncode == 1
    errors = [line for line in result.stderr.strip().splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.stderr
    assert "the database sqlite+aiosqlite:///" in errors[0] and "Not a directory" in errors[0]
    assert "Traceback" not in result.stderr
    assert not (home / "server.pid").exists()


def test_database_url_from_the_environment_and_log_level_option(
    home: Path, port: int, tmp_path: Path, servers: list[Started], monkeypatch: pytest.MonkeyPatch
) -> None:
    db_file = tmp_path / "elsewhere.db"
    monkeypatch.setenv("TIDEFLOW_DATABASE_URL", f"sqlite+aiosqlite:///{db_file}")
    server = Started(home, port, "--log-level", "warning", "--background")
    servers.append(server)
    server.wait_healthy()
    assert db_file.exists()
    assert httpx.get(f"{server.api_url}/version", timeout=5).json()["database"] == "sqlite"
    assert read_pid_file(home)["database"] == f"sqlite+aiosqlite:///{db_file}"
    assert "\x1b[" not in server.stdout  # --background prints no colour
    assert server.terminate() == 0
    assert "INFO" not in server.stderr  # warning level hides uvicorn's info lines


def test_invalid_log_level(port: int) -> None:
    result = tideflow("server", "start", "--log-level", "chatty")
    assert result.returncode == 1
    assert "invalid --log-level 'chatty'" in result.stderr


def test_stop_the_background_server(home: Path, port: int, servers: list[Started]) -> None:
    server = Started(home, port, "--background")
    servers.append(server)
    server.wait_healthy()
    result = tideflow("server", "stop")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        f"stopped the local tideflow server (pid {server.proc.pid}, {server.api_url})"
    )
    assert server.proc.wait(10) == 0
    assert not (home / "server.pid").exists()
    assert not healthy(server.api_url)
    again = tideflow("server", "stop")
    assert again.returncode == 0
    assert again.stdout.strip() == "no local tideflow server is running"


def test_stop_removes_a_stale_pid_file_and_never_signals_a_stranger(home: Path) -> None:
    dead = subprocess.Popen([PY, "-c", "pass"])
    dead.wait()
    (home / "server.pid").write_text(
        json.dumps({"pid": dead.pid, "api_url": "x", "database": "y", "started": "z"})
    )
    result = tideflow("server", "stop")
    assert result.returncode == 0
    assert f"removed a stale pid file (process {dead.pid} is gone)" in result.stdout
    assert "no local tideflow server is running" in result.stdout
    assert not (home / "server.pid").exists()

    # A live process that is not tideflow (a recycled pid) is left alone.
    stranger = subprocess.Popen(["sleep", "30"])
    try:
        (home / "server.pid").write_text(json.dumps({"pid": stranger.pid, "api_url": "x"}))
        result = tideflow("server", "stop")
        assert result.returncode == 0
        assert "stale pid file" in result.stdout
        assert stranger.poll() is None
    finally:
        stranger.kill()
        stranger.wait()

    (home / "server.pid").write_text("{torn")
    result = tideflow("server", "stop")
    assert result.returncode == 0 and "unreadable pid file" in result.stdout
    assert not (home / "server.pid").exists()


def test_stop_falls_back_to_sigkill(home: Path) -> None:
    # Stands in for a wedged server: a tideflow-named process that ignores SIGTERM.
    code = "import signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); time.sleep(60)"
    wedged = subprocess.Popen([PY, "-c", code, "tideflow"], stdout=subprocess.PIPE, text=True)
    try:
        assert wedged.stdout is not None and wedged.stdout.readline().strip() == "ready"
        (home / "server.pid").write_text(
            json.dumps(
                {
                    "pid": wedged.pid,
                    "api_url": "http://127.0.0.1:1/api",
                    "database": "d",
                    "started": "s",
                }
            )
        )
        result = tideflow("server", "stop", "--timeout", "0.5")
        assert result.returncode == 0, result.stderr
        assert (
            f"killed (it did not stop within 0.5 s of SIGTERM) the local tideflow server (pid {wedged.pid}"
            in (result.stdout)
        )
        assert wedged.wait(5) == -signal.SIGKILL
        assert not (home / "server.pid").exists()
    finally:
        if wedged.poll() is None:
            wedged.kill()
        wedged.wait()
        if wedged.stdout is not None:
            wedged.stdout.close()


def test_status_when_something_else_answers(port: int) -> None:
    class NotFound(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(404)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(b"nope")

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), NotFound)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        result = tideflow("server", "status", "--json")
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()
    assert result.returncode == 1
    data = json.loads(result.stdout)
    assert data["up"] is False
    assert data["error"].startswith(
        f"something answers at http://127.0.0.1:{port}/api but not as a tideflow API"
    )


def test_status_uses_the_configured_api_url(monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"http://127.0.0.1:{free_port()}/api"
    monkeypatch.setenv("TIDEFLOW_API_URL", url)
    result = tideflow("server", "status")
    assert result.returncode == 1
    assert result.stdout.strip() == f"nothing answers at {url}"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_while_starting_exits_0_and_removes_the_pid_file(
    home: Path, port: int, servers: list[Started], sig: signal.Signals
) -> None:
    server = Started(home, port)
    servers.append(server)
    assert wait_until(lambda: (home / "server.pid").exists() or server.proc.poll() is not None)
    server.proc.send_signal(sig)  # most likely during migrations, before uvicorn serves
    assert server.proc.wait(20) == 0, server.stderr
    assert not (home / "server.pid").exists()
    assert "Traceback" not in server.stderr


def test_ctrl_c_when_serving_exits_0(home: Path, port: int, servers: list[Started]) -> None:
    server = Started(home, port)
    servers.append(server)
    server.wait_healthy()
    server.proc.send_signal(signal.SIGINT)
    assert server.proc.wait(20) == 0, server.stderr
    assert not (home / "server.pid").exists()


def test_a_second_server_leaves_the_running_servers_pid_file_alone(
    home: Path, port: int, servers: list[Started]
) -> None:
    # Stands in for the local server already running from this TIDEFLOW_HOME on another port.
    owner = subprocess.Popen([PY, "-c", "import time; time.sleep(60)", "tideflow"])
    try:
        record = {
            "pid": owner.pid,
            "api_url": "http://127.0.0.1:4200/api",
            "database": "d",
            "started": "s",
        }
        (home / "server.pid").write_text(json.dumps(record))
        server = Started(home, port)
        servers.append(server)
        server.wait_healthy()
        assert read_pid_file(home) == record
        assert f"note: server.pid stays with the running server pid {owner.pid}" in server.stderr
        assert server.terminate() == 0
        assert read_pid_file(home) == record
    finally:
        owner.kill()
        owner.wait()
