"""Seed N events into a SQLite database and time ``POST /api/events/filter`` on a real server.

    python bench/events_filter.py [--events 1000000] [--db /tmp/events-bench.db] [--repeat 50]

Seeding writes rows straight into the migrated schema (sqlite3 executemany, the same encoding
SQLAlchemy uses) because going through the API would take most of an hour for a million events.
It then times three query kinds through the HTTP API, each newest-first, limit 50, with the total:
by resource id, by event-name prefix, and by related resource id; p50/p95 in milliseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import random
import sqlite3
import statistics
import time
import uuid
from pathlib import Path

import httpx

from tideflow.server.storage import Database
from tideflow.server.storage.migrate import upgrade_engine
from tideflow.testing import ServerProcess

STATES = ["Scheduled", "Pending", "Running", "Completed", "Failed", "Crashed", "Cancelled", "Late"]
CUSTOM = [f"acme.step{i}.done" for i in range(12)]
T_END = dt.datetime(2030, 1, 8, tzinfo=dt.UTC)


def _ts(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).replace(tzinfo=None).strftime("%Y-%m-%d %H:%M:%S.%f")


async def _migrate(path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{path}")
    try:
        await upgrade_engine(db.engine)
    finally:
        await db.dispose()


def seed(path: Path, n: int, rnd: random.Random) -> dict[str, list[str]]:
    asyncio.run(_migrate(path))
    flows = [f"tideflow.flow.{uuid.UUID(int=rnd.getrandbits(128))}" for _ in range(100)]
    deployments = [f"tideflow.deployment.{uuid.UUID(int=rnd.getrandbits(128))}" for _ in range(200)]
    runs = [f"tideflow.flow-run.{uuid.UUID(int=rnd.getrandbits(128))}" for _ in range(n // 10)]
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")
    start = T_END - dt.timedelta(days=7)
    span = (T_END - start).total_seconds()
    received = _ts(T_END)
    batch_events: list[tuple[object, ...]] = []
    batch_res: list[tuple[object, ...]] = []
    t0 = time.perf_counter()
    for i in range(n):
        eid = uuid.UUID(int=rnd.getrandbits(128)).hex
        occurred = _ts(start + dt.timedelta(seconds=rnd.random() * span))
        flow, dep = rnd.choice(flows), rnd.choice(deployments)
        related = [
            {"tideflow.resource.id": flow, "tideflow.resource.role": "flow"},
            {"tideflow.resource.id": dep, "tideflow.resource.role": "deployment"},
            {
                "tideflow.resource.id": f"tideflow.tag.t{rnd.randrange(50)}",
                "tideflow.resource.role": "tag",
            },
        ]
        if rnd.random() < 0.4:
            name, resource = f"tideflow.flow-run.{rnd.choice(STATES)}", rnd.choice(runs)
        else:
            name, resource = rnd.choice(CUSTOM), f"acme.table.{rnd.randrange(5000)}"
        batch_events.append((eid, occurred, name, resource, json.dumps({"tideflow.resource.id": resource}),
                             json.dumps(related), json.dumps({"i": i}), None, received))  # fmt: skip
        batch_res.append((eid, 0, resource, "", occurred))
        for pos, r in enumerate(related, start=1):
            batch_res.append(
                (eid, pos, r["tideflow.resource.id"], r["tideflow.resource.role"], occurred)
            )
        if len(batch_events) >= 20_000 or i == n - 1:
            conn.executemany("INSERT INTO events VALUES (?,?,?,?,?,?,?,?,?)", batch_events)
            conn.executemany("INSERT INTO event_resources VALUES (?,?,?,?,?)", batch_res)
            conn.commit()
            batch_events.clear()
            batch_res.clear()
    conn.execute("ANALYZE")
    conn.commit()
    conn.close()
    print(f"seeded {n} events in {time.perf_counter() - t0:.0f} s", flush=True)
    return {"runs": runs, "flows": flows}


def _time(http: httpx.Client, bodies: list[dict[str, object]]) -> tuple[float, float, int]:
    times = []
    total = 0
    for body in bodies:
        t = time.perf_counter()
        response = http.post("/events/filter", json=body)
        times.append((time.perf_counter() - t) * 1000)
        response.raise_for_status()
        total = response.json()["total"]
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.95) - 1], total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--db", type=Path, default=Path("/tmp/tideflow-events-bench.db"))
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--reuse", action="store_true", help="Keep an already seeded database.")
    args = parser.parse_args()
    rnd = random.Random(1)
    if args.reuse and args.db.exists():
        conn = sqlite3.connect(args.db)
        runs = [
            r[0]
            for r in conn.execute(
                "SELECT DISTINCT resource_id FROM events WHERE event LIKE 'tideflow.flow-run.%' LIMIT 1000"
            )
        ]
        flows = [
            r[0]
            for r in conn.execute(
                "SELECT DISTINCT resource_id FROM event_resources WHERE role='flow' LIMIT 100"
            )
        ]
        conn.close()
        ids = {"runs": runs, "flows": flows}
    else:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{args.db}{suffix}").unlink(missing_ok=True)
        ids = seed(args.db, args.events, rnd)
    kinds = {
        "by resource id": [{"resource_ids": [rnd.choice(ids["runs"])]} for _ in range(args.repeat)],
        "by event prefix": [
            {"event_prefixes": [p]}
            for p in rnd.choices(
                ["tideflow.flow-run.", "acme.step3.", "tideflow.flow-run.Fail"], k=args.repeat
            )
        ],
        "by related id": [{"related_ids": [rnd.choice(ids["flows"])]} for _ in range(args.repeat)],
    }
    with (
        ServerProcess(f"sqlite+aiosqlite:///{args.db}") as server,
        httpx.Client(base_url=server.api_url, timeout=60) as http,
    ):
        for name, bodies in kinds.items():
            _time(http, bodies[:3])  # warm the page cache
            p50, p95, total = _time(http, bodies)
            print(
                f"{name:16s} p50 {p50:7.1f} ms  p95 {p95:7.1f} ms  (last total {total})", flush=True
            )


if __name__ == "__main__":
    main()
