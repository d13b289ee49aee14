"""20 concurrent clients for 60 s against one server on SQLite, each in a loop of the mixed work a
team's runs make: create a flow run, move it Pending -> Running, post events and logs, read run,
log and event lists, complete the run. No answer may be a server error, and none may say "database
is locked" (the single writer and the busy timeout must absorb the contention); the server's log
must not say it either. The test prints requests/s and latency percentiles (the machine is shared:
the figures are reported, only sanity bounds are asserted)."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import statistics
import time
import uuid
from collections import Counter
from typing import Any

import httpx
import pytest

from tideflow.testing import ServerProcess

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

CLIENTS = 20
SECONDS = float(os.environ.get("TIDEFLOW_REL_LOAD_SECONDS", "60"))
LOCKED = "database is locked"


class _Tally:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.by_route: dict[str, list[float]] = {}
        self.statuses: Counter[int] = Counter()
        self.bad: list[str] = []

    async def call(self, api: httpx.AsyncClient, method: str, path: str, body: Any) -> Any:
        started = time.perf_counter()
        answer = await api.request(method, path, json=body)
        took = time.perf_counter() - started
        self.latencies.append(took)
        route = (
            f"{method} {path.split('/')[1]}/{path.split('/')[-1] if path.count('/') > 1 else ''}"
        )
        self.by_route.setdefault(route, []).append(took)
        self.statuses[answer.status_code] += 1
        if answer.status_code >= 500 or LOCKED in answer.text:
            self.bad.append(f"{method} {path}: {answer.status_code} {answer.text[:300]}")
        elif answer.status_code >= 400:
            self.bad.append(f"{method} {path}: unexpected {answer.status_code} {answer.text[:300]}")
        return answer.json() if answer.content else None


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat()


async def _client(base: str, index: int, until: float, tally: _Tally) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=60) as api:
        while time.monotonic() < until:
            run = await tally.call(api, "POST", "/flow_runs/", {"flow_name": f"load-{index % 4}"})
            run_id = run["id"]
            for state in ("PENDING", "RUNNING"):
                await tally.call(api, "POST", f"/flow_runs/{run_id}/set_state",
                                 {"state": {"type": state}})  # fmt: skip
            events = [{"id": str(uuid.uuid4()), "occurred": _now(), "event": "load.tick",
                       "resource": {"tideflow.resource.id": f"load.{index}"}, "payload": {"i": i}}
                      for i in range(5)]  # fmt: skip
            await tally.call(api, "POST", "/events", events)
            logs = [{"flow_run_id": run_id, "name": "load", "level": 20, "message": f"line {i}",
                     "timestamp": _now()} for i in range(5)]  # fmt: skip
            await tally.call(api, "POST", "/logs/", logs)
            await tally.call(api, "POST", "/flow_runs/filter", {"limit": 50})
            await tally.call(api, "POST", "/logs/filter", {"limit": 50})
            await tally.call(api, "POST", "/events/filter", {"limit": 50})
            await tally.call(api, "POST", f"/flow_runs/{run_id}/set_state",
                             {"state": {"type": "COMPLETED"}})  # fmt: skip


async def _load(base: str) -> tuple[_Tally, float]:
    tally = _Tally()
    started = time.monotonic()
    until = started + SECONDS
    await asyncio.gather(*(_client(base, i, until, tally) for i in range(CLIENTS)))
    return tally, time.monotonic() - started


def test_twenty_clients_for_a_minute_on_sqlite_see_no_server_error_and_no_lock() -> None:
    with ServerProcess(startup_timeout=120) as server:
        tally, took = asyncio.run(_load(server.api_url))
        log = server.log_path.read_text(errors="replace")
        health = httpx.get(f"{server.api_url}/health", timeout=10).status_code
    latencies = sorted(tally.latencies)
    total = len(latencies)
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[int(total * 0.99) - 1] * 1000
    print(
        f"\n{CLIENTS} clients x {SECONDS:g} s on SQLite: {total} requests in {took:.0f} s = "
        f"{total / took:.0f} requests/s; latency p50 {p50:.0f} ms, p99 {p99:.0f} ms, "
        f"max {latencies[-1] * 1000:.0f} ms; statuses {dict(tally.statuses)}; "
        f"server errors {sum(n for s, n in tally.statuses.items() if s >= 500)}; "
        f"'{LOCKED}' in answers/log: {sum(LOCKED in b for b in tally.bad)}/{log.count(LOCKED)}"
    )
    for route, times in sorted(tally.by_route.items()):
        times.sort()
        print(f"  {route}: {len(times)} requests, p50 {statistics.median(times) * 1000:.0f} ms, "
              f"p99 {times[int(len(times) * 0.99) - 1] * 1000:.0f} ms")  # fmt: skip
    assert tally.bad == [], tally.bad[:5]
    assert LOCKED not in log and "Traceback" not in log, log[-3000:]
    assert health == 200
    assert total > CLIENTS * 8  # it did load the server (each loop is 9 requests)
