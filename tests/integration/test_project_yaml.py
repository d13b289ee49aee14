"""`tideflow.yaml`, `tideflow deploy` and `tideflow init` end to end: a real server, `tideflow deploy`
as a subprocess, a real worker process running a deployment from a git commit named in `pull:`."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from serve_helpers import assert_one_line_error, cli_env
from worker_helpers import FAST, FLOWS, Worker, run_lines

from tideflow.client import SyncClient
from tideflow.client import _work_pools as calls
from tideflow.deployments import run_deployment
from tideflow.schemas import LogFilter, StateType
from tideflow.schemas.variables import VariableCreate
from tideflow.schemas.work_pools import WorkPoolCreate


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from tideflow.testing import ServerProcess

    with ServerProcess(home=tmp_path_factory.mktemp("server"), env=FAST) as proc:
        with SyncClient(proc.api_url) as client:
            for pool in ("yaml-pool", "local"):
                client.send(calls.create_work_pool(WorkPoolCreate(name=pool)))
            client.create_variable(VariableCreate(name="extra_value", value="from-variable"))
            client.create_variable(VariableCreate(name="crew", value=["ada", "alan"]))
        yield proc


@pytest.fixture
def client(server: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[SyncClient]:
    monkeypatch.setenv("TIDEFLOW_API_URL", server.api_url)
    monkeypatch.setenv("TIDEFLOW_HOME", str(tmp_path / "home"))
    with SyncClient(server.api_url) as c:
        yield c


def tideflow(server: Any, cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tideflow", *args],
        capture_output=True, text=True, timeout=90, cwd=cwd, stdin=subprocess.DEVNULL,
        env=cli_env(server.api_url, TIDEFLOW_HOME=str(cwd / ".home"), **env),
    )  # fmt: skip


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


def make_repo(tmp_path: Path) -> tuple[Path, str]:
    repo = tmp_path / "repo"
    (repo / "flows").mkdir(parents=True)
    (repo / "flows" / "etl.py").write_text(FLOWS)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", ".")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "flows")
    return repo, git(repo, "rev-parse", "HEAD")


EVERY_SECTION = """\
name: yaml-project
pull:
  - tideflow.deployments.steps.git_clone:
      repository: "{{ $YAML_REPO }}"
      branch: main
      commit: "{{ $YAML_COMMIT }}"
  - run_shell_script:
      script: |
        touch pulled-marker  # runs in the checkout, before each run
deployments:
  - name: nightly
    entrypoint: flows/etl.py:record
    description: Nightly load
    tags: [etl, "{{ $YAML_MODE }}"]
    version: "1.2"
    schedules:
      - cron: "0 2 * * *"
        timezone: Europe/Paris
      - interval: 3600
        active: false
      - rrule: "FREQ=WEEKLY;BYDAY=MO"
    triggers:
      - type: event
        expect: ["yaml.test.happened"]
    concurrency_limit: 2
    work_pool:
      name: yaml-pool
      work_queue_name: default
      job_variables:
        env:
          MODE: "{{ $YAML_MODE }}"
          EXTRA: "{{ tideflow.variables.extra_value }}"
  - name: later
    entrypoint: flows/etl.py:sleeper
    parameters: {seconds: 0.1}
    paused: true
    pull:
      - set_working_directory:
          directory: "{{ $YAML_REPO }}"
    work_pool: {name: yaml-pool}
