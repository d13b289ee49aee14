"""Local-server auto-start: the first client starts one detached server, concurrent and later clients
reuse it, it outlives them, and failures (dead TIDEFLOW_API_URL, a taken port) are one readable line.
Every server started here is stopped with `tideflow server stop` (or killed by pid as a fallback)."""

from __future__ import annotations

import http.server
import json
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from tideflow.client import AsyncClient, SyncClient
from tideflow.exceptions import ServerUnreachable, TideflowError

PY = sys.executable

# Waits for a "go" file so both clients reach SyncClient() at the same moment.
CLIENT = """
import pathlib, sys, time
go = pathlib.Path(sys.argv[1])
print("ready", flush=True)
while not go.exists():
    time.sleep(0.005)
from tideflow.client import SyncClient
with SyncClient() as client:
    print(client.api_url, client.health()["status"], flush=True)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def healthy(api_url: str) -> bool:
    try:
        return httpx.get(f"{api_url}/health", timeout=0.5).status_code == 200
    except httpx.HTTPError:
        return False


def server_processes(home: Path) -> list[psutil.Process]:
    """Live `tideflow server start` processes whose TIDEFLOW_HOME is ``home``."""
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        try:
            cmdline = proc.info["cmdline"] or []
            if (
                proc.info["status"] == psutil.STATUS_ZOMBIE
                or "server" not in cmdline
                or "start" not in cmdline
            ):
                continue
            if proc.environ().get("TIDEFLOW_HOME") == str(home):
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


@pytest.fixture
def home() -> Path:
    return Path(os.environ["TIDEFLOW_HOME"])


@pytest.fixture
def api_url() -> str:
    return f"http://127.0.0.1:{os.environ['TIDEFLOW_SERVER_PORT']}/api"


@pytest.fixture
def autostart(home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Auto-start on for this test; afterwards no server of this TIDEFLOW_HOME is left running."""
    monkeypatch.setenv("TIDEFLOW_SERVER_AUTOSTART", "true")
    yield
    subprocess.run(
        [PY, "-m", "tideflow", "server", "stop"],
        capture_output=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    for proc in server_processes(home):
        proc.kill()
        proc.wait(10)


def test_concurrent_clients_start_exactly_one_detached_server(
    home: Path, api_url: str, autostart: None
) -> None:
    go = home / "go"
    clients = [
        subprocess.Popen(
            [PY, "-c", CLIENT, str(go)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    try:
        for client in clients:
            assert client.stdout is not None and client.stdout.readline().strip() == "ready"
        go.touch()
        outputs = [client.communicate(timeout=90) for client in clients]
    finally:
        for client in clients:
            if client.poll() is None:
                client.kill()
                client.communicate()
    for client, (out, err) in zip(clients, outputs, strict=True):
        assert client.returncode == 0, err
        assert out.strip() == f"{api_url} ok"

    # Both parents have exited; the one server they share is still up, in its own session.
    assert healthy(api_url)
    running = server_processes(home)
    assert len(running) == 1, [p.cmdline() for p in running]
    server = running[0]
    assert "--background" in server.cmdline()
    assert os.getsid(server.pid) == server.pid  # detached: leads its own session
    info = json.loads((home / "server.pid").read_text())
    assert info["pid"] == server.pid and info["api_url"] == api_url
    log = (home / "server.log").read_text()
    assert log.count("tideflow server on ") == 1, log
    assert "Error" not in log

    # A later process reuses it.
    later = subprocess.run(
        [PY, "-c", "from tideflow.client import SyncClient\nwith SyncClient() as c: print(c.health()['status'])"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert later.returncode == 0 and later.stdout.strip() == "ok", later.stderr
    assert [p.pid for p in server_processes(home)] == [server.pid]
    assert (home / "server.log").read_text().count("tideflow server on ") == 1

    stop = subprocess.run(
        [PY, "-m", "tideflow", "server", "stop"], capture_output=True, text=True, timeout=60
    )
    assert stop.returncode == 0 and f"pid {server.pid}" in stop.stdout
    assert not healthy(api_url)
    assert not (home / "server.pid").exists()


def test_cli_commands_auto_start_too(home: Path, api_url: str, autostart: None) -> None:
    result = subprocess.run(
        [PY, "-m", "tideflow", "flow", "ls", "--json"], capture_output=True, text=True, timeout=90
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []
    assert healthy(api_url)
    assert len(server_processes(home)) == 1


def test_dead_api_url_names_the_url_and_starts_nothing(
    home: Path, autostart: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"http://127.0.0.1:{free_port()}/api"
    monkeypatch.setenv("TIDEFLOW_API_URL", url + "/")
    with SyncClient() as client, pytest.raises(ServerUnreachable) as info:
        client.health()
    message = str(info.value)
    assert url in message and "\n" not in message
    assert info.value.url == url
    assert not (home / "server.pid").exists() and not (home / "server.log").exists()


async def test_dead_api_url_async_client(autostart: None, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"http://127.0.0.1:{free_port()}/api"
    monkeypatch.setenv("TIDEFLOW_API_URL", url)
    async with AsyncClient() as client:
        with pytest.raises(ServerUnreachable, match=url.replace(".", r"\.")):
            await client.health()


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


pytestmark = pytest.mark.anyio


def test_autostart_off_leaves_the_local_url_unreachable(home: Path, api_url: str) -> None:
    with SyncClient() as client:
        assert client.api_url == api_url
        with pytest.raises(ServerUnreachable, match=api_url.replace(".", r"\.")):
            client.health()
    assert not (home / "server.log").exists()


def test_autostart_failure_is_one_line_with_the_log_tail(
    home: Path, api_url: str, autostart: None
) -> None:
    port = int(os.environ["TIDEFLOW_SERVER_PORT"])
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", port))
        blocker.listen()
        with pytest.raises(TideflowError) as info:
            SyncClient()
    message = str(info.value)
    assert "\n" not in message
    assert "the local tideflow server exited with code 1 while starting" in message
    assert str(home / "server.log") in message
    assert f"port {port} on 127.0.0.1 is already in use" in message
    assert not (home / "server.pid").exists()


def test_stop_after_autostart_by_a_process_that_is_still_alive(
    home: Path, api_url: str, autostart: None
) -> None:
    # The parent that started the server keeps running: stop must still see the server end
    # (it becomes the parent's unreaped child) and not wait the full SIGTERM grace.
    parent = subprocess.Popen(
        [PY, "-c", "import sys\nfrom tideflow.client import SyncClient\nSyncClient().close()\nprint('up', flush=True)\nsys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert parent.stdout is not None and parent.stdout.readline().strip() == "up"
        pid = json.loads((home / "server.pid").read_text())["pid"]
        stop = subprocess.run(
            [PY, "-m", "tideflow", "server", "stop"], capture_output=True, text=True, timeout=60
        )
        assert stop.returncode == 0 and stop.stdout.startswith(
            "stopped the local tideflow server"
        ), stop.stdout
        assert f"pid {pid}" in stop.stdout
        assert not healthy(api_url)
    finally:
        if parent.poll() is None:
            parent.send_signal(signal.SIGTERM)
        parent.communicate(timeout=30)


class _Health(http.server.BaseHTTPRequestHandler):
    """Stands in for a tideflow server that has finished starting: /api/health answers ok."""

    def do_GET(self) -> None:
        body = b'{"status": "ok"}'
        self.send_response(200 if self.path == "/api/health" else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def starting_server(
    home: Path, api_url: str
) -> Iterator[tuple[http.server.HTTPServer, threading.Event]]:
    """A listening socket on the port that answers nothing until ``serve`` is set, and a live
    tideflow-named process to stand for the server in the pid file."""
    port = int(os.environ["TIDEFLOW_SERVER_PORT"])
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), _Health)
    serve, give_up, serving = threading.Event(), threading.Event(), threading.Event()

    def run() -> None:
        while not give_up.is_set():
            if serve.wait(0.05):
                serving.set()
                httpd.serve_forever()
                return

    thread = threading.Thread(target=run)
    thread.start()
    try:
        yield httpd, serve
    finally:
        give_up.set()
        if serving.is_set():
            httpd.shutdown()
        thread.join()
        httpd.server_close()


@pytest.fixture
def owner() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen([PY, "-c", "import time; time.sleep(60)", "tideflow"])
    yield proc
    proc.kill()
    proc.wait()


def test_waits_for_a_starting_server_named_in_the_pid_file(
    home: Path, api_url: str, autostart: None, owner: subprocess.Popen[bytes]
) -> None:
    """A server started by hand is in the pid file but not listening yet: wait for it, start nothing."""
    port = int(os.environ["TIDEFLOW_SERVER_PORT"])
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), _Health, bind_and_activate=False)
    stop, serving = threading.Event(), threading.Event()

    def listen_later() -> None:
        if stop.wait(1.0):
            return
        try:  # fails only if something else (a wrongly spawned server) took the port meanwhile
            httpd.server_bind()
            httpd.server_activate()
        except OSError:
            return
        serving.set()
        httpd.serve_forever()

    (home / "server.pid").write_text(json.dumps({"pid": owner.pid, "api_url": api_url}))
    thread = threading.Thread(target=listen_later)
    thread.start()
    try:
        with SyncClient() as client:
            assert client.health() == {"status": "ok"}
        assert serving.is_set()
    finally:
        stop.set()
        if serving.is_set():
            httpd.shutdown()
        thread.join()
        httpd.server_close()
    assert not (home / "server.log").exists()


def test_waits_when_ours_loses_the_port_to_a_server_started_by_hand(
    home: Path, api_url: str, autostart: None, starting_server: tuple[object, threading.Event],
    owner: subprocess.Popen[bytes],
) -> None:  # fmt: skip
    """Ours is spawned, then a user's server claims the pid file and the port first: ours exits
    with "port in use" and the client waits for the user's server instead of failing."""
    _, serve = starting_server
    port = int(os.environ["TIDEFLOW_SERVER_PORT"])
    log_path = home / "server.log"
    done = threading.Event()
    # Children this process already had (servers of session fixtures when tests share a process,
    # e.g. a pytest-xdist worker) are not the one the client spawns here.
    earlier = {p.pid for p in psutil.Process().children()}

    def the_users_server() -> None:
        while not done.wait(0.01):
            if log_path.exists():  # ours was just spawned (it is still importing)
                break
        (home / "server.pid").write_text(json.dumps({"pid": owner.pid, "api_url": api_url}))
        while not done.wait(0.05):
            lost = "already in use" in log_path.read_text()
            # The client reaps ours when it notices the exit; only then does the user's answer.
            spawned = [p for p in psutil.Process().children() if p.pid not in earlier]
            if lost and not [p for p in spawned if p.pid != owner.pid]:
                serve.set()
                return

    thread = threading.Thread(target=the_users_server)
    thread.start()
    try:
        with SyncClient() as client:
            assert client.health() == {"status": "ok"}
    finally:
        done.set()
        thread.join()
    assert f"port {port} on 127.0.0.1 is already in use" in log_path.read_text()
