"""A serve() process killed with SIGKILL: its websocket closes without a goodbye, and its running
run is Crashed within seconds (the runner disconnect grace, 10 s by default) instead of after the
60 s heartbeat timeout (65 s before this fix). A runner that drops its connection and reconnects
within the grace, or that says goodbye, keeps its run Running."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar
from uuid import UUID

import httpx
import pytest
from websockets.sync.client import ClientConnection, connect

from tideflow.client import SyncClient
from tideflow.client._events import ws_url
from tideflow.schemas import FlowRun, StateType
from tideflow.schemas.deployments import DeploymentCreate, DeploymentFlowRunCreate
from tideflow.schemas.states import Pending, Running
from tideflow.testing import ServerProcess

T = TypeVar("T")

SERVE = textwrap.dedent(
    """
    import time
    from tideflow import flow, serve

    @flow
    def sleeper(seconds: float = 300.0):
        time.sleep(seconds)

    if __name__ == "__main__":
        serve(sleeper.to_deployment(name="long"))
    """
)


def _wait_for(predicate: Callable[[], T | None], timeout: float, what: str) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(0.1)


def _state(client: SyncClient, run_id: UUID) -> tuple[StateType, str]:
    run = client.read_flow_run(run_id)
    assert run.state is not None
    return run.state.type, run.state.message or ""


@pytest.fixture
def serve_script(tmp_path: Path) -> Iterator[Callable[[str], tuple[subprocess.Popen[bytes], Path]]]:
    started: list[subprocess.Popen[bytes]] = []

    def start(api_url: str) -> tuple[subprocess.Popen[bytes], Path]:
        script = tmp_path / "serve_long.py"
        script.write_text(SERVE)
        out = tmp_path / "serve.out"
        env = {**os.environ, "TIDEFLOW_API_URL": api_url}
        with out.open("wb") as fh:
            proc = subprocess.Popen([sys.executable, str(script)], stdout=fh, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, env=env, cwd=tmp_path,
                                    start_new_session=True)  # fmt: skip
        started.append(proc)
        _wait_for(lambda: "Serving deployment" in out.read_text(errors="replace") or
                  proc.poll() is not None, 30, "serve() started")  # fmt: skip
        assert proc.poll() is None, out.read_text()
        return proc, out

    yield start
    for proc in started:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.mark.timeout(120)
def test_a_sigkilled_serve_has_its_running_run_crashed_within_seconds(
    server: ServerProcess, serve_script: Callable[[str], tuple[subprocess.Popen[bytes], Path]]
) -> None:
    proc, _ = serve_script(server.api_url)
    with SyncClient(server.api_url) as client:
        deployment = client.read_deployment_by_name("sleeper/long")
        run = client.create_flow_run_from_deployment(deployment.id, DeploymentFlowRunCreate())
        _wait_for(lambda: _state(client, run.id)[0] is StateType.RUNNING, 30, "run Running")
        os.killpg(proc.pid, signal.SIGKILL)  # the runner and nothing else: no goodbye
        proc.wait()
        killed = time.monotonic()
        final = _wait_for(
            lambda: _state(client, run.id)[0] is StateType.CRASHED and _state(client, run.id),
            40,  # generous; the heartbeat timeout alone would take 60 s
            "run Crashed",
        )
        took = time.monotonic() - killed
    print(f"\nserve() SIGKILLed: its Running run Crashed after {took:.1f} s "
          "(TIDEFLOW_RUNNER_DISCONNECT_GRACE 10 s; heartbeat timeout 60 s)")  # fmt: skip
    assert took < 30, took
    _, message = final
    assert "disconnected without saying goodbye and did not reconnect within 10 s" in message
    assert f":{proc.pid}'" in message  # names the runner (host:pid)
    assert httpx.get(f"{server.api_url}/health", timeout=5).status_code == 200


# --- the protocol, spoken by hand: reconnect within the grace, and goodbye ------------------------


def _hello(ws: ClientConnection, runner_id: UUID, deployment_id: UUID) -> None:
    ws.send(json.dumps({"type": "hello", "runner_id": str(runner_id), "name": "by-hand",
                        "deployment_ids": [str(deployment_id)]}))  # fmt: skip
    welcome = json.loads(ws.recv(timeout=10))
    assert welcome["type"] == "welcome", welcome


def _claimed_running_run(client: SyncClient, runner_id: UUID) -> tuple[FlowRun, UUID]:
    deployment = client.create_deployment(
        DeploymentCreate(flow_name="by-hand", name=uuid.uuid4().hex[:8])
    )
    run = client.create_flow_run_from_deployment(deployment.id, DeploymentFlowRunCreate())
    assert run.state is not None
    client.set_flow_run_state(run.id, Pending(runner_id=str(runner_id)),
                              expected_state_id=run.state.id)  # fmt: skip
    client.set_flow_run_state(run.id, Running())
    return run, deployment.id


GRACE = {"TIDEFLOW_RUNNER_DISCONNECT_GRACE": "2"}


@pytest.fixture
def short_grace(tmp_path: Path) -> Iterator[ServerProcess]:
    with ServerProcess(home=tmp_path / "srv", env=GRACE) as s:
        yield s


@pytest.mark.timeout(120)
def test_reconnecting_within_the_grace_or_saying_goodbye_keeps_the_run(
    short_grace: ServerProcess,
) -> None:
    url = ws_url(short_grace.api_url, "/runners/ws")
    back, polite, gone = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    with SyncClient(short_grace.api_url) as client:
        runs: dict[UUID, FlowRun] = {}
        deployments: dict[UUID, UUID] = {}
        for runner in (back, polite, gone):
            run, deployment_id = _claimed_running_run(client, runner)
            runs[runner], deployments[runner] = run, deployment_id
            with connect(url) as ws:
                _hello(ws, runner, deployment_id)
                if runner == polite:
                    ws.send(json.dumps({"type": "goodbye"}))
            # closed: `back` and `gone` without a goodbye
        time.sleep(0.5)
        with connect(url) as again:  # `back` returns within the 2 s grace
            _hello(again, back, deployments[back])
            crashed = _wait_for(
                lambda: (
                    _state(client, runs[gone].id)[0] is StateType.CRASHED
                    and _state(client, runs[gone].id)
                ),
                20,
                "the run of the runner that did not come back Crashed",
            )
            time.sleep(2.0)  # well past the grace of the others too
            states = {r: _state(client, runs[r].id)[0] for r in (back, polite)}
    assert "did not reconnect within 2 s" in crashed[1]
    assert states == {back: StateType.RUNNING, polite: StateType.RUNNING}
