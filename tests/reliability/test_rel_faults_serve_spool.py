"""A run forked by serve() that emits events while the server is down: the run process leaves
through os._exit (no atexit), so before this fix its unacknowledged events were lost without a
word. Now they are spooled under TIDEFLOW_HOME and delivered once the server is back."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest

from tideflow.client import SyncClient
from tideflow.testing import ServerProcess

SCRIPT = textwrap.dedent(
    """
    import os, pathlib, time
    from tideflow import flow, serve
    from tideflow.events import emit_event

    @flow
    def emitter():
        pathlib.Path(os.environ["STARTED_FILE"]).write_text("started")
        go = pathlib.Path(os.environ["GO_FILE"])
        while not go.exists():
            time.sleep(0.05)
        for i in range(5):
            emit_event("served.offline", {"tideflow.resource.id": "served.r"}, payload={"i": i})

    if __name__ == "__main__":
        serve(emitter.to_deployment(name="offline"))
    """
)


def _wait(predicate, timeout: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"{what} within {timeout} s")


@pytest.mark.timeout(180)
def test_events_of_a_served_run_cut_off_from_the_server_are_spooled_and_delivered(
    tmp_path: Path,
) -> None:
    home = tmp_path / "serve-home"
    home.mkdir()
    script = tmp_path / "served.py"
    script.write_text(SCRIPT)
    started, go = tmp_path / "started", tmp_path / "go"
    with ServerProcess(home=tmp_path / "server") as server:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("PYTEST")},
            "TIDEFLOW_HOME": str(home),
            "TIDEFLOW_API_URL": server.api_url,
            "STARTED_FILE": str(started),
            "GO_FILE": str(go),
        }
        out = (tmp_path / "serve.out").open("wb")
        proc = subprocess.Popen(
            [sys.executable, str(script)], env=env, stdout=out, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, cwd=tmp_path, start_new_session=True,
        )  # fmt: skip
        try:
            with SyncClient(server.api_url) as client:
                deployment = _wait(
                    lambda: next(iter(client.read_deployments()), None), 60, "no deployment"
                )
                client.create_flow_run_from_deployment(deployment.id)
            _wait(started.exists, 60, "the run did not start")
            server.kill()  # the server goes away while the run is still going
            go.write_text("go")
            spool = home / "spool"
            files = _wait(lambda: sorted(spool.glob("events-*")), 60, "no spool file written")
            assert "served.offline" in files[0].read_text()
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(30)
            out.close()
        server.start()  # same database, same port
        flushed = subprocess.run(
            [sys.executable, "-m", "tideflow", "events", "flush-spool"],
            env=env, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert flushed.returncode == 0, flushed.stderr
        page = httpx.post(
            f"{server.api_url}/events/filter", json={"event_names": ["served.offline"]}, timeout=10
        ).json()
        assert sorted(e["payload"]["i"] for e in page["events"]) == [0, 1, 2, 3, 4]