"""


def test_deploy_all_every_section_and_a_worker_runs_it(
    server: Any, client: SyncClient, tmp_path: Path
) -> None:
    repo, commit = make_repo(tmp_path)
    (repo / "tideflow.yaml").write_text(EVERY_SECTION)
    env = {"YAML_REPO": str(repo), "YAML_COMMIT": commit, "YAML_MODE": "full"}
    done = tideflow(server, repo, "deploy", "--all", **env)
    assert done.returncode == 0, done.stderr
    assert "Deployed 'record/nightly' to work pool 'yaml-pool'" in done.stdout
    assert "Deployed 'sleeper/later' to work pool 'yaml-pool'" in done.stdout

    d = client.read_deployment_by_name("record/nightly")
    assert d.entrypoint == "flows/etl.py:record"
    assert d.pull_steps == [
        {"git_clone": {"repository": str(repo), "branch": "main", "commit": commit}},
        {
            "run_shell_script": {
                "script": "touch pulled-marker  # runs in the checkout, before each run\n"
            }
        },
    ]
    assert (d.description, d.version, sorted(d.tags)) == ("Nightly load", "1.2", ["etl", "full"])
    assert d.concurrency_limit == 2
    assert (d.work_pool_name, d.work_queue_name) == ("yaml-pool", "default")
    assert d.job_variables == {"env": {"MODE": "full", "EXTRA": "from-variable"}}
    kinds = sorted((type(s.schedule).__name__, s.active) for s in d.schedules)
    assert kinds == [("CronSchedule", True), ("IntervalSchedule", False), ("RRuleSchedule", True)]
    cron = next(s.schedule for s in d.schedules if type(s.schedule).__name__ == "CronSchedule")
    assert cron.timezone == "Europe/Paris"
    assert any("yaml.test.happened" in a.model_dump_json() for a in client.read_automations()), (
        "the trigger became no automation"
    )

    later = client.read_deployment_by_name("sleeper/later")
    assert later.paused and later.parameters == {"seconds": 0.1}
    assert later.pull_steps == [{"set_working_directory": {"directory": str(repo)}}]

    # Deploying again updates in place (same ids), as flow.deploy() does.
    again = tideflow(server, repo, "deploy", "nightly", **{**env, "YAML_MODE": "partial"})
    assert again.returncode == 0, again.stderr
    d2 = client.read_deployment_by_name("record/nightly")
    assert d2.id == d.id and d2.job_variables["env"]["MODE"] == "partial"

    # A worker pulls the commit and runs the flow with the job variables' env.
    worker = Worker(server.api_url, "yaml-pool", tmp_path / "runs.log")
    try:
        run = run_deployment("record/nightly", timeout=90)
        assert run.state is not None and run.state.type == StateType.COMPLETED, run.state
    finally:
        worker.stop()
    (line,) = run_lines(tmp_path / "runs.log")
    fields = dict(part.split("=", 1) for part in line[4:])
    assert (fields["mode"], fields["extra"]) == ("partial", "from-variable")
    assert "git-cache" in fields["cwd"], fields["cwd"]
    assert (Path(fields["cwd"]) / "pulled-marker").is_file()  # run_shell_script ran there


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        (
            "deployments:\n  - name: a\n    entrypoint: flows.py:etl\n    work_pool: {name: p}\n"
            "  - name: b\n    entrypoint: flows.py:etl\n    work_pool: {job_variables: {}}\n",
            "tideflow.yaml: deployments[1].work_pool.name: field required",
        ),
        (
            "deployments:\n  - name: a\n    entrypoint: flows.py:etl\n    work_pool: {name: p}\n"
            "    schedule: {cron: '* * * * *'}\n",
            "tideflow.yaml: deployments[0].schedule: unknown key",
        ),
        (
            "deployments:\n  - name: a\n    entrypoint: flows.py:etl\n    work_pool: {name: p}\n"
            "    schedules: [{cron: '* * * * *', interval: 5}]\n",
            "deployments[0].schedules[0]: a schedule needs exactly one of cron, interval or rrule",
        ),
        (
            "pull:\n  - git_clone: {branch: main}\ndeployments: []\n",
            "tideflow.yaml: pull: pull step 0 (git_clone): repository is required",
        ),
        ("deployments: [\n", "tideflow.yaml: "),
        ("- just a list\n", "tideflow.yaml: the top level must be a mapping"),
        (
            "deployments:\n  - name: a\n    entrypoint: flows.py:etl\n    work_pool: {name: p}\n"
            "    tags: ['{{ $YAML_UNSET_FOR_TEST }}']\n",
            "tideflow.yaml: deployments[0].tags[0]: environment variable YAML_UNSET_FOR_TEST is not set",
        ),
        (
            "deployments:\n  - name: a\n    entrypoint: flows.py:etl\n    work_pool: {name: p}\n"
            "    tags: ['{{ tideflow.variables.no_such_var }}']\n",
            "deployments[0].tags[0]: variable 'no_such_var' does not exist on the server",
        ),
        (
            "deployments:\n  - name: a\n    entrypoint: flows.py:missing\n    work_pool: {name: local}\n",
            "tideflow.yaml: deployments[0].entrypoint: ",
        ),
        (
            "deployments:\n  - name: a\n    entrypoint: flows.py:etl\n    work_pool: {name: nope}\n",
            "tideflow.yaml: deployments[0]: ",
        ),
    ],
)
def test_bad_files_are_one_line_errors(
    server: Any, tmp_path: Path, text: str, fragment: str
) -> None:
    (tmp_path / "flows.py").write_text(
        "from tideflow import flow\n\n@flow\ndef etl(n: int = 1):\n    return n\n"
    )
    (tmp_path / "tideflow.yaml").write_text(text)
    assert_one_line_error(tideflow(server, tmp_path, "deploy", "--all"), fragment)


def test_variables_keep_their_json_type_and_names_are_checked(
    server: Any, client: SyncClient, tmp_path: Path
) -> None:
    (tmp_path / "flows.py").write_text(
        "from tideflow import flow\n\n@flow\ndef team(crew: list[str]):\n    return crew\n"
    )
    (tmp_path / "tideflow.yaml").write_text(
        textwrap.dedent(
            """\
            deployments:
              - name: vars
                entrypoint: flows.py:team
                parameters: {crew: "{{ tideflow.variables.crew }}"}
                description: "crew is {{ tideflow.variables.crew }}; home {{ $YAML_WHERE }}"
                work_pool: {name: local}
              - name: other
                entrypoint: flows.py:team
                work_pool: {name: local}
            """
        )
    )
    nameless = tideflow(server, tmp_path, "deploy", YAML_WHERE="x")
    assert_one_line_error(nameless, "declares 2 deployments", "--all")
    unknown = tideflow(server, tmp_path, "deploy", "nope", YAML_WHERE="x")
    assert_one_line_error(unknown, "no deployment named 'nope'", "vars, other")
    done = tideflow(server, tmp_path, "deploy", "team/vars", YAML_WHERE="attic")
    assert done.returncode == 0, done.stderr
    d = client.read_deployment_by_name("team/vars")
    assert d.parameters == {"crew": ["ada", "alan"]}
    assert d.description == 'crew is ["ada", "alan"]; home attic'
    assert d.pull_steps == [{"set_working_directory": {"directory": str(tmp_path)}}]


def test_init_then_deploy(server: Any, client: SyncClient, tmp_path: Path) -> None:
    made = tideflow(server, tmp_path, "init")
    assert made.returncode == 0, made.stderr
    text = (tmp_path / "tideflow.yaml").read_text()
    assert text.startswith("# tideflow.yaml")
    assert_one_line_error(tideflow(server, tmp_path, "init"), "already exists", "--force")
    assert tideflow(server, tmp_path, "init", "--force").returncode == 0
    (tmp_path / "flows.py").write_text(
        "from tideflow import flow\n\n@flow\ndef etl(n: int = 1):\n    return n\n"
    )
    done = tideflow(server, tmp_path, "deploy")
    assert done.returncode == 0, done.stderr
    assert "Deployed 'etl/nightly' to work pool 'local'" in done.stdout
    d = client.read_deployment_by_name("etl/nightly")
    assert d.tags == ["etl"] and d.work_pool_name == "local"


def test_the_readme_example_file_deploys(server: Any, client: SyncClient, tmp_path: Path) -> None:
    example = Path(__file__).resolve().parents[2] / "examples" / "tideflow.yaml"
    done = tideflow(server, tmp_path, "deploy", "--all", "--file", str(example), ETL_MODE="full")
    assert done.returncode == 0, done.stderr
    d = client.read_deployment_by_name("etl/from-yaml")
    assert d.job_variables == {"env": {"MODE": "full"}}
    assert d.pull_steps == [{"set_working_directory": {"directory": str(example.parent)}}]


def test_a_failing_run_shell_script_step_crashes_the_run_with_its_command(
    server: Any, client: SyncClient, tmp_path: Path
) -> None:
    (tmp_path / "flows.py").write_text(
        "from tideflow import flow\n\n@flow\ndef fragile():\n    return 1\n"
    )
    (tmp_path / "tideflow.yaml").write_text(
        textwrap.dedent(
            f"""\
            pull:
              - set_working_directory: {{directory: "{tmp_path}"}}
              - run_shell_script:
                  script: |
                    true
                    ls no-such-file-here
            deployments:
              - name: broken-pull
                entrypoint: flows.py:fragile
                work_pool: {{name: yaml-pool}}
            """
        )
    )
    done = tideflow(server, tmp_path, "deploy")
    assert done.returncode == 0, done.stderr
    worker = Worker(server.api_url, "yaml-pool", tmp_path / "runs.log")
    try:
        run = run_deployment("fragile/broken-pull", timeout=60)
    finally:
        worker.stop()
    assert run.state is not None and run.state.type == StateType.CRASHED, run.state
    assert "'ls no-such-file-here' exited with 2" in (run.state.message or ""), run.state


def test_the_deploy_etl_example_deploys_and_a_worker_runs_it(
    server: Any, client: SyncClient, tmp_path: Path
) -> None:
    """examples/deploy_etl.py as the README and the docs run it: deploy, then a worker runs it with
    the deployment's job variables and a run's own."""
    example = Path(__file__).resolve().parents[2] / "examples" / "deploy_etl.py"
    done = subprocess.run(
        [sys.executable, str(example)], capture_output=True, text=True, timeout=90, cwd=tmp_path,
        env=cli_env(server.api_url, TIDEFLOW_HOME=str(tmp_path / ".home")),
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    d = client.read_deployment_by_name("etl/nightly")
    assert d.work_pool_name == "local" and d.parameters == {"limit": 10}
    assert d.job_variables == {"env": {"MODE": "incremental"}}
    worker = Worker(server.api_url, "local", tmp_path / "runs.log")
    try:
        run = run_deployment("etl/nightly", job_variables={"env": {"MODE": "full"}}, timeout=90)
        assert run.state is not None and run.state.type == StateType.COMPLETED, run.state
        logs = "\n".join(log.message for log in client.read_logs(LogFilter(flow_run_id=[run.id])))
    finally:
        worker.stop()
    assert "loading 10 rows in full mode" in logs, logs
