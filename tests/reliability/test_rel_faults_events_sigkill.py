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
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tideflow.testing import ServerProcess

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

TOTAL = 10_000
KILLS = (0.2, 0.45, 0.7)  # fractions of the events emitted when the server is killed
NAME = "rel.sigkill"

# Paced (about 1,000 events/s) so that the kills fall while events flow; one progress line per 250
# events with the number the worker has seen acknowledged so far, then the final figures.
EMITTER = textwrap.dedent(
    """
    import json, sys, time
    from tideflow.client._events import event_worker
    from tideflow.events import emit_event

    name, total = sys.argv[1], int(sys.argv[2])
    worker = event_worker()
    started = time.monotonic()
    for i in range(total):
        emit_event(name, {"tideflow.resource.id": "rel.sigkill.r"}, payload={"i": i})
        if i % 250 == 249:
            print(json.dumps({"emitted": i + 1, "acked": worker.delivered}), flush=True)
            time.sleep(max(0.0, started + (i + 1) / 1000 - time.monotonic()))
    done = worker.flush(240, wait_offline=True)
    print(json.dumps({"final": True, "flushed": done, "acked": worker.delivered,
                      "refused": worker.refused, "pending": worker.pending}), flush=True)
    """
)


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
    server = ServerProcess(database_url, home=tmp_path / "server")
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
    final: dict[str, Any] = {}
    try:
        assert emitter.stdout is not None
        kills = list(KILLS)
        for line in emitter.stdout:
            progress = json.loads(line)
            if progress.get("final"):
                final = progress
                break
            if kills and progress["emitted"] >= kills[0] * TOTAL:
                kills.pop(0)
                server.kill()
                down = time.monotonic()
                server.start()  # same port, same database
                back = time.monotonic() - down
                # Everything acknowledged before the kill was committed: it is there after it.
                durable = len(_stored(server.api_url))
                assert durable >= progress["acked"], (durable, progress)
                figures.append(
                    f"kill at {progress['emitted']} emitted / {progress['acked']} acked "
                    f"({durable} stored after the restart), back in {back:.1f} s"
                )
        assert emitter.wait(timeout=300) == 0, errors.read_text()
        assert not kills, "the emitter finished before every kill"
        stored = _stored(server.api_url)
    finally:
        if emitter.poll() is None:
            emitter.kill()
            emitter.wait()
        if emitter.stdout is not None:
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
