"""Helpers for end-to-end chain tests: serve an example script against a server, wait for runs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from tideflow.client import SyncClient
from tideflow.exceptions import ObjectNotFound
from tideflow.schemas import FlowRun, FlowRunFilter
from tideflow.schemas.deployments import Deployment, DeploymentStatus

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
T = TypeVar("T")


def env_for(api_url: str, **extra: str) -> dict[str, str]:
    return {**os.environ, "TIDEFLOW_API_URL": api_url, **extra}


@contextmanager
def serving(
    example: str, api_url: str, *args: str, log: Path | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """Run ``examples/<example>`` (which calls serve()) until the block ends, then SIGTERM it."""
    out = log.open("wb") if log else subprocess.DEVNULL
    proc = subprocess.Popen([sys.executable, str(EXAMPLES / example), *args], env=env_for(api_url),
                            stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if log:
            out.close()  # type: ignore[union-attr]


def wait_for(what: str, check: Callable[[], T | None], timeout: float = 60.0) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def ready(client: SyncClient, name: str) -> Deployment:
    def check() -> Deployment | None:
        try:
            found = client.read_deployment_by_name(name)
        except ObjectNotFound:
            return None
        return found if found.status == DeploymentStatus.READY else None

    return wait_for(f"deployment {name} to be served", check)


def runs_of(client: SyncClient, deployment_id: Any, state: str | None = None) -> list[FlowRun]:
    runs = client.read_flow_runs(FlowRunFilter(deployment_id=[deployment_id], limit=1000))
    return [r for r in runs if state is None or (r.state_type and r.state_type.value == state)]


def state_time(client: SyncClient, run_id: Any, type_: str) -> Any:
    return next(s.timestamp for s in client.read_flow_run_states(run_id) if s.type.value == type_)
