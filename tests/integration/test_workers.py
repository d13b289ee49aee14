"""`tideflow worker start` as real processes against a real server: runs of a pool's deployments
pushed to workers, job variables reaching the run's process, two workers racing for the same runs
(each runs exactly once), a SIGKILLed worker's runs Crashed, abnormal exits, cancellation, paused
pools and pool concurrency limits, and the workers' status."""

from __future__ import annotations

import os
import signal
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from serve_helpers import assert_one_line_error, run_cli, wait_final, wait_for
from worker_helpers import FAST, FLOWS, Worker, run_lines

from tideflow.client import SyncClient
from tideflow.client import _work_pools as calls
from tideflow.schemas import FlowRun, StateType
from tideflow.schemas.deployments import Deployment, DeploymentCreate, DeploymentFlowRunCreate
from tideflow.schemas.states import Cancelling
from tideflow.schemas.work_pools import (
    WorkPoolCreate,
    WorkPoolUpdate,
    WorkQueueCreate,
    WorkQueueUpdate,
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from tideflow.testing import ServerProcess

    with ServerProcess(
        home=tmp_path_factory.mktemp("server"), env=FAST, startup_timeout=90
    ) as proc:
        yield proc


@pytest.fixture
def client(server: Any) -> Iterator[SyncClient]:
    with SyncClient(server.api_url) as c:
        yield c


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "flows.py").write_text(FLOWS)
    return folder


def _pool(client: SyncClient, **over: Any) -> str:
    name = f"pool-{uuid.uuid4().hex[:6]}"
    client.send(calls.create_work_pool(WorkPoolCreate(name=name, **over)))
    return name


def _deployment(client: SyncClient, pool: str, project: Path, flow: str, **over: Any) -> Deployment:
    return client.create_deployment(
        DeploymentCreate(
            flow_name=flow,
            name=f"d-{uuid.uuid4().hex[:6]}",
            entrypoint=f"flows.py:{flow}",
            work_pool_name=pool,
            pull_steps=[{"set_working_directory": {"directory": str(project)}}],
            **over,
        )
    )


def _run(client: SyncClient, deployment: Deployment, **over: Any) -> FlowRun:
    return client.create_flow_run_from_deployment(deployment.id, DeploymentFlowRunCreate(**over))


def test_job_variables_reach_the_runs_environment(
    server: Any, client: SyncClient, project: Path, tmp_path: Path
) -> None:
    pool = _pool(client)
    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    d = _deployment(client, pool, project, "record", job_variables={"env": {"MODE": "full"}})
    run_log = tmp_path / "runs.log"
    worker = Worker(server.api_url, pool, run_log)
    try:
        first = _run(client, d)
        assert wait_final(client, first.id).state_type is StateType.COMPLETED
        # the run's job variables win over the deployment's, key by key (env as a whole)
        second = _run(
            client,
            d,
            job_variables={
                "env": {"MODE": "quick", "EXTRA": "1"},
                "working_dir": str(workdir),
                "stream_output": False,
            },
        )
        assert wait_final(client, second.id).state_type is StateType.COMPLETED
    finally:
        worker.stop()
    by_run = {line[1]: dict(kv.split("=", 1) for kv in line[4:]) for line in run_lines(run_log)}
    assert by_run[str(first.id)]["mode"] == "full" and by_run[str(first.id)]["extra"] == "-"
    assert by_run[str(first.id)]["cwd"] == str(project)
    assert by_run[str(second.id)] == {
        "mode": "quick",
        "extra": "1",
        "cwd": str(workdir),
        "worker": "-",
    }
    # stream_output: the first run's engine logs reach the worker's output, the second's do not
    assert f"Flow run '{first.name}'" in worker.output()
    assert f"Flow run '{second.name}'" not in worker.output()


