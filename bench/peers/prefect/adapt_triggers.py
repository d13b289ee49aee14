"""Prefect triggers (benchmark 6): automations each matching one distinct resource with a
do-nothing action, events over those resources posted to /api/events; events evaluated per second
until every action has executed, and whether the count is exact. Prints JSON figures.

Prefect evaluates about a hundred events a second here, so it gets fewer events than ours (the
figure is a rate); its in-memory broker drops messages once a subscriber queue holds 10,000.
"""

from __future__ import annotations

import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from _prefect import running_server

from bench._proc import emit, http_json
from bench._triggers_driver import TriggerApi, create_automations, run_triggers


def _api(api_url: str) -> TriggerApi:
    def automation(index: int, resource_id: str) -> dict[str, Any]:
        return {
            "name": f"bench-{index}",
            "trigger": {
                "type": "event",
                "expect": ["bench.tick"],
                "match": {"prefect.resource.id": resource_id},
                "posture": "Reactive",
                "threshold": 1,
                "within": 0,
            },
            "actions": [{"type": "do-nothing"}],
        }

    def executed_count(since: datetime) -> int:
        body = {
            "filter": {
                "event": {"name": ["prefect.automation.action.executed"]},
                "occurred": {
                    "since": since.isoformat(),
                    "until": (datetime.now(UTC) + timedelta(hours=1)).isoformat(),
                },
            },
            "time_unit": "day",
            "time_interval": 1.0,
        }
        rows = http_json("POST", f"{api_url}/events/count-by/event", body)
        return sum(int(r["count"]) for r in rows)

    return TriggerApi(api_url, "prefect.resource.id", automation, executed_count)


def main(quick: bool) -> None:
    sizes = [(1000, 2_000)] if quick else [(1000, 10_000), (10_000, 10_000)]
    for automations, events in sizes:
        with (
            tempfile.TemporaryDirectory(prefix="bench-prefect-triggers-") as tmp,
            running_server(Path(tmp)) as server,
        ):
            api = _api(server.api_url)
            create_automations(api, automations)
            time.sleep(5)  # Prefect's triggers service reloads its automations cache periodically
            result = run_triggers(api, automations, events, timeout=900)
        note = f"{result.executed}/{result.expected} actions executed; {events:,} events posted in {result.ingest_s:.1f} s"
        record: dict[str, Any] = {
            "bench": "triggers",
            "figure": f"automations_{automations}_events_per_s",
            "system": "prefect",
            "higher_is_better": True,
        }
        if result.executed == result.expected:
            record.update(samples=[result.events_per_s], note=note)
        else:
            record["unsupported"] = f"firing count wrong: {note}"
        emit([record])


if __name__ == "__main__":
    main("--quick" in sys.argv[1:])
