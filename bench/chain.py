"""Benchmark 1, chain: the seed example served; upstream runs started one after the other with
``tideflow deployment run``; per chain: upstream Completed → downstream run created, → Running,
→ Completed, CLI start → downstream Completed; and serve()'s peak RSS (and PSS, USS) over the whole
benchmark."""

from __future__ import annotations

import tempfile
from pathlib import Path

from bench._api import tideflow_api
from bench._driver import chain_once
from bench._memory import TreeMemorySampler
from bench._seed import DOWNSTREAM, UPSTREAM, served_seed
from bench._servers import running_server
from bench._stats import Figure

__all__ = ["run"]

NAME = "chain"


def run(quick: bool) -> list[Figure]:
    count = 10 if quick else 50
    samples: dict[str, list[float]] = {}
    with (
        tempfile.TemporaryDirectory(prefix="bench-chain-") as tmp,
        running_server(Path(tmp)) as server,
    ):
        with served_seed(server) as serve_proc, TreeMemorySampler(serve_proc.pid) as memory:
            api = tideflow_api(server)
            downstream_id = api.deployment_id(DOWNSTREAM)
            seen = {r["id"] for r in api.runs_of(downstream_id)}
            for _ in range(count):
                for key, value in chain_once(api, UPSTREAM, downstream_id, seen).items():
                    samples.setdefault(key, []).append(value)
    figures = [Figure(NAME, key, "tideflow", values) for key, values in samples.items()]
    # RSS is issue 6's measure; PSS and USS show what the runs' forked processes really add.
    for key in ("rss", "pss", "uss"):
        figures.append(Figure(NAME, f"serve_peak_{key}_mib", "tideflow", [memory.peak[key]]))
    return figures
