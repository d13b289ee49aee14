"""Prefect fan-out (benchmark 8): one upstream deployment chained to N downstream deployments
(workloads/fanout.py: a DeploymentEventTrigger each on the upstream's Completed, one serve()); per
round, upstream Completed → all N downstream runs Running (the last Running timestamp) and, per
downstream run, Completed → created → Pending → Running, from the API's states, as bench/fanout.py.
Two rows, as the chain: default settings ("prefect", the runner polls every 10 s) and
"prefect-poll1s" (PREFECT_RUNNER_POLL_FREQUENCY=1). serve() runs without a process limit by
default. Prints JSON.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

from _prefect import prefect_api, running_server, served

from bench._driver import FANOUT_STAGES, fanout_round
from bench._proc import emit, http_json

HERE = Path(__file__).resolve().parent
UPSTREAM = "fanout-upstream/upstream"
VARIANTS = {"prefect": {}, "prefect-poll1s": {"PREFECT_RUNNER_POLL_FREQUENCY": "1"}}


def _dump_logs(home: Path) -> None:
    """The tails of the server's and serve()'s logs on stderr (the harness keeps it), since the
    temporary home goes away with the failed run."""
    for log in sorted(home.glob("*.log")):
        print(f"--- {log.name} (last 80 lines)", file=sys.stderr)
        print("\n".join(log.read_text(errors="replace").splitlines()[-80:]), file=sys.stderr)


def rounds(system: str, env: dict[str, str], count: int, rounds: int) -> None:
    downs = [f"fanout-downstream/down-{i:03d}" for i in range(count)]
    all_running: list[float] = []
    stages: dict[str, list[float]] = {name: [] for name in FANOUT_STAGES}
    with (
        tempfile.TemporaryDirectory(prefix="bench-prefect-fanout-") as tmp,
        running_server(Path(tmp)) as server,
        served(
            server,
            HERE / "workloads" / "fanout.py",
            [UPSTREAM, *downs],
            BENCH_FANOUT_N=str(count),
            **env,
        ),
    ):
        api = prefect_api(server)
        down_ids = [api.deployment_id(name) for name in downs]

        def downstream_runs() -> list[dict[str, Any]]:
            body = {"deployments": {"id": {"any_": down_ids}}, "limit": 200}
            return list(http_json("POST", f"{server.api_url}/flow_runs/filter", body))

        seen = {r["id"] for r in downstream_runs()}
        try:
            for _ in range(rounds):
                latencies = fanout_round(api, UPSTREAM, downstream_runs, count, seen)
                all_running.append(max(latencies["completed_to_each_running_ms"]))
                for name, values in latencies.items():
                    stages[name].extend(values)
        except Exception:
            _dump_logs(server.home)
            raise
    note = f"{count} downstream deployments, {rounds} rounds"
    emit(
        {"bench": "fanout", "figure": figure, "system": system, "samples": samples, "note": note}
        for figure, samples in [("completed_to_all_running_ms", all_running), *stages.items()]
    )


def main(quick: bool) -> None:
    count, n_rounds = (20, 3) if quick else (100, 5)
    for system, env in VARIANTS.items():
        rounds(system, env, count, n_rounds)


if __name__ == "__main__":
    main("--quick" in sys.argv[1:])
