"""Benchmark 11, replicas: created-and-completed flow runs per second through 1 and through 3 API
replicas on one PostgreSQL (ADR 0014). Client threads loop over create run → Running → Completed
through the API (no run processes: what is measured is the servers and the database, what replicas
are meant to scale); with 3 replicas the threads are spread round-robin over them. Each round runs
for a fixed time on a fresh database; the figure is runs completed per second in that round.

Then the chain hop across replicas (issue 14): the chains workload served by ``serve()`` connected to
replica A, N upstream runs created at once through replica B, each chained to its downstream run
by the trigger engine wherever its lease is; per chain, upstream Completed → downstream Running,
beside the same on one server on PostgreSQL. Every round checks that exactly N downstream runs
were made, each naming its own upstream.

Read it with the load average printed next to it: on a machine whose cores are already busy, three
server processes compete for the same CPUs and the 3-replica figure says little."""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench._api import tideflow_api
from bench._postgres import postgres_database
from bench._proc import ROOT, http_json
from bench._seed import served_script
from bench._servers import Server, start_server
from bench._stats import Figure
from bench.chains_load import chain_round, new_runs
from bench.workloads.chains import DOWNSTREAM, UPSTREAM

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


@contextmanager
def _replicas(count: int, database: str) -> Iterator[list[Server]]:
    """``count`` API servers on a fresh PostgreSQL database, stopped afterwards."""
    with (
        tempfile.TemporaryDirectory(prefix="bench-replicas-") as tmp,
        postgres_database(database) as url,
    ):
        servers: list[Server] = []
        try:
            for i in range(count):
                servers.append(start_server(Path(tmp) / f"r{i}", url))
            yield servers
        finally:
            for server in servers:
                server.stop()


def _round(replicas: int, seconds: float) -> float:
    with _replicas(replicas, "bench_replicas") as servers:
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


def _hops(replicas: int, chains: int, rounds: int) -> list[float]:
    """Per chain, upstream Completed → downstream Running (ms): serve() on the first replica, the
    upstream runs created through the last one."""
    with _replicas(replicas, "bench_replica_hops") as servers:
        runner_side, creating_side = servers[0], servers[-1]
        script = ROOT / "bench" / "workloads" / "chains.py"
        with served_script(runner_side, script, [UPSTREAM, DOWNSTREAM]):
            api = tideflow_api(runner_side)
            up_id, down_id = api.deployment_id(UPSTREAM), api.deployment_id(DOWNSTREAM)
            seen = {r["id"] for r in new_runs(creating_side.api_url, down_id, set())}
            hops: list[float] = []
            for _ in range(rounds):
                before = len(seen)
                # chain_round raises unless every downstream names one of its upstreams.
                hop = chain_round(creating_side.api_url, up_id, down_id, chains, seen)["hop"]
                if len(seen) - before != chains:
                    raise RuntimeError(f"{len(seen) - before} downstream runs for {chains}")
                hops.extend(hop)
            return hops


def run(quick: bool) -> list[Figure]:
    rounds, seconds = (2, 5.0) if quick else (3, 15.0)
    figures = []
    for replicas in (1, 3):
        samples = [_round(replicas, seconds) for _ in range(rounds)]
        plural = "s" if replicas > 1 else ""
        note = f"{THREADS} client threads, {seconds:g} s rounds, PostgreSQL"
        figure = f"runs_completed_per_s_{replicas}_replica{plural}"
        figures.append(Figure(NAME, figure, "tideflow", samples, higher_is_better=True, note=note))
    chains, hop_rounds = (10, 2) if quick else (200, 1)
    for replicas in (1, 3):
        where = "one server" if replicas == 1 else "serve() on replica A, runs created on C"
        figures.append(
            Figure(NAME, f"hop_{chains}_chains_{replicas}_replica{'s' if replicas > 1 else ''}_ms",
                   "tideflow", _hops(replicas, chains, hop_rounds),
                   note=f"{chains} chains at once, {hop_rounds} round(s), PostgreSQL; {where}")
        )  # fmt: skip
    return figures
