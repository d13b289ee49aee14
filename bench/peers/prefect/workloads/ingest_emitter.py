"""The sending side of Prefect's ingest run (same as bench/_ingest_emitter.py): N events sent with
``prefect.events.emit_event`` to the server named by PREFECT_API_URL, then polled with
``POST /api/events/count-by/event`` until all N are stored. Prints one JSON line.

Prefect's events worker queue is unbounded by default (``PREFECT_EVENTS_WORKER_MAX_QUEUE_SIZE=0``),
so nothing is dropped while the sender is ahead of the server.
"""

import json
import os
import sys
import time
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta

from prefect.events import emit_event
from prefect.events.worker import EventsWorker

TIMEOUT_S = 600


def _stored(api_url: str, name: str, since: datetime) -> int:
    body = {
        "filter": {
            "event": {"name": [name]},
            "occurred": {
                "since": since.isoformat(),
                "until": (datetime.now(UTC) + timedelta(hours=1)).isoformat(),
            },
        },
        "time_unit": "day",
        "time_interval": 1.0,
    }
    request = urllib.request.Request(
        f"{api_url}/events/count-by/event", json.dumps(body).encode(), method="POST"
    )
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=60) as response:
        return sum(int(row["count"]) for row in json.loads(response.read()))


def main(n: int) -> dict[str, float]:
    api_url = os.environ["PREFECT_API_URL"]
    name = f"bench.ingest.{uuid.uuid4().hex[:8]}"
    related = [{"prefect.resource.id": "bench.flow", "prefect.resource.role": "flow"}]
    since = datetime.now(UTC) - timedelta(minutes=1)
    start = time.perf_counter()
    for i in range(n):
        emit_event(name, {"prefect.resource.id": f"bench.r{i % 1000}"}, related=related,
                   payload={"i": i})  # fmt: skip
    emitted = time.perf_counter() - start
    deadline = time.monotonic() + TIMEOUT_S
    stored, almost = 0, None
    while stored < n:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {stored}/{n} events stored after {TIMEOUT_S} s")
        stored = _stored(api_url, name, since)
        if almost is None and stored >= n * 0.99:
            almost = time.perf_counter() - start
        if stored < n:
            time.sleep(0.05)
    took = time.perf_counter() - start
    EventsWorker.drain_all(timeout=30)
    return {"events": n, "emit_s": emitted, "stored_s": took, "events_per_s": n / took,
            "stored_99_s": almost or took}  # fmt: skip


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]))), flush=True)
