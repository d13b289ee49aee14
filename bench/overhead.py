"""Benchmark 4, overhead: a trivial ``@flow`` called repeatedly in one process against a running
server; the figure is the wall time per call after the first (which pays for imports and connections).

The calls run in a child process (``python -m bench.overhead COUNT``) so that its settings point at
the benchmark server and nothing of the harness is in the way. Besides the wall time per call, the
child reports its own CPU time per call (the client's share; the rest is waiting for the server)
and the HTTP requests each call sent.
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


def call_trivial_flow(count: int) -> dict[str, list[float]]:
    """Per call of a trivial flow, ``count`` times in this process: wall seconds, CPU seconds of
    this process, and HTTP requests sent."""
    import httpx

    requests = [0]
    send = httpx.HTTPTransport.handle_request

    def counting(self: httpx.HTTPTransport, request: httpx.Request) -> httpx.Response:
        requests[0] += 1
        return send(self, request)

    httpx.HTTPTransport.handle_request = counting  # type: ignore[method-assign]

    @flow
    def trivial() -> int:
        return 1

    out: dict[str, list[float]] = {"wall": [], "cpu": [], "requests": []}
    for _ in range(count):
        sent = requests[0]
        t0, c0 = time.perf_counter(), time.process_time()
        trivial()
        out["wall"].append(time.perf_counter() - t0)
        out["cpu"].append(time.process_time() - c0)
        out["requests"].append(requests[0] - sent)
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
    calls = json.loads(done.stdout.strip().splitlines()[-1])
    return [
        Figure(NAME, "flow_call_ms", "tideflow", [s * 1000 for s in calls["wall"][1:]]),
        Figure(NAME, "flow_call_cpu_ms", "tideflow", [s * 1000 for s in calls["cpu"][1:]]),
        Figure(NAME, "flow_call_requests", "tideflow", calls["requests"][1:]),
    ]


if __name__ == "__main__":
    print(json.dumps(call_trivial_flow(int(sys.argv[1]))))
