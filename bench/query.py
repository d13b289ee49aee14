"""Benchmark 7, query: N events seeded straight into a fresh SQLite database, then
``POST /api/events/filter`` timed through a real server by resource id, by event-name prefix and by
related resource id (newest first, limit 50, with the total); one sample per request, in ms.

Seeding writes rows into the migrated schema with sqlite3 ``executemany`` (the encoding SQLAlchemy
uses) because a million events through the API would take most of an hour.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import random
import sqlite3
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench._proc import http_json
from bench._servers import running_server
from bench._stats import Figure
from tideflow.server.storage import Database
from tideflow.server.storage.migrate import upgrade_engine

__all__ = ["run", "seed"]

NAME = "query"
STATES = ["Scheduled", "Pending", "Running", "Completed", "Failed", "Crashed", "Cancelled", "Late"]
CUSTOM = [f"acme.step{i}.done" for i in range(12)]
PREFIXES = ["tideflow.flow-run.", "acme.step3.", "tideflow.flow-run.Fail"]
T_END = dt.datetime(2030, 1, 8, tzinfo=dt.UTC)
BATCH = 20_000


def _ts(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")


async def _migrate(path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{path}")
    try:
        await upgrade_engine(db.engine)
    finally:
        await db.dispose()


def _uuid(rnd: random.Random) -> uuid.UUID:
    return uuid.UUID(int=rnd.getrandbits(128))


def seed(path: Path, n: int, rnd: random.Random) -> dict[str, list[str]]:
    """Migrate ``path`` and write ``n`` events over a week; returns run ids with events and the flow ids."""
    asyncio.run(_migrate(path))
    flows = [f"tideflow.flow.{_uuid(rnd)}" for _ in range(100)]
    deployments = [f"tideflow.deployment.{_uuid(rnd)}" for _ in range(200)]
    runs = [f"tideflow.flow-run.{_uuid(rnd)}" for _ in range(max(1, n // 10))]
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")  # a throwaway file: durability does not matter here
    start = T_END - dt.timedelta(days=7)
    span = (T_END - start).total_seconds()
    received = _ts(T_END)
    used_runs: set[str] = set()  # queries pick runs that have events (not every run id gets one)
    events: list[tuple[object, ...]] = []
    resources: list[tuple[object, ...]] = []
    for i in range(n):
        eid = _uuid(rnd).hex
        occurred = _ts(start + dt.timedelta(seconds=rnd.random() * span))
        related = [
            {"tideflow.resource.id": rnd.choice(flows), "tideflow.resource.role": "flow"},
            {"tideflow.resource.id": rnd.choice(deployments), "tideflow.resource.role": "deployment"},
            {"tideflow.resource.id": f"tideflow.tag.t{rnd.randrange(50)}", "tideflow.resource.role": "tag"},
        ]  # fmt: skip
        if rnd.random() < 0.4:
            name, resource = f"tideflow.flow-run.{rnd.choice(STATES)}", rnd.choice(runs)
            used_runs.add(resource)
        else:
            name, resource = rnd.choice(CUSTOM), f"acme.table.{rnd.randrange(5000)}"
        events.append((eid, occurred, name, resource, json.dumps({"tideflow.resource.id": resource}),
                       json.dumps(related), json.dumps({"i": i}), None, received))  # fmt: skip
        # Related resources only (migration 0012): the primary one is events.resource_id.
        for pos, r in enumerate(related, start=1):
            resources.append((eid, pos, r["tideflow.resource.id"], r["tideflow.resource.role"], occurred))  # fmt: skip
        if len(events) >= BATCH or i == n - 1:
            conn.executemany("INSERT INTO events VALUES (?,?,?,?,?,?,?,?,?)", events)
            conn.executemany("INSERT INTO event_resources VALUES (?,?,?,?,?)", resources)
            conn.commit()
            events.clear()
            resources.clear()
    conn.execute("ANALYZE")
    conn.commit()
    conn.close()
    return {"runs": sorted(used_runs), "flows": flows}


def _time(api_url: str, bodies: list[dict[str, Any]]) -> list[float]:
    times = []
    for body in bodies:
        started = time.perf_counter()
        page = http_json("POST", f"{api_url}/events/filter", {**body, "limit": 50}, timeout=120)
        times.append((time.perf_counter() - started) * 1000)
        if not page["total"]:  # a query that matches nothing would time an empty index probe
            raise RuntimeError(f"/events/filter matched no seeded event for {body}")
    return times


def run(quick: bool) -> list[Figure]:
    events, repeat = (100_000, 20) if quick else (1_000_000, 50)
    rnd = random.Random(1)
    figures = []
    with tempfile.TemporaryDirectory(prefix="bench-query-") as tmp:
        path = Path(tmp) / "events.db"
        started = time.monotonic()
        ids = seed(path, events, rnd)
        note = f"{events:,} events seeded in {time.monotonic() - started:.0f} s"
        kinds = {
            "by_resource_id_ms": [{"resource_ids": [rnd.choice(ids["runs"])]} for _ in range(repeat)],
            "by_event_prefix_ms": [{"event_prefixes": [p]} for p in rnd.choices(PREFIXES, k=repeat)],
            "by_related_id_ms": [{"related_ids": [rnd.choice(ids["flows"])]} for _ in range(repeat)],
        }  # fmt: skip
        with running_server(Path(tmp) / "home", f"sqlite+aiosqlite:///{path}") as server:
            for figure, bodies in kinds.items():
                _time(server.api_url, bodies[:3])  # warm the page cache
                samples = _time(server.api_url, bodies)
                figures.append(Figure(NAME, figure, "tideflow", samples, note=note))
    return figures
