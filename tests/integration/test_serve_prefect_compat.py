"""Served flows as a Prefect user writes them (issue 16), against a real server and serve process:
flows on methods, flow_run_name on deployment runs, on_cancellation for a cancelled served run,
flow.serve() without a name, and pause_on_shutdown."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from serve_helpers import ServeScript, run_cli, state_of, wait_final, wait_for

from tideflow.client import SyncClient
from tideflow.schemas import FlowRun, StateType
from tideflow.schemas.deployments import DeploymentFlowRunCreate
from tideflow.testing import ServerProcess

FAST = {"TIDEFLOW_RUNNER_POLL_INTERVAL": "1", "TIDEFLOW_RUNNER_CANCEL_GRACE": "5"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with ServerProcess(home=tmp_path_factory.mktemp("server")) as proc:
        yield proc


@pytest.fixture
def client(server: ServerProcess) -> Iterator[SyncClient]:
    with SyncClient(server.api_url) as c:
        yield c


def _run(client: SyncClient, full_name: str, **params: object) -> FlowRun:
    deployment = client.read_deployment_by_name(full_name)
    return client.create_flow_run_from_deployment(
        deployment.id, DeploymentFlowRunCreate(parameters=params)
    )


SERVE = """
class Pipeline:
    def __init__(self, offset):
        self.offset = offset

    @flow(flow_run_name="pipe-{x}")
    def run_pipeline(self, x: int = 1):
        note(f"result={self.offset + x}")
        return self.offset + x

@sleeper.on_cancellation
def cancelled(flow_obj, run, state):
    note(f"hook-{state.name}")

pipe = Pipeline(5)
named = etl.with_options(flow_run_name=lambda: "etl-from-callable")
serve(
    sleeper.to_deployment(name="hooked"),
    pipe.run_pipeline.to_deployment(name="method"),
    named.to_deployment(name="named"),
)
"""


def test_methods_run_names_and_cancellation_hooks_of_served_runs(
    server: ServerProcess, client: SyncClient, tmp_path: Path
) -> None:
    with ServeScript(tmp_path, server.api_url, SERVE, env=FAST, expect=3) as s:
        # A flow defined on an instance method runs with its instance, named by its template.
        run = _run(client, "run-pipeline/method", x=4)
        final = wait_final(client, run.id)
        assert final.state is not None and final.state.type is StateType.COMPLETED
        assert final.name == "pipe-4"
        assert ("result=9", str(run.id)) in {(e, r) for e, r, _ in s.run_log.entries()}
        named = wait_final(client, _run(client, "etl/named").id)
        assert named.name == "etl-from-callable"
        assert named.state is not None and named.state.type is StateType.COMPLETED

        # Cancelling a served run calls its on_cancellation hooks, then it ends Cancelled.
        slow = _run(client, "sleeper/hooked", seconds=60)
        wait_for(lambda: state_of(client, slow.id).type is StateType.RUNNING)
        result = run_cli(server.api_url, "flow-run", "cancel", str(slow.id))
        assert result.returncode == 0, result.stderr
        final = wait_final(client, slow.id, timeout=15)
        assert final.state is not None and final.state.type is StateType.CANCELLED
        hooks = [e for e, r, _ in s.run_log.entries() if r == str(slow.id) and e.startswith("hook")]
        assert hooks == ["hook-Cancelling"], s.output()
        assert "end" not in {e for e, r, _ in s.run_log.entries() if r == str(slow.id)}


def _active_schedules(client: SyncClient, full_name: str) -> list[bool]:
    deployment = client.read_deployment_by_name(full_name)
    return [s.active for s in client.read_deployment_schedules(deployment.id)]


def test_serve_without_a_name_and_pause_on_shutdown(
    server: ServerProcess, client: SyncClient, tmp_path: Path
) -> None:
    # flow.serve() names the deployment after the flow; stopping pauses its schedules (default).
    script = ServeScript(tmp_path, server.api_url, "etl.serve(interval=3600)", env=FAST)
    with script:
        assert _active_schedules(client, "etl/etl") == [True]
    assert script.proc is not None and script.proc.returncode == 0, script.output()
    assert _active_schedules(client, "etl/etl") == [False]
    assert "Paused the schedules of 'etl/etl'" in script.output()
    # Serving again re-registers the deployment with its schedules active.
    again = ServeScript(
        tmp_path, server.api_url, "record.serve(interval=3600, pause_on_shutdown=False)", env=FAST
    )
    with again:
        with ServeScript(tmp_path, server.api_url, "etl.serve(interval=3600)", env=FAST):
            assert _active_schedules(client, "etl/etl") == [True]
    # pause_on_shutdown=False leaves them active.
    time.sleep(0.2)
    assert _active_schedules(client, "record/record") == [True]
