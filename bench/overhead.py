"""Benchmark 4, overhead: a trivial ``@flow`` called repeatedly in one process against a running
server; the figure is the wall time per call after the first (which pays for imports and connections).

The calls run in a child process (``python -m bench.overhead COUNT``) so that its settings point at
the benchmark server and nothing of the harness is in the way.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench._proc import ROOT
from bench._servers import client_environment, running_server
from bench._stats import Figure
from tideflow import flow

__all__ = ["call_trivial_flow", "run"]

NAME = "overhead"


def call_trivial_flow(count: int) -> list[float]:
    """Seconds each of ``count`` calls of a trivial flow took, in this process."""

    @flow
    def trivial() -> int:
        return 1

    out = []
    for _ in range(count):
        t0 = time.perf_counter()
        trivial()
        out.append(time.perf_counter() - t0)
    return out


def run(quick: bool) -> list[Figure]:
    count = 50 if quick else 200
    with (
        tempfile.TemporaryDirectory(prefix="bench-overhead-") as tmp,
        running_server(Path(tmp)) as server,
    ):
        done = subprocess.run(
            [sys.executable, "-m", "bench.overhead", str(count + 1)],
            capture_output=True, text=True, check=True, cwd=str(ROOT),
            env=client_environment(Path(tmp), server.api_url),
        )  # fmt: skip
    seconds = json.loads(done.stdout.strip().splitlines()[-1])
    return [Figure(NAME, "flow_call_ms", "tideflow", [s * 1000 for s in seconds[1:]])]


if __name__ == "__main__":
    print(json.dumps(call_trivial_flow(int(sys.argv[1]))))
