"""Benchmark 3, footprint: server start → /api/health 200 (fresh and existing database), server idle
RSS (whole process tree), ``serve()`` idle RSS (and PSS, USS), the seed's import time, installed size."""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import psutil

from bench._memory import tree_memory_mib
from bench._probes import import_seconds, installed_mb
from bench._proc import tree_rss_mib
from bench._seed import SEED_EXAMPLE, served_seed
from bench._servers import running_server, start_server
from bench._stats import Figure

__all__ = ["SEED_IMPORTS", "run"]

NAME = "footprint"
IDLE_WAIT_S = 3.0
QUICK_IDLE_WAIT_S = 1.0
SEED_IMPORTS = (
    "from tideflow import flow, serve; from tideflow.events import DeploymentEventTrigger"
)


def _starts(count: int, idle_s: float) -> dict[str, list[float]]:
    figures: dict[str, list[float]] = {
        k: []
        for k in ("fresh", "existing", "cpu_fresh", "cpu_existing", "rss_fresh", "rss_existing")
    }
    for _ in range(count):
        with tempfile.TemporaryDirectory(prefix="bench-footprint-") as tmp:
            for kind in ("fresh", "existing"):
                server = start_server(Path(tmp))
                try:
                    figures[kind].append(server.startup_s * 1000)
                    # CPU the server spent until healthy: start-up is CPU-bound, and this figure
                    # barely moves with the machine's load while the wall time does.
                    cpu = psutil.Process(server.proc.pid).cpu_times()
                    figures[f"cpu_{kind}"].append((cpu.user + cpu.system) * 1000)
                    time.sleep(idle_s)
                    figures[f"rss_{kind}"].append(tree_rss_mib(server.proc.pid))
                finally:
                    server.stop()
    return figures


def _serve_idle_memory(count: int, idle_s: float) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {"rss": [], "pss": [], "uss": []}
    for _ in range(count):
        with (
            tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp,
            running_server(Path(tmp)) as server,
        ):
            with served_seed(server) as serve_proc:
                time.sleep(idle_s)
                for key, value in tree_memory_mib(serve_proc.pid).items():
                    out[key].append(value)
    return out


def run(quick: bool) -> list[Figure]:
    idle_s = QUICK_IDLE_WAIT_S if quick else IDLE_WAIT_S
    starts = _starts(1 if quick else 5, idle_s)
    figures = [
        Figure(NAME, "start_fresh_ms", "tideflow", starts["fresh"]),
        Figure(NAME, "start_existing_ms", "tideflow", starts["existing"]),
        Figure(NAME, "start_fresh_cpu_ms", "tideflow", starts["cpu_fresh"]),
        Figure(NAME, "start_existing_cpu_ms", "tideflow", starts["cpu_existing"]),
        Figure(NAME, "server_idle_rss_fresh_mib", "tideflow", starts["rss_fresh"]),
        Figure(NAME, "server_idle_rss_existing_mib", "tideflow", starts["rss_existing"]),
    ]
    # RSS is issue 6's measure; PSS and USS show the tree's real share of RAM (see bench._memory).
    serve_memory = _serve_idle_memory(1 if quick else 3, idle_s)
    for key, values in serve_memory.items():
        figures.append(
            Figure(NAME, f"serve_idle_{key}_mib", "tideflow", values, note=SEED_EXAMPLE.name)
        )
    imports = import_seconds(sys.executable, SEED_IMPORTS, 3 if quick else 10)
    figures.append(Figure(NAME, "seed_import_ms", "tideflow", [s * 1000 for s in imports]))
    size, packages = installed_mb(sys.executable, "tideflow")
    figures.append(Figure(NAME, "installed_mb", "tideflow", [size], note=f"{packages} packages"))
    return figures
