"""Benchmark memory: the server's RSS idle, at its peak while a burst of events arrives, right after
the burst is stored, and after a quiet period (does memory come back?). SQLite, default settings.

The burst is N events from one ``emit_event`` process (bench._ingest_emitter, as the ingest
benchmark); ``--quick`` sends 10,000 and waits 60 s, the full run 100,000 and 10 minutes (issue 20's
targets: idle ≤ 70, after 100,000 events ≤ 150, 10 minutes later ≤ 100 MiB).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from bench._memory import TreeMemorySampler, tree_memory_mib
from bench._servers import running_server
from bench._stats import Figure
from bench.ingest import _emit

__all__ = ["run"]

NAME = "memory"


def run(quick: bool) -> list[Figure]:
    events, quiet_s = (10_000, 60.0) if quick else (100_000, 600.0)
    with (
        tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp,
        running_server(Path(tmp)) as server,
    ):
        time.sleep(3.0)  # services started, first checkpoints written
        idle = tree_memory_mib(server.proc.pid)["rss"]
        with TreeMemorySampler(server.proc.pid) as sampler:
            result = _emit(server, events)
        after = tree_memory_mib(server.proc.pid)["rss"]
        time.sleep(quiet_s)
        later = tree_memory_mib(server.proc.pid)["rss"]
    burst = f"{events:,} events ({result['events_per_s']:,.0f} events/s)"
    return [
        Figure(NAME, "server_idle_rss_mib", "tideflow", [idle]),
        Figure(NAME, "server_burst_peak_rss_mib", "tideflow", [sampler.peak["rss"]], note=burst),
        Figure(NAME, "server_after_burst_rss_mib", "tideflow", [after], note=burst),
        Figure(
            NAME,
            "server_quiet_after_burst_rss_mib",
            "tideflow",
            [later],
            note=f"{quiet_s:.0f} s after the burst was stored",
        ),
    ]
