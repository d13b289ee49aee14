"""Events ingested per second on SQLite: N events via ``emit_event`` from one process, timed until
every one of them is queryable through the API.

    python bench/events_ingest.py [--events 100000]

A real server (``tideflow.testing.ServerProcess``) on a fresh SQLite file; the SDK's buffer is
raised above N so that nothing is dropped while the sender is ahead of the server.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid

import httpx

from tideflow.testing import ServerProcess


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    args = parser.parse_args()
    n = args.events
    with tempfile.TemporaryDirectory() as home, ServerProcess(home=home) as server:
        os.environ["TIDEFLOW_API_URL"] = server.api_url
        os.environ["TIDEFLOW_EVENTS_CLIENT_BUFFER"] = str(n + 1)
        from tideflow.client._events import event_worker, flush_events
        from tideflow.events import emit_event

        name = f"bench.ingest.{uuid.uuid4().hex[:8]}"
        related = [{"tideflow.resource.id": "bench.flow", "tideflow.resource.role": "flow"}]
        start = time.perf_counter()
        for i in range(n):
            emit_event(name, {"tideflow.resource.id": f"bench.r{i % 1000}"}, related=related,
                       payload={"i": i})  # fmt: skip
        emitted = time.perf_counter() - start
        flush_events(600, wait_offline=True)
        with httpx.Client(base_url=server.api_url, timeout=60) as http:
            while True:
                counts = http.post("/events/count-by/event", json={"event_names": [name]}).json()
                if counts and counts[0]["count"] >= n:
                    break
                time.sleep(0.05)
        took = time.perf_counter() - start
        worker = event_worker()
        print(
            f"emit_event: {n} calls in {emitted:.2f} s ({emitted / n * 1e6:.0f} us each, never blocking)"
        )
        print(f"ingested {n} events in {took:.1f} s: {n / took:.0f} events/s "
              f"(acknowledged {worker.delivered}, refused {worker.refused})")  # fmt: skip


if __name__ == "__main__":
    main()
