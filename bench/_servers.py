"""Start and stop real tideflow servers for benchmarks: ``tideflow server start`` subprocesses.

Each server gets a free loopback port and its own TIDEFLOW_HOME; ``environment()`` gives the
variables a client process needs to talk to it (and never auto-start another server).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench._proc import free_port, stop_process, wait_http_200

__all__ = ["Server", "client_environment", "running_server", "start_server"]


@dataclass
class Server:
    """A started server process: where it answers and how long it took to become healthy."""

    proc: subprocess.Popen[bytes]
    home: Path
    port: int
    database_url: str
    startup_s: float

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def stop(self) -> None:
        stop_process(self.proc)


def client_environment(home: Path, api_url: str, **extra: str) -> dict[str, str]:
    """Environment for a client process of the server at ``api_url``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIDEFLOW_")}
    env.update(
        TIDEFLOW_HOME=str(home),
        TIDEFLOW_API_URL=api_url,
        TIDEFLOW_SERVER_AUTOSTART="false",
        **extra,
    )
    return env


def start_server(home: Path, database_url: str | None = None, port: int | None = None) -> Server:
    """Run ``python -m tideflow server start`` and wait for /api/health 200 (timed from spawn)."""
    home.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    database_url = database_url or f"sqlite+aiosqlite:///{home / 'tideflow.db'}"
    env = client_environment(home, f"http://127.0.0.1:{port}/api")
    env.pop("TIDEFLOW_API_URL")
    log = (home / f"server-{port}.log").open("ab")
    cmd = [
        sys.executable, "-m", "tideflow", "server", "start",
        "--host", "127.0.0.1", "--port", str(port), "--database-url", database_url,
    ]  # fmt: skip
    started = time.monotonic()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=env)
    log.close()
    try:
        healthy = wait_http_200(f"http://127.0.0.1:{port}/api/health", proc, timeout=60)
    except BaseException:
        stop_process(proc)
        raise
    return Server(proc, home, port, database_url, healthy - started)


@contextmanager
def running_server(home: Path, database_url: str | None = None) -> Iterator[Server]:
    """A server for the duration of the block."""
    server = start_server(home, database_url)
    try:
        yield server
    finally:
        server.stop()
