"""`tideflow worker start --type kubernetes` as a real process against a real server, driving the real
``kubernetes`` package (through a kubeconfig written here) against a recording fake of the API
server (no cluster here; see kube_fake.py): the Job the template describes, the run completing in
its pod, Crashed with the pod's exit code and reason, a pod that cannot pull its image, cancel =
delete the Job, and a worker with no cluster configuration."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kube_fake import FakeKube
from serve_helpers import assert_one_line_error, cli_env, wait_final, wait_for
from worker_helpers import FAST, FLOWS, Worker, run_lines

from tideflow.client import SyncClient
from tideflow.client import _work_pools as calls
from tideflow.schemas import StateType
from tideflow.schemas.deployments import Deployment, DeploymentCreate, DeploymentFlowRunCreate
from tideflow.schemas.states import Cancelling
from tideflow.schemas.work_pools import WorkPoolCreate

pytest.importorskip("kubernetes")


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
def fake(tmp_path: Path) -> Iterator[FakeKube]:
    (tmp_path / "cluster").mkdir()
    with FakeKube(tmp_path / "cluster") as cluster:
        yield cluster


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "flows.py").write_text(FLOWS)
    return folder


def _deployment(
    client: SyncClient, pool: str, project: Path, flow: str, **variables: Any
) -> Deployment:
    return client.create_deployment(
        DeploymentCreate(
            flow_name=flow,
            name=f"d-{uuid.uuid4().hex[:6]}",
            entrypoint=f"flows.py:{flow}",
            work_pool_name=pool,
            pull_steps=[{"set_working_directory": {"directory": str(project)}}],
            job_variables=variables,
        )
    )


def _pool(client: SyncClient) -> str:
    pool = f"k8s-{uuid.uuid4().hex[:6]}"
    client.send(calls.create_work_pool(WorkPoolCreate(name=pool, type="kubernetes")))
    return pool


def test_runs_as_jobs_from_the_template_crash_with_reasons_and_cancel_deletes(
    server: Any, client: SyncClient, fake: FakeKube, project: Path, tmp_path: Path
) -> None:
    run_log = tmp_path / "runs.log"
    pool = _pool(client)
    env = {"MODE": "k8s", "RUN_LOG": str(run_log)}
    ok = _deployment(
        client, pool, project, "record",
        image="ghcr.io/acme/flows:1.2", namespace="flows", env=env,
        service_account_name="runner", cpu_request="250m", memory_limit="1Gi",
        finished_job_ttl=600, labels={"team": "data"}, image_pull_policy="Always",
    )  # fmt: skip
    dies = _deployment(client, pool, project, "dies", env=env)
    sleeper = _deployment(client, pool, project, "sleeper", env=env)
    missing = _deployment(client, pool, project, "record", image="missing/image:9", env=env)
    kubeconfig = fake.write_kubeconfig(tmp_path / "kubeconfig")
    worker = Worker(
        server.api_url, pool, run_log, "--type", "kubernetes", KUBECONFIG=str(kubeconfig)
    )
    try:
        run = client.create_flow_run_from_deployment(ok.id, DeploymentFlowRunCreate())
        assert wait_final(client, run.id, 60).state_type is StateType.COMPLETED

        crashed = client.create_flow_run_from_deployment(dies.id, DeploymentFlowRunCreate())
        state = wait_final(client, crashed.id, 60).state
        assert state is not None and state.type is StateType.CRASHED
        assert "failed: Error" in (state.message or "") and "exit code 3" in (state.message or "")

        stuck = client.create_flow_run_from_deployment(missing.id, DeploymentFlowRunCreate())
        state = wait_final(client, stuck.id, 60).state
        assert state is not None and state.type is StateType.CRASHED
        assert "ImagePullBackOff" in (state.message or "")

        long = client.create_flow_run_from_deployment(sleeper.id, DeploymentFlowRunCreate())
        wait_for(lambda: any(line[1] == str(long.id) for line in run_lines(run_log)), 60)
        client.set_flow_run_state(long.id, Cancelling("enough"), force=True)
        state = wait_final(client, long.id, 60).state
        assert state is not None and state.type is StateType.CANCELLED
    finally:
        worker.stop()

    created = {b["metadata"]["name"]: (p, b) for p, _, b in fake.calls("POST", "/apis/batch/v1/")}
    path, job = created[f"{run.name}-{run.id.hex[:8]}"]
    assert path == "/apis/batch/v1/namespaces/flows/jobs"
    assert job["spec"]["backoffLimit"] == 0 and job["spec"]["ttlSecondsAfterFinished"] == 600
    assert job["metadata"]["labels"]["tideflow.io/flow-run-id"] == str(run.id)
    assert job["metadata"]["labels"]["team"] == "data"
    pod = job["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never" and pod["serviceAccountName"] == "runner"
    (container,) = pod["containers"]
    assert container["image"] == "ghcr.io/acme/flows:1.2"
    assert container["imagePullPolicy"] == "Always"
    assert container["command"] == ["python", "-m", "tideflow.deployments._execute"]
    assert container["resources"] == {"requests": {"cpu": "250m"}, "limits": {"memory": "1Gi"}}
    env_of = {e["name"]: e["value"] for e in container["env"]}
    assert env_of["TIDEFLOW_FLOW_RUN_ID"] == str(run.id) and env_of["MODE"] == "k8s"
    assert env_of["TIDEFLOW_API_URL"] == server.api_url.rstrip("/")
    # the run ran in the "pod", with the pod's environment
    fields = {line[1]: dict(kv.split("=", 1) for kv in line[4:]) for line in run_lines(run_log)}
    assert fields[str(run.id)]["mode"] == "k8s"
    # cancel and the stuck pod deleted their Jobs (with their pods)
    deleted = [(p, {k: v[0] for k, v in q.items()} | (b or {}))
               for p, q, b in fake.calls("DELETE", "/apis/batch/v1/")]  # fmt: skip
    names = {p.rsplit("/", 1)[1] for p, _ in deleted}
    assert f"{long.name}-{long.id.hex[:8]}" in names and f"{stuck.name}-{stuck.id.hex[:8]}" in names
    assert all(b["propagationPolicy"] == "Foreground" for _, b in deleted)
    assert not run_lines(run_log, "end")


def test_a_worker_without_a_cluster_says_so(
    server: Any, client: SyncClient, tmp_path: Path
) -> None:
    import subprocess
    import sys

    pool = _pool(client)
    env = cli_env(server.api_url, KUBECONFIG=str(tmp_path / "nowhere"), HOME=str(tmp_path))
    env.pop("KUBERNETES_SERVICE_HOST", None)
    result = subprocess.run(
        [sys.executable, "-m", "tideflow", "worker", "start", "--pool", pool, "--type", "kubernetes"],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL, env=env,
    )  # fmt: skip
    assert_one_line_error(result, "cannot load a Kubernetes configuration")
