"""Benchmark 3, footprint: server start → /api/health 200 (fresh and existing database), server idle
RSS (whole process tree), ``serve()`` idle RSS, the seed's import time, installed size."""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

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
        k: [] for k in ("fresh", "existing", "rss_fresh", "rss_existing")
    }
    for _ in range(count):
        with tempfile.TemporaryDirectory(prefix="bench-footprint-") as tmp:
            for kind in ("fresh", "existing"):
                server = start_server(Path(tmp))
                try:
                    figures[kind].append(server.startup_s * 1000)
                    time.sleep(idle_s)
                    figures[f"rss_{kind}"].append(tree_rss_mib(server.proc.pid))
                finally:
                    server.stop()
    return figures


def _serve_idle_rss(count: int, idle_s: float) -> list[float]:
    out = []
    for _ in range(count):
        with (
            tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp,
            running_server(Path(tmp)) as server,
        ):
            with served_seed(server) as serve_proc:
                time.sleep(idle_s)
                out.append(tree_rss_mib(serve_proc.pid))
    return out


def run(quick: bool) -> list[Figure]:
    idle_s = QUICK_IDLE_WAIT_S if quick else IDLE_WAIT_S
    starts = _starts(1 if quick else 5, idle_s)
    figures = [
        Figure(NAME, "start_fresh_ms", "tideflow", starts["fresh"]),
        Figure(NAME, "start_existing_ms", "tideflow", starts["existing"]),
        Figure(NAME, "server_idle_rss_fresh_mib", "tideflow", starts["rss_fresh"]),
        Figure(NAME, "server_idle_rss_existing_mib", "tideflow", starts["rss_existing"]),
    ]
    serve_rss = _serve_idle_rss(1 if quick else 3, idle_s)
    figures.append(
        Figure(NAME, "serve_idle_rss_mib", "tideflow", serve_rss, note=SEED_EXAMPLE.name)
    )
    imports = import_seconds(sys.executable, SEED_IMPORTS, 3 if quick else 10)
    figures.append(Figure(NAME, "seed_import_ms", "tideflow", [s * 1000 for s in imports]))
    size, packages = installed_mb(sys.executable, "tideflow")
    figures.append(Figure(NAME, "installed_mb", "tideflow", [size], note=f"{packages} packages"))
    return figures
