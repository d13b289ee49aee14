"""Helpers shared by the SDK tests (a unique module name: every test folder has its own conftest)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from uuid import UUID

from tideflow.client import SyncClient
from tideflow.schemas import FlowRunFilter, LogFilter

REPO = Path(__file__).resolve().parents[2]


def state_names(client: SyncClient, run_id: UUID) -> list[str]:
    return [s.name for s in client.read_flow_run_states(run_id)]


def runs_of(client: SyncClient, flow_name: str) -> list:  # type: ignore[type-arg]
    return client.read_flow_runs(FlowRunFilter(flow_name=[flow_name], sort="CREATED_ASC"))


def log_messages(client: SyncClient, run_id: UUID, level_ge: int | None = None) -> list[str]:
    return [
        log.message for log in client.read_logs(LogFilter(flow_run_id=[run_id], level_ge=level_ge))
    ]


def run_script(
    code: str, env: dict[str, str], timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run ``code`` as a user's script would run: ``python script.py`` in a fresh interpreter."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    full_env.update(env)
    return subprocess.run(
        [sys.executable, "-c", code],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
    )
