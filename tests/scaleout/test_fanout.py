"""Pushes fanned out across replicas (ADR 0014), real processes on one PostgreSQL: a serve() runner
connected to replica A runs a deployment run created through replica B at once (its fallback poll
set to minutes, so only a push can start it), and is told to cancel a run cancelled through replica
C; an /api/events/out stream on A carries events ingested on B."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import serve_script, served, start_replicas, stop_all, wait_for
from tideflow.client import SyncClient
from tideflow.client._events import stream_events

pytestmark = pytest.mark.timeout(180)

SERVE = textwrap.dedent(
    """
    import time
    from tideflow import flow, serve

    @flow
    def quick():
        return 1

    @flow
    def slow():
        time.sleep(60)

    if __name__ == "__main__":
        serve(quick.to_deployment(name="quick"), slow.to_deployment(name="slow"))
    """
)


def _state(api_url: str, run_id: Any) -> str | None:
    with SyncClient(api_url) as client:
        run = client.read_flow_run(run_id)
    return run.state_type.value if run.state_type else None


def test_runner_on_a_gets_runs_and_cancels_made_on_other_replicas(
    pg_db: str, tmp_path: Path
) -> None:
    a, b, c = start_replicas(pg_db, tmp_path, 3)
    # Poll every 10 minutes: a run that starts within seconds was pushed.
    runner = serve_script(tmp_path / "serve.py", SERVE, a.api_url, tmp_path / "client",
                          TIDEFLOW_RUNNER_POLL_INTERVAL="600")  # fmt: skip
    try:
        served(b.api_url, "quick/quick", "slow/slow")
        env = {**__import__("os").environ, "TIDEFLOW_API_URL": b.api_url}
        started = time.monotonic()
        done = subprocess.run([sys.executable, "-m", "tideflow", "deployment", "run", "quick/quick",
                               "--watch"], capture_output=True, text=True, env=env, timeout=120)  # fmt: skip
        took = time.monotonic() - started
        assert done.returncode == 0, done.stdout + done.stderr
        assert "Completed" in done.stdout, done.stdout
        print(f"\n`deployment run --watch` through B, served on A: Completed in {took:.2f} s")

        with SyncClient(b.api_url) as client:
            slow = client.read_deployment_by_name("slow/slow")
            run = client.create_flow_run_from_deployment(slow.id)
        wait_for("the slow run to run on A", lambda: _state(a.api_url, run.id) == "RUNNING", 30)
        cancelled_at = time.monotonic()
        answer = httpx.post(f"{c.api_url}/flow_runs/{run.id}/set_state",
                            json={"state": {"type": "CANCELLING"}}, timeout=10)  # fmt: skip
        assert answer.status_code in (200, 201), answer.text
        wait_for("the run to be Cancelled", lambda: _state(c.api_url, run.id) == "CANCELLED", 30)
        print(f"cancelled through C, the runner on A stopped it in "
              f"{time.monotonic() - cancelled_at:.2f} s")  # fmt: skip
    finally:
        stop_all(runner, a, b, c)


def test_events_ingested_on_b_stream_out_on_a(pg_db: str, tmp_path: Path) -> None:
    a, b = start_replicas(pg_db, tmp_path, 2)
    tag = uuid.uuid4().hex
    seen: dict[str, float] = {}
    ready = threading.Event()

    def listen() -> None:
        for frame in stream_events(a.api_url):
            ready.set()
            if frame.get("type") != "event":
                continue
            event = frame["event"]
            if event["event"] == "scaleout.test.ping" and event["payload"].get("tag") == tag:
                seen[event["id"]] = time.monotonic()
                if len(seen) == 20:
                    return

    try:
        listener = threading.Thread(target=listen, daemon=True)
        listener.start()
        # The stream sends nothing until an event: prime it with one sent to A itself.
        time.sleep(1.0)
        sent: dict[str, float] = {}
        for i in range(20):
            ident = str(uuid.uuid4())
            body = [{"id": ident, "event": "scaleout.test.ping", "occurred": _now(),
                     "resource": {"tideflow.resource.id": f"scaleout.{i}"},
                     "payload": {"tag": tag}}]  # fmt: skip
            sent[ident] = time.monotonic()
            answer = httpx.post(f"{b.api_url}/events", content=json.dumps(body), timeout=10,
                                headers={"content-type": "application/json"})  # fmt: skip
            assert answer.status_code == 200 and answer.json()["accepted"] == [ident], answer.text
            time.sleep(0.05)
        listener.join(20)
        assert set(seen) == set(sent), f"{len(seen)} of {len(sent)} events reached A's stream"
        lags = sorted(seen[i] - sent[i] for i in sent)
        print(f"\nevents ingested on B seen on A's /events/out: median {lags[10] * 1000:.0f} ms, "
              f"max {lags[-1] * 1000:.0f} ms")  # fmt: skip
        assert lags[10] < 0.5
    finally:
        stop_all(a, b)


def _now() -> str:
    import datetime as dt

    return dt.datetime.now(dt.UTC).isoformat()
