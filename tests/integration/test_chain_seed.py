"""The seed scenario end to end with real processes: a server, the DESIGN.md example served by
serve(), the CLI starting the upstream run; the Completed event's related resources; 100 upstream
runs give exactly 100 downstream runs, each linked to its own triggering event; hop latency."""

from __future__ import annotations

import getpass
import json
import os
import statistics
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from chain_helpers import EXAMPLES, env_for, ready, runs_of, serving, state_time, wait_for

from tideflow.client import SyncClient
from tideflow.schemas import Creator
from tideflow.schemas.deployments import DeploymentFlowRunCreate
from tideflow.testing import ServerProcess

UP = "upstream-flow/upstream_deployment"
DOWN = "downstream-flow/downstream_deployment"


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    with ServerProcess() as proc:
        yield proc


def _events(api_url: str, body: dict[str, object]) -> list[dict[str, object]]:
    answer = httpx.post(f"{api_url}/events/filter", json=body, timeout=10)
    answer.raise_for_status()
    return list(answer.json()["events"])


def test_seed_chain_with_the_cli_and_the_event_feed(server: ServerProcess, tmp_path: Path) -> None:
    with serving("event_driven_deployments.py", server.api_url, log=tmp_path / "serve.log"):
        client = SyncClient(server.api_url)
        with client:
            ready(client, UP)
            down = ready(client, DOWN)
            cli = subprocess.run(
                [sys.executable, "-m", "tideflow", "deployment", "run", UP],
                capture_output=True, text=True, env=env_for(server.api_url), timeout=60,
            )  # fmt: skip
            assert cli.returncode == 0, cli.stderr
            [downstream] = wait_for(
                "the downstream run", lambda: runs_of(client, down.id, "COMPLETED")
            )
            [upstream] = runs_of(client, client.read_deployment_by_name(UP).id)
    assert "downstream flow" in (tmp_path / "serve.log").read_text()

    [completed] = _events(server.api_url, {"event_names": ["tideflow.flow-run.Completed"],
                                           "resource_ids": [f"tideflow.flow-run.{upstream.id}"]})  # fmt: skip
    related = {r["tideflow.resource.role"]: r for r in completed["related"]}  # type: ignore[union-attr, index]
    login = getpass.getuser()
    assert related["flow"]["tideflow.resource.name"] == "upstream-flow"
    assert related["flow"]["tideflow.resource.id"] == f"tideflow.flow.{upstream.flow_id}"
    assert related["deployment"]["tideflow.resource.name"] == "upstream_deployment"
    assert (
        related["deployment"]["tideflow.resource.id"]
        == f"tideflow.deployment.{upstream.deployment_id}"
    )
    assert related["creator"]["tideflow.resource.id"] == f"tideflow.user.{login}"
    assert related["creator"]["tideflow.resource.name"] == login

    # The downstream run was created by the owned automation, linked to that Completed event.
    assert downstream.created_by is not None and downstream.created_by.type == "automation"
    [running] = _events(server.api_url, {"event_names": ["tideflow.flow-run.Running"],
                                         "resource_ids": [f"tideflow.flow-run.{downstream.id}"]})  # fmt: skip
    roles = {r["tideflow.resource.role"]: r["tideflow.resource.id"] for r in running["related"]}  # type: ignore[union-attr, index]
    assert roles["triggering-event"] == f"tideflow.event.{completed['id']}"
    assert roles["creator"] == downstream.created_by.id


def test_a_hundred_chains_make_exactly_a_hundred_linked_runs(server: ServerProcess) -> None:
    with (
        serving("event_driven_deployments.py", server.api_url),
        SyncClient(server.api_url) as client,
    ):
        up, down = ready(client, UP), ready(client, DOWN)
        before_up = {r.id for r in runs_of(client, up.id)}
        before_down = {r.id for r in runs_of(client, down.id)}
        login = getpass.getuser()
        creator = Creator(type="user", id=f"tideflow.user.{login}", name=login)
        for _ in range(100):  # in a row: each upstream run after the previous one finished
            started = client.create_flow_run_from_deployment(
                up.id, DeploymentFlowRunCreate(created_by=creator)
            )
            wait_for("the upstream run", lambda s=started: (r := client.read_flow_run(s.id)).state_type
                     and r.state_type.value == "COMPLETED")  # type: ignore[union-attr]  # fmt: skip

        def new_down() -> list[Any]:
            return [r for r in runs_of(client, down.id, "COMPLETED") if r.id not in before_down]

        wait_for("100 downstream runs", lambda: len(new_down()) >= 100 or None, timeout=120)
        ups = [r for r in runs_of(client, up.id) if r.id not in before_up]
        downs = [r for r in runs_of(client, down.id) if r.id not in before_down]
        assert len(ups) == 100 and len(downs) == 100
        # Each downstream run names, as its triggering event, the Completed event of one upstream run.
        links = {}
        for run in downs:
            [ev] = _events(server.api_url, {"event_names": ["tideflow.flow-run.Scheduled"],
                                            "resource_ids": [f"tideflow.flow-run.{run.id}"]})  # fmt: skip
            [trig] = [r["tideflow.resource.id"] for r in ev["related"]  # type: ignore[union-attr]
                      if r["tideflow.resource.role"] == "triggering-event"]  # type: ignore[index]  # fmt: skip
            links[run.id] = trig
        assert len(set(links.values())) == 100
        completed_ids = set()
        for run in ups:
            [ev] = _events(server.api_url, {"event_names": ["tideflow.flow-run.Completed"],
                                            "resource_ids": [f"tideflow.flow-run.{run.id}"]})  # fmt: skip
            completed_ids.add(f"tideflow.event.{ev['id']}")
        assert set(links.values()) == completed_ids
        # Hop latency over the last 50 chains: upstream Completed -> downstream Running.
        by_trigger = {v: k for k, v in links.items()}
        hops = []
        for run in ups[-50:]:
            [ev] = _events(server.api_url, {"event_names": ["tideflow.flow-run.Completed"],
                                            "resource_ids": [f"tideflow.flow-run.{run.id}"]})  # fmt: skip
            down_id = by_trigger[f"tideflow.event.{ev['id']}"]
            hop = state_time(client, down_id, "RUNNING") - state_time(client, run.id, "COMPLETED")
            hops.append(hop.total_seconds() * 1000)
    hops.sort()
    figures = {"median_ms": statistics.median(hops), "p95_ms": hops[int(len(hops) * 0.95) - 1],
               "max_ms": hops[-1], "chains": len(hops)}  # fmt: skip
    print("\nhop latency upstream Completed -> downstream Running:", json.dumps(figures))
    out = os.environ.get("TIDEFLOW_CHAIN_FIGURES")
    if out:
        Path(out).write_text(json.dumps(figures))
    assert figures["median_ms"] < 5000  # sanity only: the machine is shared, figures are reported


def test_chain_quickstart_runs_end_to_end(server: ServerProcess) -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "chain_quickstart.py")],
        capture_output=True, text=True, env=env_for(server.api_url), timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "upstream   upstream-flow/upstream_deployment" in out and "Completed" in out
    assert "downstream downstream-flow/downstream_deployment" in out
    assert "hop latency (upstream Completed -> downstream Running):" in out
    assert '"tideflow.resource.role": "creator"' in out and '"upstream_deployment"' in out
