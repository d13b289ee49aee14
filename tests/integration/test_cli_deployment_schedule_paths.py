"""Prefect's `deployment schedule create|ls|pause|resume|delete|clear` paths, as real subprocesses
against a real server: the same commands as `tideflow schedule`, on the same schedules."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from serve_helpers import run_cli

from tideflow.testing import ServerProcess


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with ServerProcess(home=tmp_path_factory.mktemp("paths"), startup_timeout=90) as proc:
        yield proc


def _schedules(server: ServerProcess) -> list[dict[str, object]]:
    shown = run_cli(server.api_url, "deployment", "schedule", "ls", "etl/paths", "--json")
    assert shown.returncode == 0, shown.stderr
    found: list[dict[str, object]] = json.loads(shown.stdout)
    return found


def test_deployment_schedule_paths(server: ServerProcess) -> None:
    with httpx.Client(base_url=server.api_url, timeout=30) as http:
        made = http.post("/deployments/", json={"name": "paths", "flow_name": "etl"})
        assert made.status_code == 201, made.text
    cli = run_cli(server.api_url, "deployment", "schedule", "create", "etl/paths",
                  "--cron", "0 3 * * *", "--timezone", "Europe/Paris")  # fmt: skip
    assert cli.returncode == 0, cli.stderr
    assert run_cli(server.api_url, "deployment", "schedule", "create", "etl/paths",
                   "--interval", "2 hours").returncode == 0  # fmt: skip
    both = _schedules(server)
    assert len(both) == 2 and all(s["active"] for s in both)
    # The same schedules through `tideflow schedule`.
    assert (
        len(json.loads(run_cli(server.api_url, "schedule", "ls", "etl/paths", "--json").stdout))
        == 2
    )
    assert run_cli(server.api_url, "deployment", "schedule", "pause", "etl/paths").returncode == 0
    assert not any(s["active"] for s in _schedules(server))
    assert run_cli(server.api_url, "deployment", "schedule", "resume", "etl/paths").returncode == 0
    first = str(both[0]["id"])
    deleted = run_cli(
        server.api_url, "deployment", "schedule", "delete", "etl/paths", first[:8], "-y"
    )
    assert deleted.returncode == 0, deleted.stderr
    assert [s["id"] for s in _schedules(server)] == [both[1]["id"]]
    cleared = run_cli(server.api_url, "deployment", "schedule", "clear", "etl/paths", "-y")
    assert cleared.returncode == 0 and "Deleted 1 schedule(s)" in cleared.stdout
    assert _schedules(server) == []
    bad = run_cli(server.api_url, "deployment", "schedule", "create", "etl/paths", "--cron", "nope")
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
