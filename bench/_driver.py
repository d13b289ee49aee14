"""Drives deployment runs through a system's CLI and reads their timings back from its API.

The same loop measures tideflow and Prefect: an ``Api`` says how to list a run's states, list a
deployment's runs and which CLI to call; every latency comes from the states' timestamps as the
server recorded them (the CLI's start is the wall clock of this process, on the same machine).
Standard library only: the Prefect adapters import it from the peer virtualenv.
"""

from __future__ import annotations

import re
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bench._proc import http_json, tree_rss_mib

__all__ = [
    "FANOUT_STAGES",
    "Api",
    "RssSampler",
    "chain_once",
    "fanout_round",
    "parse_time",
    "push_latency",
    "start_once",
    "wait_for",
]

UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
POLL_S = 0.05
FANOUT_STAGES = (
    "completed_to_created_ms",
    "created_to_pending_ms",
    "pending_to_running_ms",
    "completed_to_each_running_ms",
)
TIMEOUT_S = 180.0


@dataclass
class Api:
    """How to reach one system: its CLI command prefix and two reads of its API."""

    cli: list[str]
    env: dict[str, str]
    states: Callable[[str], list[dict[str, Any]]]  # run id -> states, any order
    runs_of: Callable[[str], list[dict[str, Any]]]  # deployment id -> its runs
    deployment_id: Callable[[str], str]  # "flow/name" -> id


def parse_time(value: str) -> float:
    """An API timestamp as POSIX seconds."""
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def wait_for(what: str, probe: Callable[[], Any], timeout: float = TIMEOUT_S) -> Any:
    """Call ``probe`` every POLL_S until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(POLL_S)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


def _state_time(api: Api, run_id: str, name: str) -> float | None:
    for state in api.states(run_id):
        if state["name"] == name:
            return parse_time(state["timestamp"])
    return None


def _terminal(api: Api, run_id: str, name: str) -> float:
    def probe() -> float | None:
        states = api.states(run_id)
        names = {s["name"] for s in states}
        if names & {"Failed", "Crashed", "Cancelled"}:
            raise RuntimeError(f"run {run_id} ended {sorted(names)}")
        return _state_time(api, run_id, name)

    return float(wait_for(f"run {run_id} {name}", probe))


def push_latency(api_url: str, api: Api, deployment_id: str) -> tuple[float, float]:
    """(created → Pending, created → Running) in ms of one run of ``deployment_id`` created through
    ``POST /deployments/{id}/create_flow_run``, waited to Completed (the workers benchmark)."""
    run = http_json("POST", f"{api_url}/deployments/{deployment_id}/create_flow_run", {})
    created = parse_time(run["created"])
    running = _terminal(api, run["id"], "Running")
    pending = _terminal(api, run["id"], "Pending")
    _terminal(api, run["id"], "Completed")
    return (pending - created) * 1000, (running - created) * 1000


def _cli_run(api: Api, deployment: str) -> tuple[str, float, float]:
    """Run ``deployment run``; (run id, wall start, wall seconds)."""
    t0 = time.time()
    m0 = time.monotonic()
    done = subprocess.run(
        [*api.cli, "deployment", "run", deployment], capture_output=True, text=True, env=api.env
    )
    wall = time.monotonic() - m0
    if done.returncode != 0:
        raise RuntimeError(f"deployment run failed: {(done.stdout + done.stderr).strip()[-400:]}")
    match = UUID_RE.search(done.stdout)
    if match is None:
        raise RuntimeError(f"no run id in the CLI output: {done.stdout.strip()[-400:]}")
    return match.group(0), t0, wall


def start_once(api: Api, deployment: str) -> dict[str, float]:
    """One CLI-started run: CLI start → Running, the CLI's wall time; waits for Completed."""
    run_id, t0, wall = _cli_run(api, deployment)
    running = _terminal(api, run_id, "Running")
    _terminal(api, run_id, "Completed")
    return {"cli_to_running_ms": (running - t0) * 1000, "cli_wall_ms": wall * 1000}


