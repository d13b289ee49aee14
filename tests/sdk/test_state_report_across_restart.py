"""A run's final state survives a server restart: the run process retries its state report (same
proposal, same state id) while the server is down, instead of ending up Crashed with its work done.

Real processes: a server that is SIGKILLed and started again on the same port and database while a
flow-run process (sync and async flows) waits to finish.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest

from tideflow.testing import ServerProcess

pytestmark = pytest.mark.timeout(300)

SCRIPT = textwrap.dedent(
    """
    import asyncio, pathlib, sys, time
    from tideflow import flow

    go = pathlib.Path(sys.argv[1])

    @flow
    def waits_sync():
        while not go.exists():
            time.sleep(0.05)
        return 7

    @flow
    async def waits_async():
        while not go.exists():
            await asyncio.sleep(0.05)
        return 7

    value = asyncio.run(waits_async()) if sys.argv[2] == "async" else waits_sync()
    print("value", value, flush=True)
    """
)


def _runs(api_url: str) -> list[dict]:
    response = httpx.post(f"{api_url}/flow_runs/filter", json={}, timeout=10)
    response.raise_for_status()
    return response.json()


def _start_flow(tmp_path: Path, server: ServerProcess, kind: str, patience: str) -> tuple:
    script = tmp_path / "flow.py"
    script.write_text(SCRIPT)
    go = tmp_path / "go"
    env = {
        **os.environ,
        "TIDEFLOW_API_URL": server.api_url,
        "TIDEFLOW_HOME": str(tmp_path / "client-home"),
        "TIDEFLOW_CLIENT_STATE_REPORT_PATIENCE": patience,
    }
    proc = subprocess.Popen(
        [sys.executable, str(script), str(go), kind],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        runs = _runs(server.api_url)
        if runs and runs[0]["state"]["type"] == "RUNNING":
            return proc, go, runs[0]["id"]
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    raise AssertionError("the flow run never reached Running")


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_the_final_state_reaches_a_restarted_server(tmp_path: Path, kind: str) -> None:
    with ServerProcess(home=tmp_path / "server", startup_timeout=90) as server:
        proc, go, run_id = _start_flow(tmp_path, server, kind, "120")
        server.kill()
        go.touch()  # the flow finishes while nothing answers
        time.sleep(1.5)
        server.start()
        out, err = proc.communicate(timeout=150)
        assert proc.returncode == 0, err
        assert "value 7" in out
        run = httpx.get(f"{server.api_url}/flow_runs/{run_id}", timeout=10).json()
        assert run["state"]["type"] == "COMPLETED", run["state"]
        states = httpx.get(f"{server.api_url}/flow_runs/{run_id}/states", timeout=10).json()
        assert [s["type"] for s in states].count("COMPLETED") == 1


def test_with_no_patience_the_report_is_given_up_at_once(tmp_path: Path) -> None:
    with ServerProcess(home=tmp_path / "server", startup_timeout=90) as server:
        proc, go, _ = _start_flow(tmp_path, server, "sync", "0")
        server.kill()
        go.touch()
        started = time.monotonic()
        _, err = proc.communicate(timeout=60)
        assert proc.returncode != 0
        assert "cannot reach the tideflow API" in err
        assert time.monotonic() - started < 30
