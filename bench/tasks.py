"""Benchmark 9, tasks (issue 10): the per-task overhead of a flow calling trivial tasks one after
another, a 10,000-element ``.map()`` on threads (wall time and the server's peak RSS while it takes
the task runs' reports), and 1,000 tasks on a 2-worker Dask LocalCluster.

Each workload runs in a client process (``bench.workloads.tasks``) against a fresh server.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from bench._memory import TreeMemorySampler
from bench._proc import ROOT
from bench._servers import client_environment, running_server
from bench._stats import Figure

__all__ = ["run"]

NAME = "tasks"


def _workload(tmp: Path, api_url: str, kind: str, n: int) -> dict[str, list[float]]:
    done = subprocess.run(
        [sys.executable, "-m", "bench.workloads.tasks", kind, str(n)],
        capture_output=True, text=True, check=True, cwd=str(ROOT),
        env=client_environment(tmp, api_url, TIDEFLOW_LOGGING_LEVEL="WARNING"),
    )  # fmt: skip
    result: dict[str, list[float]] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def run(quick: bool) -> list[Figure]:
    sequential_n, map_n, dask_n = (300, 2_000, 200) if quick else (1_000, 10_000, 1_000)
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(prefix="bench-tasks-") as tmp, running_server(Path(tmp)) as s:
        seq = _workload(Path(tmp), s.api_url, "sequential", sequential_n)
        figures.append(
            Figure(NAME, "per_task_ms", "tideflow", [x * 1000 for x in seq["per_task_s"]],
                   note=f"{sequential_n} sequential trivial tasks in one flow, 5 flow calls")
        )  # fmt: skip
        figures.append(
            Figure(NAME, "sequential_flow_call_s", "tideflow", seq["call_s"],
                   note="the whole flow call, task-run reports sent before it returns")
        )  # fmt: skip
        with TreeMemorySampler(s.proc.pid) as memory:
            mapped = _workload(Path(tmp), s.api_url, "map", map_n)
        figures.append(Figure(NAME, f"map_{map_n}_threads_s", "tideflow", mapped["wall_s"]))
        figures.append(
            Figure(NAME, f"map_{map_n}_server_peak_rss_mib", "tideflow", [memory.peak["rss"]])
        )
        on_dask = _workload(Path(tmp), s.api_url, "dask", dask_n)
        figures.append(
            Figure(NAME, f"dask_{dask_n}_tasks_s", "tideflow", on_dask["wall_s"],
                   note="2-worker LocalCluster, cluster start excluded")
        )  # fmt: skip
    return figures
