"""`tideflow worker start --type docker` as a real process against a real server, driving the real
``docker`` package against a recording fake of the Docker Engine API (no daemon here; see
docker_fake.py): the container the job template describes, the run's environment (API URL
rewritten for the container, run id), the flow run completing in it, Crashed with the container's
exit code, cancel = stop, auto_remove, and the errors of a worker that cannot reach Docker."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from docker_fake import FakeDocker
from serve_helpers import assert_one_line_error, wait_final, wait_for
from worker_helpers import FAST, FLOWS, Worker, run_lines

from tideflow.client import SyncClient
from tideflow.client import _work_pools as calls
from tideflow.schemas import StateType
from tideflow.schemas.deployments import Deployment, DeploymentCreate, DeploymentFlowRunCreate
from tideflow.schemas.states import Cancelling
from tideflow.schemas.work_pools import WorkPoolCreate

pytest.importorskip("docker")


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
def fake(tmp_path: Path) -> Iterator[FakeDocker]:
    (tmp_path / "engine").mkdir()
    with FakeDocker(tmp_path / "engine", images={"tideflow-local:latest"}) as engine:
        yield engine


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "flows.py").write_text(FLOWS)
    return folder


def _setup(client: SyncClient, project: Path, flow: str, **variables: Any) -> Deployment:
    pool = f"docker-{uuid.uuid4().hex[:6]}"
    client.send(calls.create_work_pool(WorkPoolCreate(name=pool, type="docker")))
    return client.create_deployment(
        DeploymentCreate(
            flow_name=flow,
            name=f"d-{uuid.uuid4().hex[:6]}",
            entrypoint=f"flows.py:{flow}",
            work_pool_name=pool,
            # the "image" here is this machine: the code is at the same path inside it
            pull_steps=[{"set_working_directory": {"directory": str(project)}}],
            job_variables=variables,
        )
    )


def _env(body: dict[str, Any]) -> dict[str, str]:
    return dict(item.split("=", 1) for item in body["Env"])


def test_a_run_completes_in_the_container_the_template_describes(
    server: Any, client: SyncClient, fake: FakeDocker, project: Path, tmp_path: Path
) -> None:
    run_log = tmp_path / "runs.log"
    d = _setup(
        client, project, "record",
        image="python:3.12-slim",
        env={"MODE": "full", "RUN_LOG": str(run_log)},
        labels={"team": "data"},
        volumes=["/srv/cache:/cache:ro"],
        networks=["tideflow-net", "extra-net"],
        mem_limit="512m",
        cpus=1.5,
        auto_remove=True,
        name="nightly etl",
    )  # fmt: skip
    pool = d.work_pool_name
    assert pool is not None
    worker = Worker(server.api_url, pool, run_log, "--type", "docker", DOCKER_HOST=fake.url)
    try:
        run = client.create_flow_run_from_deployment(d.id, DeploymentFlowRunCreate())
        assert wait_final(client, run.id, 60).state_type is StateType.COMPLETED
        wait_for(lambda: fake.calls("DELETE", "/containers/"))  # auto_remove after the exit
    finally:
        worker.stop()
    # the image was not there: IfNotPresent pulled it first
    assert fake.calls("GET", "/images/python:3.12-slim/json")
    ((_, pulled, _),) = fake.calls("POST", "/images/create")
    assert pulled == {"fromImage": ["python"], "tag": ["3.12-slim"]}
    ((_, query, body),) = fake.calls("POST", "/containers/create")
    assert query["name"] == [f"nightly-etl-{run.id.hex[:8]}"]
    assert body["Image"] == "python:3.12-slim"
    assert body["Cmd"] == ["python", "-m", "tideflow.deployments._execute"]
    env = _env(body)
    port = server.api_url.split(":")[-1].split("/")[0]
    assert env["TIDEFLOW_API_URL"] == f"http://host.docker.internal:{port}/api"
    assert env["TIDEFLOW_FLOW_RUN_ID"] == str(run.id) and env["MODE"] == "full"
    assert body["Labels"]["team"] == "data"
    assert body["Labels"]["io.tideflow.flow-run-id"] == str(run.id)
    assert body["Labels"]["io.tideflow.work-pool"] == pool
    host = body["HostConfig"]
    assert host["ExtraHosts"] == ["host.docker.internal:host-gateway"]
    assert host["Binds"] == ["/srv/cache:/cache:ro"]
    assert host["Memory"] == 512 * 1024 * 1024 and host["NanoCpus"] == 1_500_000_000
    assert host["NetworkMode"] == "tideflow-net"
    assert fake.calls("POST", "/networks/extra-net/connect")
    # it ran in the "container", with the container's environment only
    (line,) = run_lines(run_log)
    fields = dict(kv.split("=", 1) for kv in line[4:])
    assert line[1] == str(run.id) and fields["mode"] == "full" and fields["cwd"] == str(project)
    # stream_output: the container's output reached the worker's
    assert f"Flow run '{run.name}'" in worker.output()


def test_exit_code_crashes_and_cancel_stops_the_container(
    server: Any, client: SyncClient, fake: FakeDocker, project: Path, tmp_path: Path
) -> None:
    run_log = tmp_path / "runs.log"
    dies = _setup(client, project, "dies", image="tideflow-local", env={"RUN_LOG": str(run_log)})
    pool = dies.work_pool_name
    assert pool is not None
    sleeper = client.create_deployment(
        DeploymentCreate(
            flow_name="sleeper", name="sleepy", entrypoint="flows.py:sleeper", work_pool_name=pool,
            pull_steps=[{"set_working_directory": {"directory": str(project)}}],
            job_variables={"image": "tideflow-local", "env": {"RUN_LOG": str(run_log)},
                           "stream_output": False},
        )
    )  # fmt: skip
    worker = Worker(server.api_url, pool, run_log, "--type", "docker", DOCKER_HOST=fake.url)
    try:
        crashed = client.create_flow_run_from_deployment(dies.id, DeploymentFlowRunCreate())
        state = wait_final(client, crashed.id, 60).state
        assert state is not None and state.type is StateType.CRASHED
        assert "container exited with code 3" in (state.message or "")
        long = client.create_flow_run_from_deployment(sleeper.id, DeploymentFlowRunCreate())
        wait_for(lambda: len(run_lines(run_log)) == 2, 60)
        client.set_flow_run_state(long.id, Cancelling("enough"), force=True)
        state = wait_final(client, long.id, 60).state
        assert state is not None and state.type is StateType.CANCELLED
    finally:
        worker.stop()
    assert not fake.calls("POST", "/images/create")  # present already: not pulled
    stops = fake.calls("POST", "/containers/")
    assert any(path.endswith("/stop") for path, _, _ in stops)
    assert not run_lines(run_log, "end")  # stopped before its sleep ended
    # auto_remove is off by default: the containers stay for `docker logs`
    assert not fake.calls("DELETE", "/containers/")


def test_bad_images_and_an_unreachable_daemon(
    server: Any, client: SyncClient, fake: FakeDocker, project: Path, tmp_path: Path
) -> None:
    d = _setup(client, project, "record", image="missing/image:1", image_pull_policy="Always")
    pool = d.work_pool_name
    assert pool is not None
    worker = Worker(server.api_url, pool, tmp_path / "runs.log", "--type", "docker",
                    DOCKER_HOST=fake.url)  # fmt: skip
    try:
        run = client.create_flow_run_from_deployment(d.id, DeploymentFlowRunCreate())
        state = wait_final(client, run.id, 60).state
    finally:
        worker.stop()
    assert state is not None and state.type is StateType.CRASHED
    assert "cannot create the container from image 'missing/image:1'" in (state.message or "")
    assert "pull access denied" in (state.message or "")
    # a daemon that does not answer: one line, before the worker says it started
    gone = run_cli_env(server.api_url, pool, "tcp://127.0.0.1:1")
    assert_one_line_error(gone, "cannot reach the Docker daemon")


def run_cli_env(api_url: str, pool: str, docker_host: str) -> Any:
    import subprocess
    import sys

    from serve_helpers import cli_env

    return subprocess.run(
        [sys.executable, "-m", "tideflow", "worker", "start", "--pool", pool, "--type", "docker"],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
        env=cli_env(api_url, DOCKER_HOST=docker_host),
    )  # fmt: skip
