"""Prefect's side of the task workloads (same shapes as bench/workloads/tasks.py); prints one JSON
object with the measured seconds. ``dask`` needs prefect-dask in the peer venv."""

import json
import sys
import time

from prefect import flow, task


@task
def trivial(x: int) -> int:
    return x


@flow
def sequential(n: int) -> float:
    t0 = time.perf_counter()
    for i in range(n):
        trivial(i)
    return time.perf_counter() - t0


@flow
def mapped(n: int) -> int:
    return len(trivial.map(range(n)).result())


def main(kind: str, n: int) -> dict:
    if kind == "sequential":
        samples, calls = [], []
        for _ in range(3):
            t0 = time.perf_counter()
            inside = sequential(n)
            calls.append(time.perf_counter() - t0)
            samples.append(inside / n)
        return {"per_task_s": samples, "call_s": calls}
    if kind == "map":
        t0 = time.perf_counter()
        assert mapped(n) == n
        return {"wall_s": [time.perf_counter() - t0]}
    if kind == "dask":
        from distributed import LocalCluster
        from prefect_dask import DaskTaskRunner

        with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=":0") as cluster:
            on_dask = mapped.with_options(
                task_runner=DaskTaskRunner(address=cluster.scheduler_address)
            )
            on_dask(10)
            t0 = time.perf_counter()
            assert on_dask(n) == n
            return {"wall_s": [time.perf_counter() - t0]}
    raise SystemExit(f"unknown workload {kind!r}")


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], int(sys.argv[2]))))
