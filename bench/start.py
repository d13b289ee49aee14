"""Benchmark 2, start: ``tideflow deployment run`` → Running for a served deployment, run after run;
also the CLI command's own wall time and CPU time (the CPU figure is what a loaded machine inflates
least: on 2 shared cores the wall time of a ~300 ms command can be several times its CPU time)."""

from __future__ import annotations

import resource
import tempfile
from pathlib import Path

from bench._api import tideflow_api
from bench._driver import start_once
from bench._proc import ROOT
from bench._seed import served_script
from bench._servers import running_server
from bench._stats import Figure

__all__ = ["run"]

NAME = "start"
SCRIPT = ROOT / "bench" / "workloads" / "single.py"
DEPLOYMENT = "single-flow/single"


def run(quick: bool) -> list[Figure]:
    count = 10 if quick else 50
    samples: dict[str, list[float]] = {"cli_to_running_ms": [], "cli_wall_ms": [], "cli_cpu_ms": []}
    with (
        tempfile.TemporaryDirectory(prefix="bench-start-") as tmp,
        running_server(Path(tmp)) as server,
    ):
        with served_script(server, SCRIPT, [DEPLOYMENT]):
            api = tideflow_api(server)
            for _ in range(count):
                # The CLI is the only child reaped during start_once (the served script runs on),
                # so the children's rusage grows by exactly its CPU time.
                before = _children_cpu_s()
                for key, value in start_once(api, DEPLOYMENT).items():
                    samples[key].append(value)
                samples["cli_cpu_ms"].append((_children_cpu_s() - before) * 1000)
    return [Figure(NAME, key, "tideflow", values) for key, values in samples.items()]


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime
