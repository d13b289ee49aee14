"""Benchmark workers: push latency of a work pool's run to a process worker (run created → Pending,
→ Running), next to serve()'s for the same trivial flow, one run at a time, interleaved.

Three rows: ``serve`` (the flow served by ``serve()``, runs forked from it), ``worker_warm`` (``tideflow
worker start``: each run handed to a waiting interpreter with tideflow imported) and ``worker_cold``
(``--cold``: a fresh interpreter per run). Runs are created with ``POST
/deployments/{id}/create_flow_run``; the latencies are the server's own timestamps (run created,
Pending, Running).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from bench._api import tideflow_api
from bench._driver import push_latency, wait_for
from bench._proc import ROOT, http_json, stop_process
from bench._seed import served_script
from bench._servers import Server, client_environment, running_server
from bench._stats import Figure

__all__ = ["run"]

NAME = "workers"
WORKLOADS = ROOT / "bench" / "workloads"
SCRIPT = WORKLOADS / "single.py"
SERVED = "single-flow/single"


@contextmanager
def _worker(server: Server, pool: str, *args: str) -> Iterator[subprocess.Popen[bytes]]:
    log_path = server.home / f"worker-{pool}.log"
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tideflow", "worker", "start", "--pool", pool, *args],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log,
            env=client_environment(server.home, server.api_url), cwd=str(server.home),
        )  # fmt: skip
    try:
        wait_for(
            f"worker of {pool}",
            lambda: (
                "started for work pool" in log_path.read_text(errors="replace")
                or proc.poll() is not None
            ),
        )
        if proc.poll() is not None:
            raise RuntimeError(f"worker exited: {log_path.read_text()[-400:]}")
        time.sleep(3.0)  # the warm spare's imports: a steady state, not the first seconds
        yield proc
    finally:
        stop_process(proc)


def _pooled_deployment(server: Server, pool: str) -> str:
    http_json("POST", f"{server.api_url}/work_pools/", {"name": pool})
    body = {
        "flow_name": "single-flow", "name": pool, "entrypoint": "single.py:single_flow",
        "work_pool_name": pool,
        "pull_steps": [{"set_working_directory": {"directory": str(WORKLOADS)}}],
    }  # fmt: skip
    return str(http_json("POST", f"{server.api_url}/deployments/", body)["id"])


def run(quick: bool) -> list[Figure]:
    count = 5 if quick else 30
    rows = ("serve", "worker_warm", "worker_cold")
    samples: dict[str, dict[str, list[float]]] = {r: {"pending": [], "running": []} for r in rows}
    with (
        tempfile.TemporaryDirectory(prefix="bench-workers-") as tmp,
        running_server(Path(tmp)) as server,
        ExitStack() as stack,
    ):
        stack.enter_context(served_script(server, SCRIPT, [SERVED]))
        served_id = str(http_json("GET", f"{server.api_url}/deployments/name/{SERVED}")["id"])
        ids = {"serve": served_id}
        for row, args in (("worker_warm", ()), ("worker_cold", ("--cold",))):
            ids[row] = _pooled_deployment(server, row.replace("_", "-"))
            stack.enter_context(_worker(server, row.replace("_", "-"), *args))
        api = tideflow_api(server)
        for _ in range(count):
            for row in rows:
                pending, running = push_latency(server.api_url, api, ids[row])
                samples[row]["pending"].append(pending)
                samples[row]["running"].append(running)
    return [
        Figure(NAME, f"{row}_created_to_{kind}_ms", "tideflow", samples[row][kind])
        for row in rows
        for kind in ("pending", "running")
    ]
