"""10,000 events emitted by a real client process (``emit_event``, over the ``/events/in``
websocket) while the server is SIGKILLed three times and restarted on the same database and port:
every event the client saw acknowledged is stored, the client resends the rest after reconnecting,
and in the end all 10,000 are stored exactly once (no id twice, no sequence number twice). On
SQLite and on PostgreSQL. The test prints its figures (acks at each kill, reconnect time, total)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tideflow.testing import ServerProcess

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

TOTAL = 10_000
KILLS = (0.2, 0.45, 0.7)  # fractions of the events stored when the server is killed
NAME = "rel.sigkill"

# Paced (about 500 events/s); a thread reports the number of events the worker has seen
# acknowledged every 0.1 s, then one line of final figures.
EMITTER = textwrap.dedent(
    """
    import json, sys, threading, time
    from tideflow.client._events import event_worker
    from tideflow.events import emit_event

    name, total = sys.argv[1], int(sys.argv[2])
    worker = event_worker()
    done = threading.Event()

    def report():
        while not done.wait(0.1):
            print(json.dumps({"acked": worker.delivered}), flush=True)

    reporter = threading.Thread(target=report, daemon=True)
    reporter.start()
    started = time.monotonic()
    for i in range(total):
        emit_event(name, {"tideflow.resource.id": "rel.sigkill.r"}, payload={"i": i})
        if i % 100 == 99:
            time.sleep(max(0.0, started + (i + 1) / 500 - time.monotonic()))
    flushed = worker.flush(240, wait_offline=True)
    done.set()
    reporter.join()
    print(json.dumps({"final": True, "flushed": flushed, "acked": worker.delivered,
                      "refused": worker.refused, "pending": worker.pending}), flush=True)
    """
)


def _count(api_url: str) -> int:
    answer = httpx.post(
        f"{api_url}/events/count-by/event", json={"event_names": [NAME]}, timeout=30
    )
    rows = answer.json()
    return int(rows[0]["count"]) if rows else 0


def _read_lines(stream: Any, latest: dict[str, Any]) -> None:
    for line in stream:
        latest.update(json.loads(line))


def _stored(api_url: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    body: dict[str, Any] = {"event_names": [NAME], "limit": 500}
    with httpx.Client(base_url=api_url, timeout=30) as http:
        page = http.post("/events/filter", json=body).json()
        out.extend(page["events"])
        while page.get("next_cursor"):
            page = http.post("/events/filter", json={**body, "cursor": page["next_cursor"]}).json()
            out.extend(page["events"])
    return out


def test_events_survive_three_server_sigkills_each_stored_once(
    database_url: str, database_kind: str, tmp_path: Path
) -> None:
    server = ServerProcess(database_url, home=tmp_path / "server", startup_timeout=120)
    server.start()
    client_home = tmp_path / "client"
    client_home.mkdir()
    env = {**os.environ, "TIDEFLOW_API_URL": server.api_url, "TIDEFLOW_HOME": str(client_home)}
    errors = tmp_path / "emitter.err"
    with errors.open("wb") as err:
        emitter = subprocess.Popen(
            [sys.executable, "-c", EMITTER, NAME, str(TOTAL)],
            stdout=subprocess.PIPE, stderr=err, text=True, env=env,
        )  # fmt: skip
    figures: list[str] = []
    latest: dict[str, Any] = {"acked": 0}
    assert emitter.stdout is not None
    reader = threading.Thread(target=_read_lines, args=(emitter.stdout, latest), daemon=True)
    reader.start()
    try:
        # Each kill falls while events flow: once the server has stored the next share of them.
        for share in KILLS:
            deadline = time.monotonic() + 240
            while _count(server.api_url) < share * TOTAL:
                assert time.monotonic() < deadline and emitter.poll() is None, latest
                time.sleep(0.05)
            server.kill()
            time.sleep(0.3)  # the emitter's last report now holds every ack it got before the kill
            acked = latest["acked"]
            down = time.monotonic()
            server.start()  # same port, same database
            back = time.monotonic() - down
            # Everything acknowledged before the kill was committed: it is there after it.
            durable = _count(server.api_url)
            assert durable >= acked, (durable, acked)
            figures.append(
                f"kill with {acked} acknowledged ({durable} stored after the restart), "
                f"back in {back:.1f} s"
            )
        assert emitter.wait(timeout=300) == 0, errors.read_text()
        reader.join(10)
        final = dict(latest)
        stored = _stored(server.api_url)
    finally:
        if emitter.poll() is None:
            emitter.kill()
            emitter.wait()
        reader.join(10)
        emitter.stdout.close()
        server.stop()

    ids = [e["id"] for e in stored]
    seqs = [e["payload"]["i"] for e in stored]
    print(
        f"\n[{database_kind}] {TOTAL} events, 3 SIGKILLs: " + "; ".join(figures)
        + f"; acknowledged {final.get('acked')}, stored {len(stored)}, "
        f"distinct ids {len(set(ids))}, distinct sequence numbers {len(set(seqs))}"
    )  # fmt: skip
    assert final["flushed"] and final["pending"] == 0 and final["refused"] == 0, final
    assert final["acked"] == TOTAL  # each event acknowledged once (resends answer lost acks)
    assert len(stored) == TOTAL  # stored == acknowledged
    assert len(set(ids)) == TOTAL and sorted(seqs) == list(range(TOTAL))  # 0 duplicates, 0 lost
