"""A process that emits events while the server is down and then exits: its events are saved to the
spool under TIDEFLOW_HOME (stderr says how many and where) and the next process that sends events
delivers them, each stored once; the spool is bounded and counts what it dropped; two processes
delivering at once send each spooled event once; a deliverer killed midway leaves its claim to the
next one. Before the spool, the 100 events of the first test were lost without a word."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tideflow.testing import ServerProcess, free_port

EMIT = textwrap.dedent(
    """
    import sys
    from tideflow.events import emit_event

    name, first, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    for i in range(first, first + count):
        emit_event(name, {"tideflow.resource.id": "spool.r"}, payload={"i": i, "pad": "x" * 40})
    """
)

DELIVER = textwrap.dedent(
    """
    import json, sys
    from tideflow.client._events import spool_for, ws_url
    from tideflow.settings import get_settings

    api_url = sys.argv[1]
    sys.stdin.readline()  # both deliverers start together
    result = spool_for(get_settings()).deliver(api_url, ws_url(api_url, "/events/in"))
    print(json.dumps({"events": result.events, "files": result.files, "error": result.error}))
    """
)

SAVED = re.compile(
    r"tideflow: the server at (\S+) was unreachable; (\d+) events were saved to (\S+) and will be "
    r"sent by the next tideflow process"
)


def _env(api_url: str, **extra: str) -> dict[str, str]:
    return {**os.environ, "TIDEFLOW_API_URL": api_url, **extra}


def _emit(api_url: str, name: str, first: int, count: int, **extra: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", EMIT, name, str(first), str(count)],
        capture_output=True, text=True, timeout=60, env=_env(api_url, **extra),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stderr


def _events(api_url: str, name: str) -> list[dict[str, Any]]:
    body = {"event_names": [name], "limit": 500}
    page = httpx.post(f"{api_url}/events/filter", json=body, timeout=10).json()
    assert page["total"] == len(page["events"]), page["total"]
    return list(page["events"])


def _spool_files(home: Path) -> list[Path]:
    return sorted((home / "spool").glob("events-*"))


@pytest.mark.timeout(120)
def test_events_of_a_process_that_exits_while_the_server_is_down_reach_it_later(
    _isolated_home: Path, tmp_path: Path
) -> None:
    port = free_port()
    api_url = f"http://127.0.0.1:{port}/api"  # nothing listens there yet
    err = _emit(api_url, "spool.test", 0, 100)
    match = SAVED.search(err)
    assert match is not None, err
    assert match.group(1) == api_url and match.group(2) == "100"
    spooled = Path(match.group(3))
    assert spooled.parent == _isolated_home / "spool" and spooled.exists()
    assert len(spooled.read_text().splitlines()) == 1 + 100  # header + one line per event
    with ServerProcess(port=port, home=tmp_path / "srv"):
        err = _emit(api_url, "spool.test", 100, 1)  # the next process: its own event + the spool
        assert "tideflow:" not in err, err
        events = _events(api_url, "spool.test")
        health = httpx.get(f"{api_url}/health", timeout=5)
    assert sorted(e["payload"]["i"] for e in events) == list(range(101))  # each exactly once
    assert len({e["id"] for e in events}) == 101
    assert health.status_code == 200
    assert _spool_files(_isolated_home) == []


@pytest.mark.timeout(120)
def test_the_spool_is_bounded_and_counts_exactly_what_it_dropped(
    _isolated_home: Path, tmp_path: Path
) -> None:
    port = free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    limit = {"TIDEFLOW_EVENTS_SPOOL_MAX_BYTES": "30000"}  # ~120 of these events
    first = _emit(api_url, "spool.bound", 0, 50, **limit)
    assert "50 events were saved" in first, first
    second = _emit(api_url, "spool.bound", 50, 100, **limit)
    # 50 + 100 do not fit: the older file goes whole, and the count is said.
    assert "dropped 50 event(s), the oldest first" in second, second
    assert "100 events were saved" in second, second
    assert len(_spool_files(_isolated_home)) == 1
    alone = _emit(api_url, "spool.bound", 150, 200, **limit)
    # Alone over the limit: its own oldest go first, then the older file; each exactly counted.
    dropped = int(re.search(r"dropped (\d+) event\(s\)", alone).group(1))  # type: ignore[union-attr]
    saved = int(re.search(r"(\d+) events were saved", alone).group(1))  # type: ignore[union-attr]
    assert saved + (dropped - 100) == 200, alone  # 100: the second file's events
    assert sum(p.stat().st_size for p in _spool_files(_isolated_home)) <= 30000
    with ServerProcess(port=port, home=tmp_path / "srv"):
        result = subprocess.run(
            [sys.executable, "-m", "tideflow", "events", "flush-spool"],
            capture_output=True, text=True, timeout=60, env=_env(api_url),
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert "Sent " in result.stdout and "spooled event(s)" in result.stdout
        kept = _events(api_url, "spool.bound")
        reports = _events(api_url, "tideflow.events.dropped")
    lost = sum(int(r["payload"]["count"]) for r in reports)
    # One report: it also carries the 50 the dropped second file's own report counted.
    assert len(reports) == 1 and len(kept) == saved and lost == dropped + 50
    assert len(kept) + lost == 350  # stored + reported dropped = emitted, exactly
    assert sorted(e["payload"]["i"] for e in kept) == list(range(350 - saved, 350))  # newest kept
    assert _spool_files(_isolated_home) == []


def _spool_events(home: Path, api_url: str, name: str, files: int, per_file: int) -> None:
    """Spool files written as an exiting process would (the same writer, no server needed)."""
    from tideflow.client._events import spool_for
    from tideflow.settings import get_settings

    spool = spool_for(get_settings())
    assert spool.directory == home / "spool"
    for f in range(files):
        lines = [
            json.dumps({"id": str(uuid.uuid4()), "event": name, "occurred": "2026-01-01T00:00:00Z",
                        "resource": {"tideflow.resource.id": "spool.r"},
                        "payload": {"i": f * per_file + i}})
            for i in range(per_file)
        ]  # fmt: skip
        spool.write(lines, api_url)


@pytest.mark.timeout(120)
def test_two_concurrent_deliverers_send_each_spooled_event_once(
    _isolated_home: Path, server: ServerProcess
) -> None:
    _spool_events(_isolated_home, server.api_url, "spool.race", files=8, per_file=250)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", DELIVER, server.api_url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=os.environ,
        )
        for _ in range(2)
    ]
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=90)
        assert proc.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert [r["error"] for r in results] == [None, None]
    assert sum(r["files"] for r in results) == 8  # each file claimed by exactly one of them
    assert sum(r["events"] for r in results) == 2000  # so each event was sent once
    events = _events_all(server.api_url, "spool.race")
    assert sorted(e["payload"]["i"] for e in events) == list(range(2000))
    assert _spool_files(_isolated_home) == []


def _events_all(api_url: str, name: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    body: dict[str, Any] = {"event_names": [name], "limit": 500}
    with httpx.Client(timeout=10) as http:
        page = http.post(f"{api_url}/events/filter", json=body).json()
        out.extend(page["events"])
        while page.get("next_cursor"):
            page = http.post(f"{api_url}/events/filter",
                             json={**body, "cursor": page["next_cursor"]}).json()  # fmt: skip
            out.extend(page["events"])
    return out


@pytest.mark.timeout(120)
def test_a_claim_left_by_a_killed_deliverer_is_taken_over(
    _isolated_home: Path, server: ServerProcess
) -> None:
    _spool_events(_isolated_home, server.api_url, "spool.orphan", files=1, per_file=20)
    (path,) = _spool_files(_isolated_home)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # a pid that no longer runs, as a deliverer SIGKILLed mid-delivery leaves
    claimed = path.with_name(f"{path.name}.claimed-{gone.pid}-{socket.gethostname()}")
    path.rename(claimed)
    err = _emit(server.api_url, "spool.orphan", 20, 1)
    assert "tideflow:" not in err, err
    events = _events(server.api_url, "spool.orphan")
    assert sorted(e["payload"]["i"] for e in events) == list(range(21))
    assert _spool_files(_isolated_home) == []
