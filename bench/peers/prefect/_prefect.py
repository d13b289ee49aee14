"""Prefect-side plumbing for the adapters (runs in the peer virtualenv): settings, server, serve.

Prefect settings: analytics off (no network) and CLI colours off; everything else default. Each
server gets its own PREFECT_HOME (SQLite there, Prefect's default) and a free loopback port.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from bench._driver import Api
from bench._proc import free_port, http_json, stop_process, wait_http_200

__all__ = [
    "PrefectServer",
    "environment",
    "prefect_api",
    "prefect_bin",
    "running_server",
    "served",
    "start_server",
]


def prefect_bin() -> str:
    """The ``prefect`` console script of this virtualenv."""
    return str(Path(sys.executable).parent / "prefect")


def environment(home: Path, api_url: str | None = None, **extra: str) -> dict[str, str]:
    """Environment for a Prefect process: its own home, analytics off, the server's API URL."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "TIDEFLOW_"))}
    env.update(
        PREFECT_HOME=str(home),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_CLI_COLORS="false",
        **extra,
    )
    if api_url:
        env["PREFECT_API_URL"] = api_url
    return env


@dataclass
class PrefectServer:
    proc: subprocess.Popen[bytes]
    home: Path
    port: int
    startup_s: float

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def stop(self) -> None:
        stop_process(self.proc, timeout=30)


def start_server(home: Path, **env: str) -> PrefectServer:
    """``prefect server start`` on a free port; timed from spawn to /api/health 200.

    ``env`` adds settings, e.g. PREFECT_API_DATABASE_CONNECTION_URL for PostgreSQL."""
    home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = (home / f"server-{port}.log").open("ab")
    cmd = [prefect_bin(), "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    started = time.monotonic()
    proc = subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
        env=environment(home, f"http://127.0.0.1:{port}/api", **env),
    )  # fmt: skip
    log.close()
    try:
        healthy = wait_http_200(f"http://127.0.0.1:{port}/api/health", proc, timeout=180)
    except BaseException:
        stop_process(proc)
        raise
    return PrefectServer(proc, home, port, healthy - started)


@contextmanager
def running_server(home: Path, **env: str) -> Iterator[PrefectServer]:
    server = start_server(home, **env)
    try:
        yield server
    finally:
        server.stop()


def wait_ready(
    api_url: str, names: list[str], proc: subprocess.Popen[bytes], timeout: float = 120.0
) -> None:
    """Wait until every deployment ``flow/name`` exists with status READY."""
    deadline = time.monotonic() + timeout
    pending = list(names)
    while pending and time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the serving process exited with code {proc.returncode}")
        try:
            deployment = http_json("GET", f"{api_url}/deployments/name/{pending[0]}")
        except urllib.error.HTTPError:
            deployment = None
        if deployment is not None and deployment.get("status") == "READY":
            pending.pop(0)
            continue
        time.sleep(0.05)
    if pending:
        raise TimeoutError(f"deployments not READY within {timeout:.0f} s: {', '.join(pending)}")


@contextmanager
def served(
    server: PrefectServer, script: Path, deployments: list[str], **env: str
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``script`` (which calls prefect's serve()) until the block ends; yields it once READY."""
    log = (server.home / f"serve-{script.stem}.log").open("ab")
    proc = subprocess.Popen(
        [sys.executable, str(script)], stdin=subprocess.DEVNULL, stdout=log, stderr=log,
        env=environment(server.home, server.api_url, **env), cwd=str(server.home),
    )  # fmt: skip
    log.close()
    try:
        wait_ready(server.api_url, deployments, proc)
        yield proc
    finally:
        stop_process(proc, timeout=30)


def prefect_api(server: PrefectServer, **env: str) -> Api:
    """The driver's ``Api`` for a Prefect server, through the ``prefect`` CLI."""
    base = server.api_url

    def states(run_id: str) -> list[dict[str, Any]]:
        return list(http_json("GET", f"{base}/flow_run_states/?flow_run_id={run_id}"))

    def runs_of(deployment_id: str) -> list[dict[str, Any]]:
        body = {"deployments": {"id": {"any_": [deployment_id]}}, "limit": 200}
        return list(http_json("POST", f"{base}/flow_runs/filter", body))

    def deployment_id(name: str) -> str:
        return str(http_json("GET", f"{base}/deployments/name/{name}")["id"])

    return Api(
        [prefect_bin()], environment(server.home, base, **env), states, runs_of, deployment_id
    )
