"""Benchmark 10, chains under load: N upstream runs started at once (N = 1, 10, 50; the API's
create_flow_run from N threads), each chained to a downstream run that is told its upstream
(workloads/chains.py); per chain, upstream Completed → its own downstream Running, from the API's
states. One server and one serve() for all rounds; each round waits until every run is Completed."""

from __future__ import annotations

import os
import tempfile
import threading
from pathlib import Path
from typing import Any

from bench._api import tideflow_api
from bench._driver import parse_time, wait_for
from bench._proc import ROOT, http_json
from bench._seed import served_script
from bench._servers import running_server
from bench._stats import Figure
from bench.workloads.chains import DOWNSTREAM, UPSTREAM

__all__ = ["chain_round", "new_runs", "run"]

NAME = "chains_load"
SCRIPT = ROOT / "bench" / "workloads" / "chains.py"
STAGES = ("created", "pending", "running", "hop")


def new_runs(api_url: str, deployment_id: str, seen: set[str]) -> list[dict[str, Any]]:
    """The runs of a deployment not in ``seen`` (up to 1,000)."""
    body = {"deployment_id": [deployment_id], "limit": 1000}
    return [
        r for r in http_json("POST", f"{api_url}/flow_runs/filter", body) if r["id"] not in seen
    ]


def _start_at_once(api_url: str, deployment_id: str, count: int) -> list[str]:
    ids: list[str] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(count)

    def one() -> None:
        try:
            barrier.wait()
            run = http_json("POST", f"{api_url}/deployments/{deployment_id}/create_flow_run", {})
            ids.append(str(run["id"]))
        except BaseException as exc:  # re-raised below, in the caller's thread
            errors.append(exc)

    threads = [threading.Thread(target=one) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return ids


def chain_round(
    api_url: str, up_id: str, down_id: str, count: int, seen: set[str]
) -> dict[str, list[float]]:
    """``count`` chains at once; per chain, in ms: upstream Completed → its downstream created,
    created → Pending, Pending → Running, and the hop (Completed → Running)."""
    up_runs = _start_at_once(api_url, up_id, count)
    target = len(seen) + count
    completed = {"deployment_id": [down_id], "state_type": ["COMPLETED"]}
    # A count every 0.2 s: the poll must not be a load of its own on the server it measures.
    wait_for(
        f"{count} downstream runs Completed",
        lambda: http_json("POST", f"{api_url}/flow_runs/count", completed) >= target,
        timeout=120,
    )
    downs = new_runs(api_url, down_id, seen)
    if bad := [r for r in downs if r["state_name"] != "Completed"]:
        raise RuntimeError(f"downstream run {bad[0]['id']} ended {bad[0]['state_name']}")
    seen.update(r["id"] for r in downs)
    out: dict[str, list[float]] = {key: [] for key in STAGES}
    for down in downs:
        upstream = down["parameters"]["upstream"].removeprefix("tideflow.flow-run.")
        if upstream not in up_runs:
            raise RuntimeError(f"downstream run {down['id']} names an unknown upstream {upstream}")
        up_states = http_json("GET", f"{api_url}/flow_runs/{upstream}/states")
        at = {s["name"]: parse_time(s["timestamp"]) for s in up_states}
        done = at["Completed"]
        at = {
            s["name"]: parse_time(s["timestamp"])
            for s in http_json("GET", f"{api_url}/flow_runs/{down['id']}/states")
        }
        created = parse_time(down["created"])
        out["created"].append((created - done) * 1000)
        out["pending"].append((at["Pending"] - created) * 1000)
        out["running"].append((at["Running"] - at["Pending"]) * 1000)
        out["hop"].append((at["Running"] - done) * 1000)
    return out


def run(quick: bool) -> list[Figure]:
    loads = [int(n) for n in os.environ.get("BENCH_CHAINS", "1,10,50").split(",")]
    rounds = 3 if quick else 5
    samples: dict[tuple[int, str], list[float]] = {}
    with (
        tempfile.TemporaryDirectory(prefix="bench-chains-") as tmp,
        running_server(Path(tmp)) as server,
        served_script(server, SCRIPT, [UPSTREAM, DOWNSTREAM]),
    ):
        api = tideflow_api(server)
        up_id, down_id = api.deployment_id(UPSTREAM), api.deployment_id(DOWNSTREAM)
        seen = {r["id"] for r in new_runs(server.api_url, down_id, set())}
        for _ in range(rounds):
            for n in loads:
                for key, values in chain_round(server.api_url, up_id, down_id, n, seen).items():
                    samples.setdefault((n, key), []).extend(values)
    names = {"hop": "hop", "created": "completed_to_created", "pending": "created_to_pending",
             "running": "pending_to_running"}  # fmt: skip
    return [
        Figure(NAME, f"{names[key]}_{n}_chains_ms", "tideflow", values, note=f"{rounds} rounds")
        for (n, key), values in sorted(
            samples.items(), key=lambda kv: (kv[0][0], kv[0][1] != "hop")
        )
    ]
