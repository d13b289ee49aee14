"""Helpers shared by the UI tests (a unique module name: every test folder has its own conftest)."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Page

from tideflow.testing import ServerProcess

Snap = Callable[[Page, str], list[Path]]


def unique(prefix: str) -> str:
    """``prefix`` plus a short random suffix: tests share one server, so names must not collide."""
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


# The user's script the UI tests serve: a typed flow for the Run form, and an upstream/downstream
# pair chained by a deployment trigger. Names carry a per-session suffix so nothing else matches.
SERVE_SCRIPT = """
from typing import Literal

from tideflow import flow, serve
from tideflow.events import DeploymentEventTrigger

SUFFIX = {suffix!r}


@flow(name="ui-report-" + SUFFIX, log_prints=True)
def report(rows: int, source: str = "s3://bucket/raw", ratio: float = 0.5, dry_run: bool = False,
           mode: Literal["fast", "full"] = "fast", columns: list[str] | None = None) -> int:
    print(f"report on {{rows}} rows from {{source}} in {{mode}} mode")
    return rows


@flow(name="ui-extract-" + SUFFIX, log_prints=True)
def extract() -> None:
    print("extracted")


@flow(name="ui-load-" + SUFFIX, log_prints=True)
def load() -> None:
    print("loaded")


@flow(name="ui-notify-" + SUFFIX, log_prints=True)
def notify() -> None:
    print("notified")


if __name__ == "__main__":
    serve(
        report.to_deployment(name="daily", tags=["ui"], cron="0 3 * * *",
                             description="The daily report"),
        extract.to_deployment(name="extract-" + SUFFIX),
        load.to_deployment(
            name="load-" + SUFFIX,
            triggers=[DeploymentEventTrigger(
                expect={{"tideflow.flow-run.Completed"}},
                match_related={{"tideflow.resource.name": "extract-" + SUFFIX}},
            )],
        ),
        notify.to_deployment(name="notify-" + SUFFIX),
    )
"""


class Served:
    """The running serve() script: its deployments' flow-name suffix and process."""

    def __init__(self, suffix: str, proc: subprocess.Popen[bytes], out: Path) -> None:
        self.suffix = suffix
        self.proc = proc
        self.out = out
        self.report = f"ui-report-{suffix}/daily"
        self.extract = f"ui-extract-{suffix}/extract-{suffix}"
        self.load = f"ui-load-{suffix}/load-{suffix}"
        self.notify = f"ui-notify-{suffix}/notify-{suffix}"


def wait_final(client: Any, run_id: Any, timeout: float = 30.0) -> Any:
    """The run once it reached a final state (AssertionError after ``timeout`` seconds)."""
    deadline = time.monotonic() + timeout
    while True:
        run = client.read_flow_run(run_id)
        if run.state is not None and run.state.is_final:
            return run
        if time.monotonic() > deadline:
            raise AssertionError(f"run {run_id} did not finish within {timeout} s")
        time.sleep(0.1)


ADMIN = "admin-" + uuid.uuid4().hex
PASSWORD = "a long enough password"


class Secured:
    """A server with auth on (admin key ``ADMIN``), a write key and a user (password ``PASSWORD``)."""

    def __init__(self, server: ServerProcess, key: str, user: str) -> None:
        self.server = server
        self.key = key
        self.user = user
        self.base_url = f"http://127.0.0.1:{server.port}"

    def api(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.base_url, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=30
        )
