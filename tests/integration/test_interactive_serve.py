"""Interactive deployment runs under a real serve() process: suspend_flow_run ends the run's process
(the run stays Suspended, not Crashed), a resume re-offers it to the runner, it runs again from the
start with its persisted task result reused, and the same suspend call answers the validated input;
``tideflow.runtime.deployment`` and ``flow_run`` inside a deployment's run; the CLI's resume."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from serve_helpers import cli_env, run_cli, wait_final, wait_for

from tideflow.client import SyncClient
from tideflow.schemas import StateType
from tideflow.testing import ServerProcess

SCRIPT = """
import json, os
from pydantic import BaseModel
from tideflow import flow, serve, suspend_flow_run, task
from tideflow import runtime

def note(line):
    with open(os.environ["RUN_LOG"], "a") as fh:
        fh.write(line + "\\n")

class Approval(BaseModel):
    approved: bool
    reviewer: str

@task(persist_result=True)
def expensive(n: int) -> int:
    note("task")
    return n * 10

@flow(version="7")
def approve(n: int = 2) -> int:
    note("start")
    value = expensive(n)
    facts = {
        "deployment_id": str(runtime.deployment.id), "name": runtime.deployment.name,
        "version": runtime.deployment.version, "parameters": runtime.deployment.parameters,
        "flow_run_deployment_id": str(runtime.flow_run.deployment_id),
        "flow_run_id": str(runtime.deployment.flow_run_id), "tags": runtime.flow_run.tags,
        "flow_version": runtime.flow_run.flow_version,
    }
    note("facts " + json.dumps(facts))
    answer = suspend_flow_run(wait_for_input=Approval, timeout=120)
    note(f"answer {answer.approved} {answer.reviewer}")
    return value

if __name__ == "__main__":
    serve(approve.to_deployment("gate", version="v3", parameters={"n": 4}, tags=["hitl"]))
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with ServerProcess(home=tmp_path_factory.mktemp("server"), startup_timeout=90) as proc:
        yield proc


@pytest.fixture
def client(server: ServerProcess) -> Iterator[SyncClient]:
    with SyncClient(server.api_url) as c:
        yield c


def test_suspend_frees_the_process_and_a_resume_reruns_with_persisted_results(
    server: ServerProcess, client: SyncClient, tmp_path: Path
) -> None:
    script = tmp_path / "hitl.py"
    script.write_text(textwrap.dedent(SCRIPT))
    log = tmp_path / "runs.log"
    log.touch()
    env = cli_env(server.api_url, RUN_LOG=str(log), TIDEFLOW_RESULTS_STORAGE=str(tmp_path / "r"))
    out = (tmp_path / "serve.out").open("wb")
    proc = subprocess.Popen(
        [sys.executable, str(script)], stdout=out, stderr=subprocess.STDOUT, env=env,
        cwd=tmp_path, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deployment = wait_for(lambda: _deployment(client), timeout=60)
        run = client.create_flow_run_from_deployment(deployment.id)

        def suspended() -> bool:
            state = client.read_flow_run(run.id).state
            return state is not None and state.name == "Suspended"

        wait_for(suspended, timeout=60)
        lines = log.read_text().splitlines()
        assert lines[:2] == ["start", "task"]
        facts = json.loads(lines[2].removeprefix("facts "))
        assert facts == {
            "deployment_id": str(deployment.id), "name": "gate", "version": "v3",
            "parameters": {"n": 4}, "flow_run_deployment_id": str(deployment.id),
            "flow_run_id": str(run.id), "tags": ["hitl"], "flow_version": "7",
        }  # fmt: skip
        # The process ended and the runner left the run Suspended (not Crashed).
        wait_for(lambda: not _children(proc.pid), timeout=30)
        assert client.read_flow_run(run.id).state_name == "Suspended"

        bad = run_cli(
            server.api_url, "flow-run", "resume", str(run.id), "--input", '{"approved": 1}'
        )
        assert bad.returncode == 1 and "Traceback" not in bad.stderr
        assert "run_input.approved" in bad.stderr and "reviewer" in bad.stderr
        broken = run_cli(server.api_url, "flow-run", "resume", str(run.id), "--input", "{nope")
        assert broken.returncode == 1 and "not valid JSON" in broken.stderr
        good = run_cli(
            server.api_url, "flow-run", "resume", str(run.id), "--input",
            '{"approved": true, "reviewer": "ada"}',
        )  # fmt: skip
        assert good.returncode == 0, good.stderr
        assert "Resuming" in good.stdout

        final = wait_final(client, run.id, timeout=60)
        assert final.state_type is StateType.COMPLETED, final.state
        lines = log.read_text().splitlines()
        # started twice, the persisted task result reused, the answer delivered once
        assert [line for line in lines if not line.startswith("facts")] == [
            "start", "task", "start", "answer True ada",
        ]  # fmt: skip
        names = [s.name for s in client.read_flow_run_states(run.id)]
        assert "Suspended" in names and "Resuming" in names and "Crashed" not in names
        assert final.run_count == 2
    finally:
        proc.terminate()
        proc.wait(30)
        out.close()


def _deployment(client: SyncClient):  # type: ignore[no-untyped-def]
    try:
        return client.read_deployment_by_name("approve/gate")
    except Exception:
        return None


def _children(pid: int) -> list[object]:
    import psutil

    return list(psutil.Process(pid).children(recursive=True))
