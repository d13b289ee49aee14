"""`tideflow asset ls|inspect|delete` as real subprocesses against a real server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tideflow.client import SyncClient
from tideflow.schemas.events import Event
from tideflow.testing import ServerProcess

RAW, CLEAN = "s3://lake/raw.csv", "s3://lake/clean.csv"


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    with ServerProcess() as proc:
        yield proc


def cli(server: ServerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200", "TIDEFLOW_API_URL": server.api_url}
    return subprocess.run(
        [sys.executable, "-m", "tideflow", "asset", *args],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip


def one_line_error(result: subprocess.CompletedProcess[str], fragment: str) -> None:
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0], result.stderr


def _event(key: str, status: str = "succeeded", **extra: object) -> Event:
    return Event.model_validate(
        {"event": f"tideflow.asset.materialization.{status}",
         "resource": {"tideflow.resource.id": key}, **extra}
    )  # fmt: skip


def test_cli_assets(server: ServerProcess) -> None:
    with SyncClient(server.api_url) as client:
        client.emit_events([
            _event(RAW, payload={"properties": {"name": "Raw"}, "metadata": {"rows": 5}}),
        ])  # fmt: skip
        client.emit_events([
            _event(CLEAN, "failed", payload={"error": "disk full"},
                   related=[{"tideflow.resource.id": RAW, "tideflow.resource.role": "asset"}]),
        ])  # fmt: skip

    listed = cli(server, "ls")
    assert listed.returncode == 0, listed.stderr
    assert RAW in listed.stdout and "Raw" in listed.stdout and "failed" in listed.stdout
    as_json = json.loads(cli(server, "ls", "--json", "--status", "failed").stdout)
    assert [a["key"] for a in as_json] == [CLEAN]

    shown = cli(server, "inspect", RAW)
    assert shown.returncode == 0, shown.stderr
    data = json.loads(shown.stdout)
    assert data["downstream"] == [CLEAN] and data["last_metadata"] == {"rows": 5}
    assert [h["event"] for h in data["history"]] == ["succeeded"]

    deleted = cli(server, "delete", CLEAN)
    assert deleted.returncode == 0 and "Deleted asset" in deleted.stdout
    assert json.loads(cli(server, "inspect", RAW).stdout)["downstream"] == []

    one_line_error(cli(server, "inspect", CLEAN), f"no asset with key {CLEAN!r}")
    one_line_error(cli(server, "delete", CLEAN), "no asset with key")
    one_line_error(cli(server, "inspect", "raw.csv"), "is not a URI")
    one_line_error(cli(server, "ls", "--status", "maybe"), "succeeded or failed")