def test_command_job_variable_wraps_the_run(
    server: Any, client: SyncClient, project: Path, tmp_path: Path
) -> None:
    wrapper = tmp_path / "wrap.sh"
    marker = tmp_path / "wrapped"
    wrapper.write_text(
        f'#!/bin/sh\necho "$@" > {marker}\nexec {sys.executable} -m tideflow.deployments._child "$@"\n'
    )
    wrapper.chmod(0o755)
    pool = _pool(client)
    d = _deployment(client, pool, project, "record", job_variables={"command": str(wrapper)})
    worker = Worker(server.api_url, pool, tmp_path / "runs.log")
    try:
        run = _run(client, d)
        assert wait_final(client, run.id).state_type is StateType.COMPLETED
    finally:
        worker.stop()
    args = marker.read_text().split()
    assert args[0] == "--lifeline" and args[2].endswith("flows.py:record")
    assert args[3] == str(run.id)


def test_two_workers_race_for_200_runs_and_each_runs_once(
    server: Any, client: SyncClient, project: Path, tmp_path: Path
) -> None:
    pool = _pool(client)
    d = _deployment(client, pool, project, "record")
    run_log = tmp_path / "runs.log"
    workers = [
        Worker(server.api_url, pool, run_log, "--limit", "6", WORKER_TAG=tag) for tag in "ab"
    ]
    try:
        runs = [_run(client, d) for _ in range(200)]
        for run in runs:
            final = wait_final(client, run.id, timeout=240)
            assert final.state_type is StateType.COMPLETED, (
                final.state,
                workers[0].output()[-2000:],
            )
    finally:
        for worker in workers:
            worker.stop()
    starts = run_lines(run_log)
    ids = [line[1] for line in starts]
    assert sorted(ids) == sorted(str(r.id) for r in runs)  # every run, each exactly once
    tags = {dict(kv.split("=", 1) for kv in line[4:])["worker"] for line in starts}
    assert tags == {"a", "b"}  # both workers took runs


def test_a_sigkilled_workers_runs_crash_and_its_processes_stop(
    server: Any, client: SyncClient, project: Path, tmp_path: Path
) -> None:
    pool = _pool(client)
    d = _deployment(client, pool, project, "sleeper")
    run_log = tmp_path / "runs.log"
    worker = Worker(server.api_url, pool, run_log)
    runs = [_run(client, d, parameters={"seconds": 60}) for _ in range(2)]
    wait_for(lambda: len(run_lines(run_log)) == 2, timeout=30)
    pids = [int(line[3]) for line in run_lines(run_log)]
    worker.proc.send_signal(signal.SIGKILL)
    worker.proc.wait()
    for run in runs:
        final = wait_final(client, run.id, timeout=30)
        assert final.state_type is StateType.CRASHED
        assert final.state is not None and "disconnected" in (final.state.message or "")
    # the lifeline ended the runs' processes with their worker
    wait_for(lambda: not any(_alive(pid) for pid in pids), timeout=10)
    workers = client.send(calls.read_workers(pool))
    assert [w.status.value for w in workers] == ["OFFLINE"]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_abnormal_exit_is_crashed_and_cancel_stops_the_run(
    server: Any, client: SyncClient, project: Path, tmp_path: Path
) -> None:
    pool = _pool(client)
    dies = _deployment(client, pool, project, "dies")
    sleeper = _deployment(client, pool, project, "sleeper")
    run_log = tmp_path / "runs.log"
    worker = Worker(server.api_url, pool, run_log)
    try:
        crashed = wait_final(client, _run(client, dies).id)
        assert crashed.state_type is StateType.CRASHED
        assert crashed.state is not None and "exited with code 3" in (crashed.state.message or "")
        run = _run(client, sleeper, parameters={"seconds": 60})
        wait_for(lambda: any(line[1] == str(run.id) for line in run_lines(run_log)), timeout=30)
        client.set_flow_run_state(run.id, Cancelling("stop it"))
        final = wait_final(client, run.id, timeout=15)
        assert final.state_type is StateType.CANCELLED
        pid = next(int(line[3]) for line in run_lines(run_log) if line[1] == str(run.id))
        wait_for(lambda: not _alive(pid), timeout=10)
        assert not run_lines(run_log, "end")
        assert client.send(calls.read_workers(pool))[0].status.value == "ONLINE"
    finally:
        worker.stop()
    assert client.send(calls.read_workers(pool))[0].status.value == "OFFLINE"  # said goodbye


