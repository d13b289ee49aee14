"""`tideflow deployment …` and `tideflow deployment schedule …` as real subprocesses against a real
server, with a real serve() script executing the runs."""

from __future__ import annotations

import datetime as dt
import getpass
import json
from collections.abc import Iterator
from uuid import UUID

import pytest
from serve_helpers import (
    ServeScript,
    assert_one_line_error,
    run_cli,
    wait_final,
)

from tideflow.client import SyncClient
from tideflow.schemas import FlowRunFilter, StateType
from tideflow.schemas.deployments import DeploymentCreate
from tideflow.testing import ServerProcess

SERVE = """
serve(
    etl.to_deployment(name="on-demand", parameters={"limit": 10}, tags=["etl"]),
    etl.to_deployment(name="nightly", cron="0 2 * * *", interval=3600),
    broken.to_deployment(name="fails"),
)
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    home = tmp_path_factory.mktemp("server")
    with ServerProcess(home=home) as proc:
        yield proc


@pytest.fixture(scope="module")
def served(
    server: ServerProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServeScript]:
    with ServeScript(tmp_path_factory.mktemp("serve"), server.api_url, SERVE, expect=3) as script:
        yield script


@pytest.fixture
def client(server: ServerProcess) -> Iterator[SyncClient]:
    with SyncClient(server.api_url) as c:
        yield c


def _created_id(stdout: str) -> str:
    return stdout.split("(", 1)[1].split(")", 1)[0]


def test_serve_prints_how_to_run_each_deployment(served: ServeScript) -> None:
    out = served.output()
    assert "tideflow deployment run 'etl/on-demand'" in out
    assert "Serving deployment 'etl/nightly' (every day at 02:00 (UTC); every hour)" in out


def test_ls_shows_status_paused_schedules_and_triggers(
    server: ServerProcess, served: ServeScript
) -> None:
    result = run_cli(server.api_url, "deployment", "ls")
    assert result.returncode == 0, result.stderr
    row = next(line for line in result.stdout.splitlines() if "etl/nightly" in line)
    assert "READY" in row and "every day at 02:00 (UTC); every hour" in row and " no " in row
    data = json.loads(run_cli(server.api_url, "deployment", "ls", "--json").stdout)
    names = {d["flow_name"] + "/" + d["name"]: d for d in data}
    assert set(names) >= {"etl/on-demand", "etl/nightly", "broken/fails"}
    assert names["etl/on-demand"]["parameters"] == {"limit": 10}
    assert names["etl/on-demand"]["status"] == "READY"


def test_inspect_by_name_and_id(server: ServerProcess, served: ServeScript) -> None:
    result = run_cli(server.api_url, "deployment", "inspect", "etl/on-demand", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["parameter_openapi_schema"]["properties"]["limit"]["type"] == "integer"
    assert data["tags"] == ["etl"]
    text = run_cli(server.api_url, "deployment", "inspect", data["id"])
    assert text.returncode == 0
    assert "etl/on-demand" in text.stdout and "limit: integer" in text.stdout


def test_run_with_overrides_completes_with_merged_parameters(
    server: ServerProcess, served: ServeScript, client: SyncClient
) -> None:
    result = run_cli(
        server.api_url, "deployment", "run", "etl/on-demand",
        "--param", "source=s3://other", "--tag", "adhoc",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    run = wait_final(client, _uuid(_created_id(result.stdout)))
    assert run.state is not None and run.state.type is StateType.COMPLETED
    assert run.parameters == {"limit": 10, "source": "s3://other"}
    assert set(run.tags) >= {"etl", "adhoc"}
    login = getpass.getuser()
    assert run.created_by is not None
    assert (run.created_by.type, run.created_by.id) == ("user", f"tideflow.user.{login}")
    assert run.id.hex in {s.replace("-", "") for s in served.run_log.starts()}


def test_params_json_and_param_json_values(
    server: ServerProcess, served: ServeScript, client: SyncClient
) -> None:
    result = run_cli(
        server.api_url, "deployment", "run", "etl/on-demand",
        "--params", '{"source": "s3://x", "limit": 1}', "--param", "limit=7",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    run = client.read_flow_run(_uuid(_created_id(result.stdout)))
    assert run.parameters == {"source": "s3://x", "limit": 7}


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--param", "nope=1"], ["nope"]),
        (["--param", "limit=many"], ["limit"]),
        (["--params", '{"limit": [1]}'], ["limit"]),
    ],
)
def test_invalid_parameters_are_one_line_naming_the_parameter(
    server: ServerProcess, served: ServeScript, args: list[str], fragments: list[str]
) -> None:
    result = run_cli(server.api_url, "deployment", "run", "etl/on-demand", *args)
    assert_one_line_error(result, *fragments)


def test_missing_required_parameter_is_named(server: ServerProcess, client: SyncClient) -> None:
    # a deployment of a flow that needs a parameter with no default, registered directly
    client.create_deployment(
        DeploymentCreate(
            flow_name="needs-x",
            name="strict",
            parameter_openapi_schema={
                "type": "object",
                "properties": {"x": {"type": "integer", "title": "x"}},
                "required": ["x"],
            },
        )
    )
    result = run_cli(server.api_url, "deployment", "run", "needs-x/strict")
    assert_one_line_error(result, "x")


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["etl/on-demand", "--param", "novalue"], "key=value"),
        (["etl/on-demand", "--params", "{not json"], "--params is not valid JSON"),
        (["etl/on-demand", "--params", "[1]"], "JSON object"),
        (["etl/on-demand", "--start-in", "soon"], "not a duration"),
        (["etl/on-demand", "--start-at", "tomorrow"], "ISO 8601"),
        (["etl/on-demand", "--start-in", "1m", "--start-at", "2030-01-01T00:00:00"], "not both"),
        (["nope/missing"], "not found"),
        (["no-slash"], "flow-name/deployment-name"),
    ],
)
def test_bad_run_requests_are_one_line(
    server: ServerProcess, served: ServeScript, args: list[str], fragment: str
) -> None:
    assert_one_line_error(run_cli(server.api_url, "deployment", "run", *args), fragment)


def test_start_in_schedules_the_run_later(
    server: ServerProcess, served: ServeScript, client: SyncClient
) -> None:
    before = dt.datetime.now(dt.UTC)
    result = run_cli(server.api_url, "deployment", "run", "etl/on-demand", "--start-in", "1h")
    assert result.returncode == 0, result.stderr
    run = client.read_flow_run(_uuid(_created_id(result.stdout)))
    assert run.state is not None and run.state.type is StateType.SCHEDULED
    assert run.expected_start_time is not None
    delay = (run.expected_start_time - before).total_seconds()
    assert 3500 < delay < 3700


def test_idempotency_key_gives_the_same_run(server: ServerProcess, served: ServeScript) -> None:
    args = ["deployment", "run", "etl/on-demand", "--start-in", "1h", "--idempotency-key", "k-1"]
    first = run_cli(server.api_url, *args)
    second = run_cli(server.api_url, *args)
    assert first.returncode == 0 and second.returncode == 0
    assert _created_id(first.stdout) == _created_id(second.stdout)


def test_watch_exits_0_on_completed(server: ServerProcess, served: ServeScript) -> None:
    result = run_cli(
        server.api_url, "deployment", "run", "etl/on-demand", "--param", "limit=3", "--watch"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "Running" in out and "loading 3 rows from s3://bucket/raw" in out
    assert out.strip().splitlines()[-1].endswith("finished in state Completed")


def test_watch_exits_1_on_failed(server: ServerProcess, served: ServeScript) -> None:
    result = run_cli(
        server.api_url,
        "deployment",
        "run",
        "broken/fails",
        "--param",
        "reason=bad input",
        "--watch",
    )
    assert result.returncode == 1, result.stdout + result.stderr
    last = result.stdout.strip().splitlines()[-1]
    assert "finished in state Failed" in last and "RuntimeError: bad input" in last


def test_pause_resume_and_schedule_commands(
    server: ServerProcess, served: ServeScript, client: SyncClient
) -> None:
    assert run_cli(server.api_url, "deployment", "pause", "etl/nightly").returncode == 0
    assert client.read_deployment_by_name("etl/nightly").paused
    assert run_cli(server.api_url, "deployment", "resume", "etl/nightly").returncode == 0
    assert not client.read_deployment_by_name("etl/nightly").paused

    listed = json.loads(
        run_cli(server.api_url, "deployment", "schedule", "ls", "etl/nightly", "--json").stdout
    )
    assert [item["active"] for item in listed] == [True, True]
    first = listed[0]["id"]
    result = run_cli(server.api_url, "deployment", "schedule", "pause", "etl/nightly", first[:8])
    assert result.returncode == 0, result.stderr
    nightly = client.read_deployment_by_name("etl/nightly")
    active = {str(s.id): s.active for s in client.read_deployment_schedules(nightly.id)}
    assert active == {first: False, listed[1]["id"]: True}
    table = run_cli(server.api_url, "deployment", "schedule", "ls", "etl/nightly").stdout
    assert "every day at 02:00" in table and "no" in table
    assert (
        run_cli(server.api_url, "deployment", "schedule", "resume", "etl/nightly").returncode == 0
    )
    assert all(s.active for s in client.read_deployment_schedules(nightly.id))
    assert_one_line_error(
        run_cli(server.api_url, "deployment", "schedule", "pause", "etl/nightly", "ffffffff"),
        "no schedule",
    )


def test_delete_needs_yes_without_a_terminal(server: ServerProcess, client: SyncClient) -> None:
    client.create_deployment(DeploymentCreate(flow_name="gone", name="soon"))
    assert_one_line_error(run_cli(server.api_url, "deployment", "delete", "gone/soon"), "--yes")
    result = run_cli(server.api_url, "deployment", "delete", "gone/soon", "--yes")
    assert result.returncode == 0, result.stderr
    assert_one_line_error(
        run_cli(server.api_url, "deployment", "inspect", "gone/soon"), "not found"
    )
    assert client.read_flow_runs(FlowRunFilter(flow_name=["gone"])) == []


def _uuid(text: str) -> UUID:
    return UUID(text)


def test_flow_run_retry_runs_a_failed_deployment_run_again_and_watch_follows_it(
    server: ServerProcess, served: ServeScript, client: SyncClient
) -> None:
    first = run_cli(server.api_url, "deployment", "run", "broken/fails", "--watch")
    assert first.returncode == 1, first.stdout
    run_id = UUID(_created_id(first.stdout))
    starts = served.run_log.starts().count(str(run_id))

    again = run_cli(server.api_url, "flow-run", "retry", str(run_id)[:8], "--watch")
    assert again.returncode == 1, again.stderr  # it fails again: the flow always raises
    assert "is Scheduled again" in again.stdout and "finished in state Failed" in again.stdout
    assert served.run_log.starts().count(str(run_id)) == starts + 1  # the same run, once more
    names = [s.name for s in client.read_flow_run_states(run_id)]
    assert names.count("Failed") == 2 and names.count("Running") == 2

    watched = run_cli(server.api_url, "flow-run", "watch", str(run_id))
    assert watched.returncode == 1 and "finished in state Failed" in watched.stdout


def test_flow_run_retry_of_a_completed_run_is_forced_and_unfinished_runs_are_refused(
    server: ServerProcess, served: ServeScript, client: SyncClient
) -> None:
    done = run_cli(server.api_url, "deployment", "run", "etl/on-demand", "--watch")
    assert done.returncode == 0, done.stdout
    run_id = UUID(_created_id(done.stdout))
    again = run_cli(server.api_url, "flow-run", "retry", str(run_id), "--watch")
    assert again.returncode == 0, again.stdout + again.stderr
    assert wait_final(client, run_id).state.type is StateType.COMPLETED
    assert served.run_log.starts().count(str(run_id)) == 2

    later = run_cli(server.api_url, "deployment", "run", "etl/nightly", "--start-in", "1h")
    pending_id = _created_id(later.stdout)
    refused = run_cli(server.api_url, "flow-run", "retry", pending_id)
    assert_one_line_error(refused, "is Scheduled, not finished; only a finished run")
