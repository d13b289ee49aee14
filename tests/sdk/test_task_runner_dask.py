"""DaskTaskRunner against a real dask.distributed LocalCluster of worker processes: task runs execute
on the workers, futures and dependencies work across them, their states reach the server and their
logs the flow run's logs; a runner given an address leaves the cluster running."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tideflow import flow, get_run_logger, runtime, task
from tideflow.client import SyncClient
from tideflow.schemas import LogFilter
from tideflow.schemas.task_runs import TaskRunFilter
from tideflow.task_runners.dask import DaskTaskRunner

distributed = pytest.importorskip("distributed", reason="the dask extra is not installed")


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    ) as c:
        yield c


def _where(x: int) -> tuple[int, int]:
    get_run_logger().info("working on %d", x)
    return os.getpid(), x * x


def test_task_runs_execute_on_dask_workers(cluster: Any, client: SyncClient) -> None:
    where = task(_where, name="where")
    add = task(lambda a, b: a + b, name="add")
    ids: list[Any] = []

    @flow(task_runner=DaskTaskRunner(address=cluster.scheduler_address))
    def spread(n: int) -> tuple[list[tuple[int, int]], int]:
        ids.append(runtime.flow_run.id)
        placed = where.map(range(n))
        # futures as arguments: a dependency across workers
        total = add.submit(placed[0], placed[1])
        return placed.result(), total.result()

    placed, total = spread(6)
    assert [sq for _, sq in placed] == [i * i for i in range(6)]
    with distributed.Client(cluster.scheduler_address) as dask_client:
        cluster_pids = set(dask_client.run(os.getpid).values())
    assert {pid for pid, _ in placed} <= cluster_pids and os.getpid() not in cluster_pids
    assert total == placed[0] + placed[1]  # the values of both upstreams
    runs = {r.name: r for r in client.read_task_runs(TaskRunFilter(flow_run_id=[ids[0]]))}
    assert sorted(runs) == ["add-0", *(f"where-{i}" for i in range(6))]
    assert all(r.state_name == "Completed" for r in runs.values())
    assert runs["add-0"].task_inputs == {"a": [runs["where-0"].id], "b": [runs["where-1"].id]}
    deadline = time.monotonic() + 15
    messages: list[str] = []
    while time.monotonic() < deadline and len(messages) < 6:
        logs = client.read_logs(LogFilter(flow_run_id=[ids[0]]))
        messages = [log.message for log in logs if log.message.startswith("working on")]
        time.sleep(0.2)
    assert sorted(messages) == sorted(f"working on {i}" for i in range(6))
    # the cluster belongs to the test: the runner left it running
    assert cluster.status.name == "running"


def test_a_local_cluster_is_started_and_closed_per_flow_call() -> None:
    runner = DaskTaskRunner(cluster_kwargs={"n_workers": 1, "threads_per_worker": 2})

    @task
    def pid() -> int:
        return os.getpid()

    @flow(task_runner=runner)
    def f() -> int:
        return pid.submit().result()

    assert f() != os.getpid()
    assert runner.client is None  # the template runner never starts; each call gets a copy


def test_a_failing_task_on_dask_fails_its_run_with_the_error() -> None:
    @task(retries=1)
    def boom() -> None:
        raise KeyError(f"attempt {runtime.task_run.run_count}")

    @flow(task_runner=DaskTaskRunner(cluster_kwargs={"n_workers": 1}))
    def f() -> Any:
        fut = boom.submit()
        fut.wait()
        return fut

    fut = f()
    assert fut.state.name == "Failed" and fut.state.message == "KeyError: 'attempt 2'"
    with pytest.raises(KeyError, match="attempt 2"):
        fut.result()


def test_options_are_checked() -> None:
    with pytest.raises(ValueError, match="address or cluster_kwargs, not both"):
        DaskTaskRunner(address="tcp://x:1", cluster_kwargs={"n_workers": 1})
    with pytest.raises(ValueError, match="max_in_flight must be an integer"):
        DaskTaskRunner(max_in_flight=0)
