"""emit_event against a real server: events emitted in a flow are stored by the time the flow
returns (flushed at the end of the run) beside the run's state events; bad input raises at once;
from a subprocess with the server down, emit returns at once and the events arrive exactly once
after the server is back."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from tideflow import flow
from tideflow.client import SyncClient
from tideflow.events import emit_event
from tideflow.schemas.events import EventFilter
from tideflow.testing import ServerProcess


def test_events_emitted_in_a_flow_are_stored_when_it_returns(client: SyncClient) -> None:
    marker = str(uuid.uuid4())

    @flow(name="emitting-flow")
    def emitting() -> str:
        for i in range(5):
            emit_event("acme.table.loaded", {"tideflow.resource.id": f"acme.table.{marker}"},
                       related=[{"tideflow.resource.id": "acme.db", "tideflow.resource.role": "db"}],
                       payload={"rows": i})  # fmt: skip
        return "ok"

    assert emitting() == "ok"
    page = client.read_events(EventFilter(resource_ids=[f"acme.table.{marker}"], order="oldest"))
    assert [e.payload["rows"] for e in page.events] == [0, 1, 2, 3, 4]
    assert page.events[0].related[0].role == "db"
    run = client.read_flow_runs()[0]
    # Inside a run, the run is related too (and its deployment when it has one), as in Prefect.
    ran_in = page.events[0].related_by_role("flow-run")
    assert [(r.id, r.name) for r in ran_in] == [(f"tideflow.flow-run.{run.id}", run.name)]
    assert not page.events[0].related_by_role("deployment")
    states = client.read_events(
        EventFilter(resource_ids=[f"tideflow.flow-run.{run.id}"], order="oldest")
    )
    names = [e.event for e in states.events]
    assert names[-2:] == ["tideflow.flow-run.Running", "tideflow.flow-run.Completed"]
    assert all(b.follows == a.id for a, b in zip(states.events, states.events[1:], strict=False))
    flow_rel = states.events[-1].related_by_role("flow")[0]
    assert flow_rel.name == "emitting-flow" and flow_rel.id == f"tideflow.flow.{run.flow_id}"
    assert states.events[-1].resource.name == run.name


def test_bad_input_raises_at_once() -> None:
    with pytest.raises(ValueError, match="whitespace"):
        emit_event("two words", {"tideflow.resource.id": "r"})
    with pytest.raises(ValueError, match=r"tideflow\.resource\.id"):
        emit_event("ok", {"name": "x"})
    with pytest.raises(ValueError, match=r"tideflow\.resource\.role"):
        emit_event("ok", {"tideflow.resource.id": "r"}, related=[{"tideflow.resource.id": "x"}])


SCRIPT = textwrap.dedent(
    """
    import sys, time
    from tideflow.client._events import event_worker, flush_events
    from tideflow.events import emit_event

    start = time.perf_counter()
    ids = [str(emit_event("outage.test", {"tideflow.resource.id": "outage.r"}, payload={"i": i}).id)
           for i in range(50)]
    took = time.perf_counter() - start
    quick = flush_events(5.0)  # the server is down: returns at once, nothing delivered
    print(f"emitted {took:.3f} flushed={quick}", flush=True)
    sys.stdin.readline()  # the test restarts the server, then says go
    ok = flush_events(60.0, wait_offline=True)
    print(f"delivered={ok} {event_worker().delivered}", flush=True)
    """
)


@pytest.mark.timeout(120)
def test_emit_from_a_process_while_the_server_is_down(tmp_path: Path) -> None:
    with ServerProcess(home=tmp_path / "srv") as server:
        server.stop()
        env = dict(os.environ, TIDEFLOW_API_URL=server.api_url)
        proc = subprocess.Popen([sys.executable, "-c", SCRIPT], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)  # fmt: skip
        assert proc.stdout is not None and proc.stdin is not None
        first = proc.stdout.readline().split()
        assert first[0] == "emitted" and float(first[1]) < 2.0, first
        assert first[2] == "flushed=False"
        server.start()
        proc.stdin.write("go\n")
        proc.stdin.flush()
        out, err = proc.communicate(timeout=90)
        assert proc.returncode == 0, err
        assert out.split() == ["delivered=True", "50"], (out, err)
        with SyncClient(server.api_url) as c:
            page = c.read_events(EventFilter(event_names=["outage.test"], limit=500))
        assert sorted(e.payload["i"] for e in page.events) == list(range(50))


@pytest.mark.timeout(180)
def test_pointing_the_process_at_another_server_sends_later_events_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One process, two servers in turn (a test session, a notebook switching profiles): events
    # emitted after TIDEFLOW_API_URL changed go to the new server, not to the first one.
    from tideflow.client._events import flush_events

    with ServerProcess(home=tmp_path / "a") as first, ServerProcess(home=tmp_path / "b") as second:
        monkeypatch.setenv("TIDEFLOW_API_URL", first.api_url)
        emit_event("switch.test", {"tideflow.resource.id": "switch.r"}, payload={"to": "a"})
        assert flush_events(30.0, wait_offline=True)
        monkeypatch.setenv("TIDEFLOW_API_URL", second.api_url)
        emit_event("switch.test", {"tideflow.resource.id": "switch.r"}, payload={"to": "b"})
        assert flush_events(30.0, wait_offline=True)
        for server, want in ((first, "a"), (second, "b")):
            with SyncClient(server.api_url) as c:
                got = c.read_events(EventFilter(event_names=["switch.test"])).events
            assert [e.payload["to"] for e in got] == [want], server.api_url
