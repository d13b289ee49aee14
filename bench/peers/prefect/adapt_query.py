"""Prefect query (benchmark 7): N events seeded into a fresh Prefect SQLite database
(workloads/query_seed.py, Prefect's own row encoding and ORM tables), then its
``POST /api/events/filter`` timed through a real Prefect server by resource id, by event-name
prefix and by related resource id (limit 50; Prefect's page always carries the total, newest
first by default); one sample per request, in ms. Prints JSON figures.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _prefect import environment, running_server

from bench._proc import emit, http_json

HERE = Path(__file__).resolve().parent
PREFIXES = ["prefect.flow-run.", "acme.step3.", "prefect.flow-run.Fail"]


def _time(api_url: str, filters: list[dict[str, Any]]) -> list[float]:
    times = []
    for event_filter in filters:
        started = time.perf_counter()
        page = http_json(
            "POST", f"{api_url}/events/filter", {"filter": event_filter, "limit": 50}, timeout=120
        )
        times.append((time.perf_counter() - started) * 1000)
        if not page["total"]:  # a query that matches nothing would time an empty index probe
            raise RuntimeError(f"/events/filter matched no seeded event for {event_filter}")
    return times


def main(quick: bool) -> None:
    events, repeat = (100_000, 20) if quick else (1_000_000, 50)
    rnd = random.Random(1)
    with tempfile.TemporaryDirectory(prefix="bench-prefect-query-") as tmp:
        home = Path(tmp)
        url = f"sqlite+aiosqlite:///{home / 'events.db'}"
        out = home / "ids.json"
        subprocess.run(
            [sys.executable, str(HERE / "workloads" / "query_seed.py"), str(events), str(out)],
            check=True, cwd=tmp, stdout=sys.stderr,
            env=environment(home, PREFECT_API_DATABASE_CONNECTION_URL=url),
        )  # fmt: skip
        ids = json.loads(out.read_text())
        note = f"{events:,} events seeded in {ids['seconds']:.0f} s"
        kinds = {
            "by_resource_id_ms": [{"resource": {"id": [rnd.choice(ids["runs"])]}} for _ in range(repeat)],
            "by_event_prefix_ms": [{"event": {"prefix": [p]}} for p in rnd.choices(PREFIXES, k=repeat)],
            "by_related_id_ms": [{"related": {"id": [rnd.choice(ids["flows"])]}} for _ in range(repeat)],
        }  # fmt: skip
        with running_server(home, PREFECT_API_DATABASE_CONNECTION_URL=url) as server:
            for figure, filters in kinds.items():
                _time(server.api_url, filters[:3])  # warm the page cache
                samples = _time(server.api_url, filters)
                emit([{"bench": "query", "figure": figure, "system": "prefect",
                       "samples": samples, "note": note}])  # fmt: skip


if __name__ == "__main__":
    main("--quick" in sys.argv[1:])
