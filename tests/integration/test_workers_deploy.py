"""`flow.from_source(...).deploy(...)`, `flow.deploy(...)`, `run_deployment` and `tideflow deployment
run --job-variable` end to end: a real server, a real worker process, code from a local folder or a
local bare git repository (pulled at a given commit)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from serve_helpers import assert_one_line_error, cli_env, run_cli
from worker_helpers import FAST, FLOWS, Worker, run_lines

from tideflow import flow
from tideflow.client import SyncClient
from tideflow.client import _work_pools as calls
from tideflow.deployments import GitRepository, arun_deployment, run_deployment
from tideflow.schemas import StateType
from tideflow.schemas.work_pools import WorkPoolCreate


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from tideflow.testing import ServerProcess

    with ServerProcess(home=tmp_path_factory.mktemp("server"), env=FAST) as proc:
        with SyncClient(proc.api_url) as client:
            client.send(calls.create_work_pool(WorkPoolCreate(name="deploy-pool")))
        yield proc


@pytest.fixture
def client(server: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[SyncClient]:
    monkeypatch.setenv("TIDEFLOW_API_URL", server.api_url)
    monkeypatch.setenv("TIDEFLOW_HOME", str(tmp_path / "home"))
    with SyncClient(server.api_url) as c:
        yield c


@pytest.fixture
def worker(server: Any, tmp_path: Path) -> Iterator[Worker]:
    w = Worker(server.api_url, "deploy-pool", tmp_path / "runs.log")
    yield w
    w.stop()


def _project(tmp_path: Path) -> Path:
    folder = tmp_path / "project" / "flows"
    folder.mkdir(parents=True)
    (folder / "etl.py").write_text(FLOWS)
    return folder.parent


def test_from_source_folder_deploy_runs_on_a_worker_with_job_variables(
    client: SyncClient, worker: Worker, tmp_path: Path
) -> None:
    project = _project(tmp_path)
    record = flow.from_source(str(project), entrypoint="flows/etl.py:record")
    assert record.name == "record"
    deployment_id = record.deploy(
        "nightly",
        work_pool_name="deploy-pool",
        cron="0 2 * * *",
        tags=["etl"],
        job_variables={"env": {"MODE": "full"}},
        print_next_steps=False,
    )
    d = client.read_deployment(deployment_id)
    assert (d.work_pool_name, d.work_queue_name, d.entrypoint) == (
        "deploy-pool",
        "default",
        "flows/etl.py:record",
    )
    assert d.pull_steps == [{"set_working_directory": {"directory": str(project)}}]
    assert d.tags == ["etl"] and d.schedules[0].schedule.type == "cron"
    run = run_deployment("record/nightly", job_variables={"env": {"MODE": "given", "EXTRA": "x"}})
    assert run.state_type is StateType.COMPLETED, run.state
    run2 = asyncio.run(arun_deployment(deployment_id, timeout=60))
    assert run2.state_type is StateType.COMPLETED
    seen = {line[1]: line[4:] for line in run_lines(worker.out.with_name("runs.log"))}
    assert "mode=given" in seen[str(run.id)] and "extra=x" in seen[str(run.id)]
    assert f"cwd={project}" in seen[str(run.id)]
    assert "mode=full" in seen[str(run2.id)]


def test_fsspec_file_url_source_is_copied_and_run_by_the_worker(
    client: SyncClient, worker: Worker, tmp_path: Path
) -> None:
    project = _project(tmp_path)
    url = f"file://{project}"
    record = flow.from_source(url, entrypoint="flows/etl.py:record")
    deployment_id = record.deploy("from-storage", work_pool_name="deploy-pool",
                                  print_next_steps=False)  # fmt: skip
    d = client.read_deployment(deployment_id)
    assert d.pull_steps == [{"pull_from_remote_storage": {"url": url}}]
    run = run_deployment("record/from-storage", timeout=60)
    assert run.state_type is StateType.COMPLETED, run.state
    seen = {line[1]: dict(kv.split("=", 1) for kv in line[4:]) for line in run_lines(
        worker.out.with_name("runs.log"))}  # fmt: skip
    # the run started in the worker's copy of the folder, not in the folder itself
    cwd = Path(seen[str(run.id)]["cwd"])
    assert cwd.parent.name == "storage-cache" and (cwd / "flows" / "etl.py").read_text() == FLOWS


def test_deploy_and_run_deployment_name_bad_input(client: SyncClient, tmp_path: Path) -> None:
    project = _project(tmp_path)
    record = flow.from_source(project, entrypoint="flows/etl.py:record")
    with pytest.raises(ValueError, match="unknown job variable 'evn'"):
        record.deploy("bad", work_pool_name="deploy-pool", job_variables={"evn": {}})
    with pytest.raises(ValueError, match="work pool 'nowhere' not found"):
        record.deploy("bad", work_pool_name="nowhere")
    with pytest.raises(ValueError, match="must be a path inside the source"):
        flow.from_source(project, entrypoint="../x.py:record")
    with pytest.raises(ValueError, match="neither a folder nor a git repository"):
        flow.from_source(tmp_path / "missing", entrypoint="x.py:f")
    record.deploy("later", work_pool_name="deploy-pool", print_next_steps=False)
    with pytest.raises(ValueError, match="job variable 'stream_output': expected boolean"):
        run_deployment("record/later", job_variables={"stream_output": "yes"})
    # timeout=0: created and returned at once (no worker here), still Scheduled
    run = run_deployment("record/later", timeout=0, flow_run_name="right-now")
    assert run.state_type is StateType.SCHEDULED and run.name == "right-now"


def test_flow_deploy_from_a_script_uses_its_folder(server: Any, tmp_path: Path) -> None:
    script = tmp_path / "pipeline.py"
    script.write_text(
        FLOWS
        + textwrap.dedent(
            """
            if __name__ == "__main__":
                record.deploy("from-script", work_pool_name="deploy-pool", interval=3600,
                              parameters={})
            """
        )
    )
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60,
        env=cli_env(server.api_url, RUN_LOG=str(tmp_path / "runs.log")), cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "tideflow worker start --pool 'deploy-pool'" in done.stdout
    with SyncClient(server.api_url) as client:
        d = client.read_deployment_by_name("record/from-script")
    assert d.entrypoint == "pipeline.py:record"
    assert d.pull_steps == [{"set_working_directory": {"directory": str(tmp_path)}}]


def _git(*args: str, cwd: Path) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def test_git_source_is_pulled_at_the_given_commit(
    client: SyncClient, worker: Worker, tmp_path: Path
) -> None:
    work = tmp_path / "work"
    work.mkdir()
    _git("init", "-q", "-b", "main", cwd=work)
    (work / "etl.py").write_text(FLOWS.replace('mode=os.environ.get("MODE", "-")', 'mode="v1"'))
    _git("add", ".", cwd=work)
    _git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "v1", cwd=work)
    first = _git("rev-parse", "HEAD", cwd=work)
    (work / "etl.py").write_text(FLOWS.replace('mode=os.environ.get("MODE", "-")', 'mode="v2"'))
    _git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "v2", cwd=work)
    bare = tmp_path / "repo.git"
    _git("clone", "-q", "--bare", str(work), str(bare), cwd=tmp_path)

    latest = flow.from_source(str(bare), entrypoint="etl.py:record")
    latest.deploy("git-latest", work_pool_name="deploy-pool", print_next_steps=False)
    pinned = flow.from_source(GitRepository(str(bare), commit=first), entrypoint="etl.py:record")
    pinned.deploy("git-pinned", work_pool_name="deploy-pool", print_next_steps=False)
    d = client.read_deployment_by_name("record/git-pinned")
    assert d.pull_steps == [{"git_clone": {"repository": str(bare), "commit": first}}]
    runs = [run_deployment(f"record/git-{k}", timeout=90) for k in ("latest", "pinned", "pinned")]
    assert [r.state_type for r in runs] == [StateType.COMPLETED] * 3
    seen = {line[1]: line[4:] for line in run_lines(worker.out.with_name("runs.log"))}
    assert "mode=v2" in seen[str(runs[0].id)]
    assert "mode=v1" in seen[str(runs[1].id)] and "mode=v1" in seen[str(runs[2].id)]


def test_cli_deployment_run_with_job_variables_and_name(
    server: Any, client: SyncClient, worker: Worker, tmp_path: Path
) -> None:
    project = _project(tmp_path)
    record = flow.from_source(project, entrypoint="flows/etl.py:record")
    record.deploy("cli", work_pool_name="deploy-pool", print_next_steps=False)
    done = run_cli(
        server.api_url, "deployment", "run", "record/cli",
        "--job-variable", 'env={"MODE": "cli"}', "--flow-run-name", "by-cli", "--watch",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "by-cli" in done.stdout
    runs = [line for line in run_lines(worker.out.with_name("runs.log")) if "mode=cli" in line]
    assert len(runs) == 1
    assert_one_line_error(
        run_cli(server.api_url, "deployment", "run", "record/cli", "--job-variable", "image=x"),
        "unknown job variable 'image'",
    )
    shown = run_cli(server.api_url, "deployment", "inspect", "record/cli").stdout
    assert "deploy-pool (queue default)" in shown
    assert (
        json.loads(run_cli(server.api_url, "deployment", "inspect", "record/cli", "--json").stdout)[
            "work_pool_name"
        ]
        == "deploy-pool"
    )
