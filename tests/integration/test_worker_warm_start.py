"""The process worker's warm start with real processes: a run is handed to an interpreter that was
started (tideflow imported) before the run existed, with the run's own environment, directory and
code; `--cold` and a job `command` start fresh interpreters; a worker's spare never outlives it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from serve_helpers import wait_final, wait_for
from worker_helpers import FAST, Worker

from tideflow.client import SyncClient
from tideflow.client import _work_pools as calls
from tideflow.schemas import StateType
from tideflow.schemas.deployments import Deployment, DeploymentCreate, DeploymentFlowRunCreate
from tideflow.schemas.work_pools import WorkPoolCreate

FLOW = """
import os, sys, time
from tideflow import flow
from tideflow.runtime import flow_run

def started_at():
    # this process's start on the wall clock, from the kernel's tick counts (psutil's create_time
    # adds the boot time rounded to a second)
    with open("/proc/self/stat") as fh:
        ticks = int(fh.read().rsplit(")", 1)[1].split()[19])
    with open("/proc/uptime") as fh:
        uptime = float(fh.read().split()[0])
    return time.time() - (uptime - ticks / os.sysconf("SC_CLK_TCK"))

@flow
def born():
    with open(os.environ["RUN_LOG"], "a") as fh:
        fh.write(f"{flow_run.id} {started_at():.3f} {os.environ.get('MODE', '-')} "
                 f"{os.getcwd()} {sys.path[0]} {VERSION}\\n")

VERSION = "v1"
"""


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


def _setup(client: SyncClient, project: Path) -> Deployment:
    pool = f"warm-{uuid.uuid4().hex[:6]}"
    client.send(calls.create_work_pool(WorkPoolCreate(name=pool)))
    return client.create_deployment(
        DeploymentCreate(
            flow_name="born", name="d", entrypoint="flows.py:born", work_pool_name=pool,
            pull_steps=[{"set_working_directory": {"directory": str(project)}}],
            job_variables={"env": {"MODE": "warm"}},
        )
    )  # fmt: skip


def _lines(run_log: Path) -> dict[str, list[str]]:
    if not run_log.exists():
        return {}
    return {line.split()[0]: line.split()[1:] for line in run_log.read_text().splitlines()}


def test_runs_start_in_a_waiting_interpreter_with_their_own_env_dir_and_code(
    server: Any, client: SyncClient, tmp_path: Path
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "flows.py").write_text(FLOW)
    run_log = tmp_path / "runs.log"
    d = _setup(client, project)
    assert d.work_pool_name is not None
    worker = Worker(server.api_url, d.work_pool_name, run_log)
    try:
        spare = wait_for(lambda: _spares(worker.proc.pid), 60)
        first = client.create_flow_run_from_deployment(d.id, DeploymentFlowRunCreate())
        assert wait_final(client, first.id, 60).state_type is StateType.COMPLETED
        # the code changes between runs: the next (warm) run imports the new one
        (project / "flows.py").write_text(FLOW.replace('"v1"', '"v2"'))
        wait_for(lambda: _spares(worker.proc.pid), 60)  # the next spare is up
        second = client.create_flow_run_from_deployment(
            d.id, DeploymentFlowRunCreate(job_variables={"env": {"MODE": "second"}})
        )
        assert wait_final(client, second.id, 60).state_type is StateType.COMPLETED
        last = wait_for(lambda: _spares(worker.proc.pid), 60)
    finally:
        worker.stop()
    seen = _lines(run_log)
    born, mode, cwd, path0, version = seen[str(first.id)]
    assert float(born) < first.created.timestamp()  # the process was there before the run
    assert spare[0] not in _spares(worker.proc.pid)  # the first spare became the first run
    assert (mode, cwd, path0, version) == ("warm", str(project), str(project), "v1")
    born2, mode2, _, _, version2 = seen[str(second.id)]
    assert float(born2) < second.created.timestamp() and (mode2, version2) == ("second", "v2")
    # the worker stopped: its spare went with it
    wait_for(lambda: not any(psutil.pid_exists(p) and _is_warm(p) for p in last), 10)


def test_cold_flag_starts_fresh_interpreters(
    server: Any, client: SyncClient, tmp_path: Path
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "flows.py").write_text(FLOW)
    run_log = tmp_path / "runs.log"
    d = _setup(client, project)
    assert d.work_pool_name is not None
    worker = Worker(server.api_url, d.work_pool_name, run_log, "--cold")
    try:
        run = client.create_flow_run_from_deployment(d.id, DeploymentFlowRunCreate())
        assert wait_final(client, run.id, 60).state_type is StateType.COMPLETED
        assert not _spares(worker.proc.pid)
    finally:
        worker.stop()
    born = float(_lines(run_log)[str(run.id)][0])
    assert born > run.created.timestamp()


def _is_warm(pid: int) -> bool:
    try:
        proc = psutil.Process(pid)
        return proc.status() != psutil.STATUS_ZOMBIE and "tideflow.deployments._warm" in " ".join(
            proc.cmdline()
        )
    except psutil.Error:
        return False


def _spares(worker_pid: int) -> list[int]:
    """Pids of the worker's waiting interpreters (its children running ``_warm``)."""
    try:
        children = psutil.Process(worker_pid).children()
    except psutil.NoSuchProcess:
        return []
    out = []
    for child in children:
        try:
            if "tideflow.deployments._warm" in child.cmdline():
                out.append(child.pid)
        except psutil.Error:
            continue
    return out