def test_paused_pool_and_pool_concurrency_limit(
    server: Any, client: SyncClient, project: Path, tmp_path: Path
) -> None:
    pool = _pool(client, concurrency_limit=1, is_paused=True)
    d = _deployment(client, pool, project, "sleeper")
    run_log = tmp_path / "runs.log"
    worker = Worker(server.api_url, pool, run_log, "--limit", "4")
    try:
        runs = [_run(client, d, parameters={"seconds": 0.5}) for _ in range(3)]
        time.sleep(2)
        assert not run_lines(run_log)  # paused: nothing offered, nothing started
        assert {client.read_flow_run(r.id).state_type for r in runs} == {StateType.SCHEDULED}
        client.send(calls.update_work_pool(pool, WorkPoolUpdate(is_paused=False)))
        for run in runs:
            assert wait_final(client, run.id, timeout=60).state_type is StateType.COMPLETED
    finally:
        worker.stop()
    starts = sorted(float(line[2]) for line in run_lines(run_log))
    ends = sorted(float(line[2]) for line in run_lines(run_log, "end"))
    assert len(starts) == 3 and len(ends) == 3
    for i in range(1, 3):  # one at a time: each starts after the one before ended
        assert starts[i] >= ends[i - 1]


def test_queue_priority_orders_waiting_runs(
    server: Any, client: SyncClient, project: Path, tmp_path: Path
) -> None:
    pool = _pool(client)
    client.send(calls.create_work_queue(pool, WorkQueueCreate(name="urgent", priority=1)))
    client.send(calls.update_work_queue(pool, "default", WorkQueueUpdate(priority=5)))
    low = _deployment(client, pool, project, "sleeper")
    high = _deployment(client, pool, project, "sleeper", work_queue_name="urgent")
    run_log = tmp_path / "runs.log"
    blocker = _run(client, low, parameters={"seconds": 2})
    worker = Worker(server.api_url, pool, run_log, "--limit", "1")
    try:
        wait_for(lambda: len(run_lines(run_log)) == 1, timeout=30)
        waiting_low = [_run(client, low, parameters={"seconds": 0}) for _ in range(2)]
        time.sleep(0.3)
        waiting_high = _run(client, high, parameters={"seconds": 0})
        for run in [blocker, *waiting_low, waiting_high]:
            assert wait_final(client, run.id, timeout=60).state_type is StateType.COMPLETED
    finally:
        worker.stop()
    order = [line[1] for line in run_lines(run_log)]
    assert order[:2] == [str(blocker.id), str(waiting_high.id)]


def test_worker_errors_are_one_line(server: Any, client: SyncClient) -> None:
    assert_one_line_error(
        run_cli(server.api_url, "worker", "start", "--pool", "ghost-pool"),
        "work pool 'ghost-pool' not found",
    )
    docker = _pool(client, type="docker")
    assert_one_line_error(
        run_cli(server.api_url, "worker", "start", "--pool", docker),
        "is of type 'docker'",
        "start one with --type docker",
    )
    assert_one_line_error(
        run_cli(server.api_url, "worker", "start", "--pool", docker, "--type", "podman"),
        "unknown worker type 'podman'",
    )


def test_worker_type_creates_a_missing_pool(
    server: Any, client: SyncClient, tmp_path: Path
) -> None:
    name = f"auto-{uuid.uuid4().hex[:6]}"
    worker = Worker(server.api_url, name, tmp_path / "runs.log", "--type", "process")
    try:
        pool = client.send(calls.read_work_pool(name))
        assert pool.type.value == "process"
        wait_for(lambda: len(client.send(calls.read_workers(name))) == 1)
        shown = run_cli(server.api_url, "work-pool", "inspect", name).stdout
        assert "ONLINE" in shown
    finally:
        worker.stop()
