"""Finding the API: the configured URL, or the local server, started in the background when absent.

With no ``TIDEFLOW_API_URL`` the SDK and CLI talk to ``http://{server_host}:{server_port}/api``.
When nothing answers there and auto-start is on, one process (serialised by a lock file in
``TIDEFLOW_HOME``) starts ``tideflow server start --background`` detached, with its log and pid file
in ``TIDEFLOW_HOME``, and waits for its health check; processes queued on the lock then find it
answering and reuse it. The pid file (``server.pid``, JSON) is written and removed by the server
itself; ``tideflow server status|stop`` read it through the helpers here.
"""

from __future__ import annotations

import fcntl
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tideflow._pidfile import local_api_url, process_alive, read_pid_file
from tideflow.exceptions import ServerUnreachable, TideflowError
from tideflow.settings import Settings

__all__ = [
    "resolve_api_url",
    "server_is_healthy",
    "start_local_server",
]

LOG_FILE = "server.log"
LOCK_FILE = "server.lock"


def server_is_healthy(api_url: str, timeout: float = 1.0) -> bool:
    """True when ``GET {api_url}/health`` answers 200."""
    return _health(api_url, timeout) == (True, None)


def _health(api_url: str, timeout: float) -> tuple[bool, str | None]:
    """(healthy, why not): the ``detail`` of a tideflow server that answers but cannot serve (a
    503 once its database file is gone), else None."""
    try:
        response = httpx.get(f"{api_url.rstrip('/')}/health", timeout=timeout)
    except httpx.HTTPError:
        return False, None
    if response.status_code == 200:
        return True, None
    try:
        detail = response.json().get("detail") if response.status_code == 503 else None
    except (ValueError, AttributeError):  # not JSON, or JSON but not an object
        detail = None
    return False, detail if isinstance(detail, str) else None


def _unhealthy(api_url: str, why: str) -> TideflowError:
    # It runs but cannot serve: starting another one would not help, waiting would not either.
    return TideflowError(f"the local tideflow server at {api_url} answers but is unhealthy: {why}")


def _home_not_writable(home: Path, exc: OSError) -> TideflowError:
    return TideflowError(
        f"cannot start the local tideflow server: TIDEFLOW_HOME {home} is not writable "
        f"({exc.strerror or exc}); point TIDEFLOW_HOME at a writable directory, or "
        "TIDEFLOW_API_URL at a running server"
    )


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fh = path.open("a")
    except OSError as exc:
        raise _home_not_writable(path.parent, exc) from None
    with fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _log_tail(path: Path, lines: int = 5) -> str:
    """The server's own one-line error when it wrote one (``Error: ...``), else its last lines."""
    try:
        tail = path.read_text(errors="replace").strip().splitlines()[-lines:]
    except OSError:
        return ""
    errors = [line for line in tail if line.startswith("Error: ")]
    return errors[-1].removeprefix("Error: ") if errors else " | ".join(tail)


def _spawn_detached(cmd: list[str], log_path: Path, env: dict[str, str]) -> int:
    """Start ``cmd`` in a new session (it outlives us and our terminal's Ctrl-C), output to ``log_path``.

    posix_spawn rather than Popen: the server is not ours to wait for, and a Popen object dropped
    while its child runs warns (and would be reaped behind our back).
    """
    return os.posix_spawn(
        cmd[0],
        cmd,
        env,
        file_actions=[
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_OPEN, 1, str(log_path), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644),
            (os.POSIX_SPAWN_DUP2, 1, 2),
        ],
        setsid=True,
    )


def _exit_code(pid: int) -> int | None:
    """The exit code of our child ``pid`` if it has ended (reaping it), else None."""
    try:
        done, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return -1
    return os.waitstatus_to_exitcode(status) if done else None


def _another_server_starting(settings: Settings, url: str) -> bool:
    """True when the pid file names a live server for ``url`` (one started by hand, still starting)."""
    other = read_pid_file(settings)
    return other is not None and other.api_url == url and process_alive(other.pid)


def start_local_server(settings: Settings) -> str:
    """Start ``tideflow server start --background`` detached (unless one answers or is starting);
    wait until healthy."""
    url = local_api_url(settings)
    home = settings.home
    log_path = home / LOG_FILE
    with _file_lock(home / LOCK_FILE):
        healthy, why = _health(url, timeout=2.0)
        if healthy:
            return url
        if why is not None:
            raise _unhealthy(url, why)
        pid: int | None = None
        # A live server in the pid file is one still starting (or too busy to answer): wait for it.
        if not _another_server_starting(settings, url):
            cmd = [
                sys.executable, "-m", "tideflow", "server", "start", "--background",
                "--host", settings.server_host, "--port", str(settings.server_port),
            ]  # fmt: skip
            try:
                pid = _spawn_detached(cmd, log_path, {**os.environ, "TIDEFLOW_HOME": str(home)})
            except OSError as exc:  # the log file cannot be created there
                raise _home_not_writable(home, exc) from None
        code: int | None = None
        deadline = time.monotonic() + settings.server_start_timeout
        while time.monotonic() < deadline:
            healthy, why = _health(url, timeout=1.0)
            if healthy:
                return url
            if why is not None:
                raise _unhealthy(url, why)
            if pid is not None and code is None:
                code = _exit_code(pid)
            # Ours may lose the port to a server started by hand a moment ago: wait for that one.
            if (pid is None or code is not None) and not _another_server_starting(settings, url):
                how = f"exited with code {code}" if code is not None else "stopped"
                raise TideflowError(
                    f"the local tideflow server {how} while starting: {_log_tail(log_path)} "
                    f"(log: {log_path})"
                )
            time.sleep(0.05)
        raise ServerUnreachable(
            url,
            f"the local server did not become healthy within {settings.server_start_timeout:.0f} s; "
            f"see {log_path}",
        )


def resolve_api_url(settings: Settings) -> str:
    """The API base URL to use, starting the local server when it is the target and is down."""
    if settings.api_url:
        return settings.api_url.rstrip("/")
    url = local_api_url(settings)
    if not settings.server_autostart or server_is_healthy(url):
        return url
    return start_local_server(settings)
