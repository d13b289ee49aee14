"""Prefect chain (benchmark 1): the seed served with Prefect's serve() and DeploymentEventTrigger;
upstream runs started with ``prefect deployment run`` one after the other; the same per-chain
figures as bench/chain.py. Two rows: default settings ("prefect") and the runner polling every
second ("prefect-poll1s", PREFECT_RUNNER_POLL_FREQUENCY=1). Prints JSON figures."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from _prefect import prefect_api, running_server, served

from bench._driver import RssSampler, chain_once
from bench._proc import emit

HERE = Path(__file__).resolve().parent
UPSTREAM = "upstream-flow/upstream_deployment"
DOWNSTREAM = "downstream-flow/downstream_deployment"
VARIANTS = {"prefect": {}, "prefect-poll1s": {"PREFECT_RUNNER_POLL_FREQUENCY": "1"}}


def chains(system: str, env: dict[str, str], count: int) -> None:
    samples: dict[str, list[float]] = {}
    with (
        tempfile.TemporaryDirectory(prefix="bench-prefect-chain-") as tmp,
        running_server(Path(tmp)) as server,
    ):
        with served(server, HERE / "workloads" / "seed.py", [UPSTREAM, DOWNSTREAM], **env) as proc:
            with RssSampler(proc.pid) as rss:
                api = prefect_api(server)
                downstream_id = api.deployment_id(DOWNSTREAM)
                seen = {r["id"] for r in api.runs_of(downstream_id)}
                for _ in range(count):
                    for key, value in chain_once(api, UPSTREAM, downstream_id, seen).items():
                        samples.setdefault(key, []).append(value)
    emit(
        {"bench": "chain", "figure": k, "system": system, "samples": v} for k, v in samples.items()
    )
    emit(
        [
            {
                "bench": "chain",
                "figure": "serve_peak_rss_mib",
                "system": system,
                "samples": [rss.peak],
            }
        ]
    )


def main(quick: bool) -> None:
    # A Prefect chain takes ~20 s with the default 10 s poll, so N is smaller than ours.
    count = 3 if quick else 20
    for system, env in VARIANTS.items():
        chains(system, env, count)


if __name__ == "__main__":
    main("--quick" in sys.argv[1:])
