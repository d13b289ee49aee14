"""`tideflow artifact ls|inspect|delete` as real subprocesses against a real server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest

from tideflow.client import SyncClient
from tideflow.schemas import FlowRunCreate
from tideflow.schemas.artifacts import ArtifactCreate
from tideflow.testing import ServerProcess


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    with ServerProcess() as proc:
        yield proc


def cli(server: ServerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200", "TIDEFLOW_API_URL": server.api_url}
    return subprocess.run(
        [sys.executable, "-m", "tideflow", "artifact", *args],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip


def one_line_error(result: subprocess.CompletedProcess[str], fragment: str) -> None:
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0], result.stderr


def test_cli_artifacts(server: ServerProcess) -> None:
    with SyncClient(server.api_url) as client:
        run = client.create_flow_run(FlowRunCreate(flow_name="cli-art"))
        v1 = client.create_artifact(
            ArtifactCreate(key="sales", type="table", data=[{"n": 1}], flow_run_id=run.id)
        )
        v2 = client.create_artifact(
            ArtifactCreate(key="sales", type="table", data=[{"n": 1}, {"n": 2}], flow_run_id=run.id)
        )
        other = client.create_artifact(ArtifactCreate(type="progress", data=40))

    table = cli(server, "ls")
    assert table.returncode == 0, table.stderr
    assert "sales" in table.stdout and "2 rows" in table.stdout and "40%" in table.stdout
    latest = json.loads(cli(server, "ls", "--json").stdout)
    assert [a["id"] for a in latest] == [str(other.id), str(v2.id)]
    every = json.loads(cli(server, "ls", "--json", "--all-versions").stdout)
    assert [a["id"] for a in every] == [str(other.id), str(v2.id), str(v1.id)]
    of_run = json.loads(cli(server, "ls", "--json", "--flow-run", str(run.id)[:8]).stdout)
    assert {a["id"] for a in of_run} == {str(v2.id)}

    versions = json.loads(cli(server, "inspect", "sales").stdout)
    assert [v["id"] for v in versions] == [str(v2.id), str(v1.id)]
    one = json.loads(cli(server, "inspect", str(other.id)).stdout)
    assert one["data"] == 40 and one["type"] == "progress"

    assert cli(server, "delete", str(v2.id)).returncode == 0
    assert json.loads(cli(server, "inspect", "sales").stdout)[0]["is_latest"] is True
    deleted = cli(server, "delete", "sales")
    assert deleted.returncode == 0 and "Deleted 1 version(s) of artifact 'sales'" in deleted.stdout
    one_line_error(cli(server, "inspect", "sales"), "no artifact with key 'sales'")
    one_line_error(cli(server, "delete", "sales"), "no artifact with key 'sales'")
    missing = str(uuid.uuid4())
    one_line_error(cli(server, "inspect", missing), f"no artifact with id {missing}")
    one_line_error(cli(server, "inspect", "Bad Key"), "lowercase letters, digits and '-'")
