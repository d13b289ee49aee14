"""CLI against a real server: `tideflow event emit`, `tideflow events ls` (table and --json, filters,
--since), `tideflow events stream` (live line, Ctrl-C exits 0) and one-line errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import pytest

from tideflow.testing import ServerProcess


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    with ServerProcess() as s:
        yield s


def tf(server: ServerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, TIDEFLOW_API_URL=server.api_url, COLUMNS="200")
    return subprocess.run([sys.executable, "-m", "tideflow", *args], capture_output=True, text=True,
                          env=env, timeout=60)  # fmt: skip


def test_emit_then_list(server: ServerProcess) -> None:
    rid = f"cli.{uuid.uuid4()}"
    out = tf(server, "event", "emit", "cli.thing.done", "--resource-id", rid, "--label", "tideflow.resource.name=nightly",
             "--related-id", "cli.owner", "--role", "owner", "--payload", '{"rows": 3}')  # fmt: skip
    assert out.returncode == 0, out.stderr
    event_id = out.stdout.strip()
    assert uuid.UUID(event_id)
    listed = tf(server, "events", "ls", "--resource", rid, "--json")
    assert listed.returncode == 0, listed.stderr
    events = json.loads(listed.stdout)
    assert [e["id"] for e in events] == [event_id]
    assert events[0]["payload"] == {"rows": 3}
    assert events[0]["resource"]["tideflow.resource.name"] == "nightly"
    table = tf(server, "events", "ls", "--event", "cli.thing.", "--related", "cli.owner")
    assert table.returncode == 0
    assert "cli.thing.done" in table.stdout and "owner:cli.owner" in table.stdout
    assert f"{rid} (nightly)" in table.stdout
    assert json.loads(
        tf(server, "events", "ls", "--event", "cli.*.done", "--since", "10m", "--json").stdout
    )
    none = tf(server, "events", "ls", "--event", "cli.thing.done", "--since", "2999-01-01T00:00:00")
    assert none.stdout.strip() == "No events."


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["event", "emit", "bad name", "--resource-id", "r"], "contains whitespace"),
        (["event", "emit", "ok", "--resource-id", "r", "--payload", "[1"], "--payload is not JSON"),
        (["event", "emit", "ok", "--resource-id", "r", "--payload", "[1]"], "payload"),
        (
            ["event", "emit", "ok", "--resource-id", "r", "--related-id", "x"],
            "one --role per --related-id",
        ),
        (["event", "emit", "ok", "--resource-id", "r", "--label", "novalue"], "expected KEY=VALUE"),
        (["events", "ls", "--since", "yesterday"], "expected a duration"),
    ],
)
def test_errors_are_one_line(server: ServerProcess, args: list[str], message: str) -> None:
    out = tf(server, *args)
    assert out.returncode == 1
    assert message in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr


def test_unreachable_server_is_one_line() -> None:
    env = dict(os.environ, TIDEFLOW_API_URL="http://127.0.0.1:9/api")
    out = subprocess.run(
        [sys.executable, "-m", "tideflow", "events", "ls"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert out.returncode == 1 and len(out.stderr.strip().splitlines()) == 1


def test_stream_prints_live_events_and_exits_0_on_ctrl_c(server: ServerProcess) -> None:
    rid = f"stream.{uuid.uuid4()}"
    env = dict(os.environ, TIDEFLOW_API_URL=server.api_url)
    proc = subprocess.Popen([sys.executable, "-m", "tideflow", "events", "stream", "--resource", rid, "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)  # fmt: skip
    try:
        assert proc.stdout is not None
        # Emit until the stream (connecting in the background) shows one.
        deadline = time.monotonic() + 30
        line = ""
        os.set_blocking(proc.stdout.fileno(), False)
        while not line and time.monotonic() < deadline:
            assert tf(server, "event", "emit", "stream.tick", "--resource-id", rid).returncode == 0
            time.sleep(0.3)
            line = proc.stdout.readline()
        event = json.loads(line)
        assert event["event"] == "stream.tick" and event["resource"]["tideflow.resource.id"] == rid
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=40) == 0  # a loaded CI machine exits slowly, not wrongly
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()  # reaps it and closes the pipes
