"""Benchmark 8, fan-out: one upstream deployment chained to N downstream deployments (workloads/
fanout.py, one serve() process); per round, upstream Completed → all N downstream runs Running
(the last Running timestamp), and each downstream's own Completed → Running, from the API's states."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path
from typing import Any

from bench._api import tideflow_api
from bench._driver import UUID_RE, Api, parse_time, wait_for
from bench._proc import ROOT, http_json
from bench._seed import served_script
from bench._servers import running_server
from bench._stats import Figure
from bench.workloads.fanout import UPSTREAM

__all__ = ["run"]

NAME = "fanout"
SCRIPT = ROOT / "bench" / "workloads" / "fanout.py"
TERMINAL_BAD = {"Failed", "Crashed", "Cancelled"}
# per downstream run: upstream Completed → run created (the trigger fired), created → Pending (offered
# and claimed by the runner), Pending → Running (its process started and reported), and the total.
STAGES = {
    "created": "completed_to_created_ms",
    "pending": "created_to_pending_ms",
    "running": "pending_to_running_ms",
    "total": "completed_to_each_running_ms",
}


def _state_time(api: Api, run_id: str, name: str) -> float | None:
    states = api.states(run_id)
    if bad := {s["name"] for s in states} & TERMINAL_BAD:
        raise RuntimeError(f"run {run_id} ended {sorted(bad)}")
    return next((parse_time(s["timestamp"]) for s in states if s["name"] == name), None)


def _downstream_runs(api_url: str, ids: list[str], seen: set[str]) -> list[dict[str, Any]]:
    body = {"deployment_id": ids, "limit": 1000}
    return [
        r for r in http_json("POST", f"{api_url}/flow_runs/filter", body) if r["id"] not in seen
    ]


def _round(api: Api, api_url: str, down_ids: list[str], seen: set[str]) -> dict[str, list[float]]:
    """One upstream run; per downstream run, each stage's ms (``STAGES``)."""
    done = subprocess.run(
        [*api.cli, "deployment", "run", UPSTREAM], capture_output=True, text=True, env=api.env
    )
    match = UUID_RE.search(done.stdout)
    if done.returncode != 0 or match is None:
        raise RuntimeError(f"deployment run failed: {(done.stdout + done.stderr).strip()[-400:]}")
    completed = wait_for(
        "the upstream Completed", lambda: _state_time(api, match.group(0), "Completed")
    )

    def all_completed() -> list[dict[str, Any]] | None:
        runs = _downstream_runs(api_url, down_ids, seen)
        finished = [r for r in runs if r["state_name"] == "Completed"]
        if bad := [r for r in runs if r["state_name"] in TERMINAL_BAD]:
            raise RuntimeError(f"downstream run {bad[0]['id']} ended {bad[0]['state_name']}")
        return runs if len(finished) == len(down_ids) else None

    # Waiting for Completed (not just Running) keeps one round's runs out of the next round.
    runs = wait_for(f"{len(down_ids)} downstream runs Completed", all_completed, timeout=600)
    seen.update(r["id"] for r in runs)
    out: dict[str, list[float]] = {key: [] for key in STAGES}
    for r in runs:
        at = {s["name"]: parse_time(s["timestamp"]) for s in api.states(r["id"])}
        created = parse_time(r["created"])
        out["created"].append((created - completed) * 1000)
        out["pending"].append((at["Pending"] - created) * 1000)
        out["running"].append((at["Running"] - at["Pending"]) * 1000)
        out["total"].append((at["Running"] - completed) * 1000)
    return out


def run(quick: bool) -> list[Figure]:
    count, rounds = (20, 3) if quick else (100, 5)
    downs = [f"fanout-downstream/down-{i:03d}" for i in range(count)]
    all_running: list[float] = []
    stages: dict[str, list[float]] = {key: [] for key in STAGES}
    with (
        tempfile.TemporaryDirectory(prefix="bench-fanout-") as tmp,
        running_server(Path(tmp)) as server,
        served_script(server, SCRIPT, [UPSTREAM, *downs], BENCH_FANOUT_N=str(count)),
    ):
        api = tideflow_api(server)
        down_ids = [api.deployment_id(name) for name in downs]
        seen = {r["id"] for r in _downstream_runs(server.api_url, down_ids, set())}
        for _ in range(rounds):
            latencies = _round(api, server.api_url, down_ids, seen)
            all_running.append(max(latencies["total"]))
            for key, values in latencies.items():
                stages[key].extend(values)
    note = f"{count} downstream deployments, {rounds} rounds"
    figures = [Figure(NAME, "completed_to_all_running_ms", "tideflow", all_running, note=note)]
    figures += [Figure(NAME, STAGES[key], "tideflow", stages[key], note=note) for key in STAGES]
    return figures