def chain_once(api: Api, upstream: str, downstream_id: str, seen: set[str]) -> dict[str, float]:
    """One chain started from the CLI: upstream Completed → downstream created / Running / Completed."""
    run_id, t0, wall = _cli_run(api, upstream)
    completed = _terminal(api, run_id, "Completed")

    def new_run() -> dict[str, Any] | None:
        fresh = [r for r in api.runs_of(downstream_id) if r["id"] not in seen]
        return fresh[0] if fresh else None

    down = wait_for("the downstream run", new_run)
    seen.add(down["id"])
    running = _terminal(api, down["id"], "Running")
    down_completed = _terminal(api, down["id"], "Completed")
    return {
        "completed_to_created_ms": (parse_time(down["created"]) - completed) * 1000,
        "completed_to_running_ms": (running - completed) * 1000,
        "completed_to_completed_ms": (down_completed - completed) * 1000,
        "cli_to_downstream_completed_ms": (down_completed - t0) * 1000,
        "cli_wall_ms": wall * 1000,
    }


def fanout_round(
    api: Api,
    upstream: str,
    downstream_runs: Callable[[], list[dict[str, Any]]],
    count: int,
    seen: set[str],
    timeout: float = 600.0,
) -> dict[str, list[float]]:
    """One CLI-started upstream run; per each of the ``count`` downstream runs, in ms: upstream
    Completed → run created (the trigger fired), created → Pending (the runner took it), Pending →
    Running (its process started), and Completed → Running, keyed by figure name as bench/fanout.py.

    ``downstream_runs`` lists the downstream deployments' runs (``id``, ``created``,
    ``state_name``); runs in ``seen`` belong to earlier rounds. Waits until every new downstream
    run is Completed, so that one round's runs stay out of the next round."""
    run_id, _, _ = _cli_run(api, upstream)
    completed = _terminal(api, run_id, "Completed")

    def all_completed() -> list[dict[str, Any]] | None:
        runs = [r for r in downstream_runs() if r["id"] not in seen]
        if bad := [r for r in runs if r["state_name"] in {"Failed", "Crashed", "Cancelled"}]:
            raise RuntimeError(f"downstream run {bad[0]['id']} ended {bad[0]['state_name']}")
        if len(runs) > count:
            raise RuntimeError(f"{len(runs)} downstream runs for {count} downstream deployments")
        finished = [r for r in runs if r["state_name"] == "Completed"]
        return runs if len(finished) == count else None

    try:
        runs = wait_for(f"{count} downstream runs Completed", all_completed, timeout=timeout)
    except TimeoutError as exc:  # say where the round stuck: how many runs exist, in which states
        states = Counter(r["state_name"] for r in downstream_runs() if r["id"] not in seen)
        raise TimeoutError(f"{exc}; new downstream runs by state: {dict(states)}") from exc
    seen.update(r["id"] for r in runs)
    out: dict[str, list[float]] = {name: [] for name in FANOUT_STAGES}
    for r in runs:
        at = {s["name"]: parse_time(s["timestamp"]) for s in api.states(r["id"])}
        created = parse_time(r["created"])
        for name, value in zip(
            FANOUT_STAGES,
            (created - completed, at["Pending"] - created, at["Running"] - at["Pending"],
             at["Running"] - completed),
            strict=True,
        ):  # fmt: skip
            out[name].append(value * 1000)
    return out


class RssSampler:
    """Samples a process tree's RSS every ``every`` seconds in a thread; ``peak`` is the maximum."""

    def __init__(self, pid: int, every: float = 0.1) -> None:
        self.pid, self.every, self.peak = pid, every, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.peak = max(self.peak, tree_rss_mib(self.pid))
            except Exception:  # the tree changes under us (children come and go)
                pass
            self._stop.wait(self.every)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
