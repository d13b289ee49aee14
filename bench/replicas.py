"""Benchmark 11, replicas: created-and-completed flow runs per second through 1 and through 3 API
replicas on one PostgreSQL (ADR 0014). Client threads loop over create run → Running → Completed
through the API (no run processes: what is measured is the servers and the database, what replicas
are meant to scale); with 3 replicas the threads are spread round-robin over them. Each round runs
for a fixed time on a fresh database; the figure is runs completed per second in that round.

Read it with the load average printed next to it: on a machine whose cores are already busy, three
server processes compete for the same CPUs and the 3-replica figure says little."""

from __future__ import annotations

import tempfile
import threading
import time
from pathlib import Path

from bench._postgres import postgres_database
from bench._proc import http_json
from bench._servers import Server, start_server
from bench._stats import Figure

__all__ = ["run"]

NAME = "replicas"
THREADS = 12


def _client(api_urls: list[str], flow_id: str, until: float, done: list[int], index: int) -> None:
    api = api_urls[index % len(api_urls)]
    count = 0
    while time.monotonic() < until:
        run = http_json("POST", f"{api}/flow_runs/", {"flow_id": flow_id})
        for state in ("RUNNING", "COMPLETED"):
            http_json("POST", f"{api}/flow_runs/{run['id']}/set_state",
                      {"state": {"type": state}})  # fmt: skip
        count += 1
    done[index] = count


def _round(replicas: int, seconds: float) -> float:
    with (
        tempfile.TemporaryDirectory(prefix="bench-replicas-") as tmp,
        postgres_database("bench_replicas") as url,
    ):
        servers: list[Server] = []
        try:
            for i in range(replicas):
                servers.append(start_server(Path(tmp) / f"r{i}", url))
            api_urls = [s.api_url for s in servers]
            flow_id = http_json("POST", f"{api_urls[0]}/flows/", {"name": "bench-replicas"})["id"]
            done = [0] * THREADS
            until = time.monotonic() + seconds
            started = time.monotonic()
            threads = [
                threading.Thread(target=_client, args=(api_urls, flow_id, until, done, i))
                for i in range(THREADS)
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            return sum(done) / (time.monotonic() - started)
        finally:
            for server in servers:
                server.stop()


def run(quick: bool) -> list[Figure]:
    rounds, seconds = (2, 5.0) if quick else (3, 15.0)
    figures = []
    for replicas in (1, 3):
        samples = [_round(replicas, seconds) for _ in range(rounds)]
        plural = "s" if replicas > 1 else ""
        note = f"{THREADS} client threads, {seconds:g} s rounds, PostgreSQL"
        figure = f"runs_completed_per_s_{replicas}_replica{plural}"
        figures.append(Figure(NAME, figure, "tideflow", samples, higher_is_better=True, note=note))
    return figures
