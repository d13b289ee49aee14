"""The sending side of the ingest benchmark, run as its own process: ``python -m bench._ingest_emitter N``.

Emits N events with ``tideflow.events.emit_event`` to the server named by TIDEFLOW_API_URL and
prints one JSON line: seconds spent in emit_event, seconds until all N are counted by the API.
With default settings the SDK buffer (10,000) is smaller than a full run's N: emit_event then waits
for room (backpressure) rather than dropping, and a dropped event would show as a timeout here.
"""

from __future__ import annotations

import json
import os
import sys
import time
import uuid

from bench._proc import http_json
from tideflow.client._events import event_worker, flush_events
from tideflow.events import emit_event

__all__ = ["main"]


def main(n: int) -> dict[str, float | int]:
    """Emit ``n`` events; time until the API counts all of them."""
    api_url = os.environ["TIDEFLOW_API_URL"]
    name = f"bench.ingest.{uuid.uuid4().hex[:8]}"
    related = [{"tideflow.resource.id": "bench.flow", "tideflow.resource.role": "flow"}]
    start = time.perf_counter()
    for i in range(n):
        emit_event(name, {"tideflow.resource.id": f"bench.r{i % 1000}"}, related=related,
                   payload={"i": i})  # fmt: skip
    emitted = time.perf_counter() - start
    flush_events(600, wait_offline=True)
    deadline = time.monotonic() + 600
    stored = 0
    while stored < n:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {stored}/{n} events stored after 600 s")
        rows = http_json("POST", f"{api_url}/events/count-by/event", {"event_names": [name]})
        stored = sum(int(r["count"]) for r in rows)
        if stored < n:
            time.sleep(0.05)
    took = time.perf_counter() - start
    worker = event_worker()
    return {"events": n, "emit_s": emitted, "stored_s": took, "events_per_s": n / took,
            "acknowledged": worker.delivered, "refused": worker.refused}  # fmt: skip


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]))), flush=True)
