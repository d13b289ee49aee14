"""Prefect tasks (benchmark 9): per-task overhead of sequential trivial tasks, a .map() on threads
(wall and the server's peak RSS), and tasks on a 2-worker Dask LocalCluster when prefect-dask is
installed. Prints JSON figures."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from _prefect import environment, running_server

from bench._memory import TreeMemorySampler
from bench._proc import emit

HERE = Path(__file__).resolve().parent


def _workload(tmp: Path, api_url: str, kind: str, n: int) -> dict[str, list[float]]:
    done = subprocess.run(
        [sys.executable, str(HERE / "workloads" / "tasks.py"), kind, str(n)],
        capture_output=True, text=True, check=True, cwd=tmp,
        env=environment(tmp, api_url, PREFECT_LOGGING_LEVEL="WARNING"),
    )  # fmt: skip
    result: dict[str, list[float]] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _record(figure: str, samples: list[float], note: str | None = None) -> dict[str, object]:
    out: dict[str, object] = {
        "bench": "tasks", "figure": figure, "system": "prefect", "samples": samples,
    }  # fmt: skip
    if note:
        out["note"] = note
    return out


def main(quick: bool) -> None:
    sequential_n, map_n, dask_n = (300, 2_000, 200) if quick else (1_000, 10_000, 1_000)
    with (
        tempfile.TemporaryDirectory(prefix="bench-prefect-tasks-") as tmp,
        running_server(Path(tmp)) as server,
    ):
        seq = _workload(Path(tmp), server.api_url, "sequential", sequential_n)
        records = [
            _record("per_task_ms", [x * 1000 for x in seq["per_task_s"]],
                    f"{sequential_n} sequential trivial tasks in one flow, 3 flow calls"),
            _record("sequential_flow_call_s", seq["call_s"]),
        ]  # fmt: skip
        try:  # a failed map must not lose the sequential figures above
            with TreeMemorySampler(server.proc.pid) as memory:
                mapped = _workload(Path(tmp), server.api_url, "map", map_n)
            records.append(_record(f"map_{map_n}_threads_s", mapped["wall_s"]))
            records.append(_record(f"map_{map_n}_server_peak_rss_mib", [memory.peak["rss"]]))
        except subprocess.CalledProcessError as exc:
            print(f"prefect map workload failed: {exc.stderr[-1500:]}", file=sys.stderr)
    # A fresh server for Dask: after the map, Prefect's server answered 503 for a while.
    with (
        tempfile.TemporaryDirectory(prefix="bench-prefect-tasks-dask-") as tmp,
        running_server(Path(tmp)) as server,
    ):
        try:
            on_dask = _workload(Path(tmp), server.api_url, "dask", dask_n)
            records.append(_record(f"dask_{dask_n}_tasks_s", on_dask["wall_s"]))
        except subprocess.CalledProcessError as exc:
            print(f"prefect dask workload failed: {exc.stderr[-500:]}", file=sys.stderr)
    emit(records)


if __name__ == "__main__":
    main("--quick" in sys.argv[1:])
