"""Dropped events are reported, never silent: with a tiny SDK buffer and the server down, emitting
more events than fit drops the oldest with a warning, and after the server is back the feed holds
the kept events plus one ``tideflow.events.dropped`` event counting the lost ones."""

from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tideflow.client import SyncClient
from tideflow.schemas.events import EventFilter
from tideflow.testing import ServerProcess

SCRIPT = textwrap.dedent(
    """
    import os, sys
    from tideflow.client._events import event_worker, flush_events
    from tideflow.events import emit_event

    for i in range(50):
        emit_event("drops.test", {"tideflow.resource.id": "drops.r"}, payload={"i": i})
    print(f"pid={os.getpid()} flushed={flush_events(2.0)}", flush=True)
    sys.stdin.readline()  # the test restarts the server, then says go
    ok = flush_events(60.0, wait_offline=True)
    print(f"delivered={ok} {event_worker().delivered}", flush=True)
    """
)


@pytest.mark.timeout(120)
def test_events_dropped_while_the_server_is_down_are_reported_in_the_feed(tmp_path: Path) -> None:
    started = dt.datetime.now(dt.UTC)
    with ServerProcess(home=tmp_path / "srv") as server:
        server.stop()
        env = dict(os.environ, TIDEFLOW_API_URL=server.api_url, TIDEFLOW_EVENTS_CLIENT_BUFFER="10")
        proc = subprocess.Popen([sys.executable, "-c", SCRIPT], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)  # fmt: skip
        assert proc.stdout is not None and proc.stdin is not None
        first = proc.stdout.readline().split()
        assert first[1] == "flushed=False", first
        pid = int(first[0].removeprefix("pid="))
        server.start()
        proc.stdin.write("go\n")
        proc.stdin.flush()
        out, err = proc.communicate(timeout=90)
        assert proc.returncode == 0, err
        assert out.split() == ["delivered=True", "11"], (out, err)
        assert "dropped 40 event(s)" in err
        with SyncClient(server.api_url) as c:
            kept = c.read_events(EventFilter(event_names=["drops.test"], limit=500))
            reports = c.read_events(EventFilter(event_names=["tideflow.events.dropped"]))
    assert sorted(e.payload["i"] for e in kept.events) == list(range(40, 50))
    assert len(reports.events) == 1
    report = reports.events[0]
    host = socket.gethostname()
    assert report.resource.id == f"tideflow.process.{host}.{pid}"
    assert report.resource.name == f"{host}:{pid}"
    assert report.payload["count"] == 40
    since = dt.datetime.fromisoformat(report.payload["since"])
    assert started <= since <= report.occurred
