"""Benchmark 6, triggers: 1,000 and 10,000 automations, each matching one distinct resource with a
do-nothing action; 100,000 events over those resources posted to /api/events; events evaluated per
second until every do-nothing action has executed. The count must equal the number of events."""

from __future__ import annotations

import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from bench._proc import http_json
from bench._servers import running_server
from bench._stats import Figure
from bench._triggers_driver import TriggerApi, create_automations, run_triggers

__all__ = ["run"]

NAME = "triggers"


def _api(api_url: str) -> TriggerApi:
    def automation(index: int, resource_id: str) -> dict[str, Any]:
        return {
            "name": f"bench-{index}",
            "trigger": {
                "type": "event",
                "expect": ["bench.tick"],
                "match": {"tideflow.resource.id": resource_id},
                "posture": "Reactive",
                "threshold": 1,
                "within": 0,
            },
            "actions": [{"type": "do-nothing"}],
        }

    def executed_count(since: datetime) -> int:
        body = {
            "event_names": ["tideflow.automation.action.executed"],
            "occurred_after": since.isoformat(),
        }
        rows = http_json("POST", f"{api_url}/events/count-by/event", body)
        return sum(int(r["count"]) for r in rows)

    return TriggerApi(api_url, "tideflow.resource.id", automation, executed_count)


def run(quick: bool) -> list[Figure]:
    sizes = [(1000, 3_000)] if quick else [(1000, 100_000), (10_000, 100_000)]
    figures = []
    for automations, events in sizes:
        with (
            tempfile.TemporaryDirectory(prefix="bench-triggers-") as tmp,
            running_server(Path(tmp)) as server,
        ):
            api = _api(server.api_url)
            create_automations(api, automations)
            result = run_triggers(api, automations, events, timeout=600)
        figure = Figure(
            NAME, f"automations_{automations}_events_per_s", "tideflow", higher_is_better=True
        )
        note = f"{result.executed}/{result.expected} actions executed; {events:,} events posted in {result.ingest_s:.1f} s"
        if result.executed == result.expected:
            figure.samples, figure.note = [result.events_per_s], note
        else:
            figure.unsupported = f"firing count wrong: {note}"
        figures.append(figure)
    return figures
