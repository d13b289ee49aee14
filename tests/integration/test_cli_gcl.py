"""`tideflow gcl create|ls|inspect|update|reset|delete` as real subprocesses against a real server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tideflow.client import SyncClient
from tideflow.schemas.global_concurrency import SlotRequest
from tideflow.testing import ServerProcess


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    with ServerProcess() as proc:
        yield proc


def cli(server: ServerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200", "TIDEFLOW_API_URL": server.api_url}
    return subprocess.run(
        [sys.executable, "-m", "tideflow", "gcl", *args],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip


def one_line_error(result: subprocess.CompletedProcess[str], fragment: str) -> None:
    assert result.returncode != 0, result
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0], result.stderr


def test_cli_gcl_lifecycle(server: ServerProcess) -> None:
    made = cli(server, "create", "db", "--limit", "3")
    assert made.returncode == 0, made.stderr
    assert "Created limit 'db': 3 slots" in made.stdout
    rate = cli(server, "create", "api", "--limit", "10", "--slot-decay-per-second", "2")
    assert "Created rate limit (2 slots/s) 'api': 10 slots" in rate.stdout
    one_line_error(cli(server, "create", "db", "--limit", "1"), "a limit named 'db' exists already")

    with SyncClient(server.api_url) as client:
        assert client.acquire_global_slots(SlotRequest(names=["db"], slots=2)).acquired
    listed = cli(server, "ls")
    assert listed.returncode == 0 and "db" in listed.stdout and "api" in listed.stdout
    assert {
        g["name"]: g["active_slots"] for g in json.loads(cli(server, "ls", "--json").stdout)
    } == {
        "api": 0.0,
        "db": 2.0,
    }
    inspected = json.loads(cli(server, "inspect", "db").stdout)
    assert (inspected["limit"], inspected["leases"]) == (3, 1)

    changed = cli(server, "update", "db", "--limit", "5", "--disable")
    assert changed.returncode == 0 and "Updated limit 'db': 5 slots, inactive" in changed.stdout
    one_line_error(cli(server, "update", "db"), "nothing to change")
    assert "Freed every slot of limit 'db'" in cli(server, "reset", "db").stdout
    assert json.loads(cli(server, "inspect", "db").stdout)["active_slots"] == 0
    assert cli(server, "delete", "db").returncode == 0
    one_line_error(cli(server, "inspect", "db"), "no global concurrency limit named 'db'")
    one_line_error(cli(server, "delete", "db"), "no global concurrency limit named 'db'")
    one_line_error(cli(server, "create", "bad name", "--limit", "1"), "use letters, digits")
