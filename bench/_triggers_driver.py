"""The trigger-throughput workload, the same for every system: A automations, each matching one
distinct resource with a do-nothing action, then E events spread over those resources, posted in
batches; measured until the count of executed do-nothing actions reaches E (exact count required).

Standard library only: the Prefect adapter imports it from the peer virtualenv. The system-specific
parts (the automation and event bodies, the count query) come in as a ``TriggerApi``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bench._proc import http_json

__all__ = ["TriggerApi", "TriggerResult", "run_triggers"]

BATCH = 500
SETTLE_S = 3.0  # once the count stops at E, wait this long to see that no extra firing comes


@dataclass
class TriggerApi:
    api_url: str
    resource_label: str  # "tideflow.resource.id" | "prefect.resource.id"
    automation: Callable[[int, str], dict[str, Any]]  # (index, resource id) -> create body
    executed_count: Callable[[datetime], int]  # actions executed since a time


@dataclass
class TriggerResult:
    events_per_s: float
    executed: int
    expected: int
    ingest_s: float


def _event(resource_id: str, label: str) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "occurred": datetime.now(UTC).isoformat(),
        "event": "bench.tick",
        "resource": {label: resource_id},
        "payload": {},
        "related": [],
    }


def create_automations(api: TriggerApi, count: int) -> None:
    for i in range(count):
        http_json("POST", f"{api.api_url}/automations/", api.automation(i, f"bench.r.{i}"))


def run_triggers(api: TriggerApi, automations: int, events: int, timeout: float) -> TriggerResult:
    """Post ``events`` events over ``automations`` resources; wait for ``events`` executed actions."""
    since = datetime.now(UTC)
    started = time.monotonic()
    for first in range(0, events, BATCH):
        batch = [
            _event(f"bench.r.{i % automations}", api.resource_label)
            for i in range(first, min(first + BATCH, events))
        ]
        http_json("POST", f"{api.api_url}/events", batch, timeout=120)
    ingest_s = time.monotonic() - started
    deadline = started + timeout
    count, last_change, done_at = 0, time.monotonic(), None
    while time.monotonic() < deadline:
        now_count = api.executed_count(since)
        if now_count != count:
            count, last_change = now_count, time.monotonic()
            if count >= events and done_at is None:
                done_at = last_change
        if done_at is not None and time.monotonic() - last_change > SETTLE_S:
            break
        if done_at is None and time.monotonic() - last_change > 60:
            break  # nothing moved for a minute: what ran is all that will run
        time.sleep(0.25)
    elapsed = (done_at or last_change) - started
    return TriggerResult(count / elapsed if elapsed > 0 else 0.0, count, events, ingest_s)
