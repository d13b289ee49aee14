"""Finding the API: the configured URL, or the local server, started in the background when absent.

With no ``TIDEFLOW_API_URL`` the SDK and CLI talk to ``http://{server_host}:{server_port}/api``.
When nothing answers there, one process (serialised by a lock file in ``TIDEFLOW_HOME``) starts
``tideflow server start`` detached, with its log and pid file in ``TIDEFLOW_HOME``, and every
process waits for its health check. Later processes find it answering and reuse it.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import time
from contextlib import contextmanager
from collections.abc import Iterator
from pathlib import Path

import httpx

from tideflow.exceptions import ServerUnreachable, TideflowError
from tideflow.settings import Settings

__all__ = ["local_api_url", "resolve_api_url", "server_is_healthy", "start_local_server"]


def local_api_url(settings: Settings) -> str:
    return settings.local_api_url


def server_is_healthy(api_url: str, timeout: float = 1.0) -> bool:
    try:
        response = httpx.get(f"{api_url.rstrip('/')}/health", timeout=timeout)
    except httpx.HTTPError:
        return False
    return response.status_code == 200


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _log_tail(path: Path, lines: int = 5) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").strip().splitlines()[-lines:])
    except OSError:
        return ""


def start_local_server(settings: Settings) -> str:
    """Start ``tideflow server start`` detached (unless one answers) and wait until it is healthy."""
    url = local_api_url(settings)
    home = settings.home
    with _file_lock(home / "server.lock"):
        if server_is_healthy(url):
            return url
        log_path = home / "server.log"
        with log_path.open("ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "tideflow", "server", "start", "--background",
                 "--host", settings.server_host, "--port", str(settings.server_port)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
                env={**os.environ, "TIDEFLOW_HOME": str(home)}, close_fds=True,
            )
        deadline = time.monotonic() + settings.server_start_timeout
        while time.monotonic() < deadline:
            if server_is_healthy(url, timeout=0.5):
                return url
            if proc.poll() is not None:
                raise TideflowError(
                    f"the local tideflow server exited with code {proc.returncode} while starting; "
                    f"see {log_path}: {_log_tail(log_path)}"
                )
            time.sleep(0.05)
        raise ServerUnreachable(url, f"the local server did not become healthy within "
                                     f"{settings.server_start_timeout:.0f} s; see {log_path}")


def resolve_api_url(settings: Settings) -> str:
    """The API base URL to use, starting the local server when it is the target and is down."""
    if settings.api_url:
        return settings.api_url.rstrip("/")
    url = local_api_url(settings)
    if server_is_healthy(url) or not settings.server_autostart:
        return url
    return start_local_server(settings)
