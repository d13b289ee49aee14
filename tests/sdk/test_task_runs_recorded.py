"""Task runs reach the server (a real server subprocess): after a flow call returns, its task runs are
stored with their state histories and upstream inputs, their tideflow.task-run.<State> events
relate the flow run and flow, their logs are readable by task run, and `tideflow task-run` shows
them."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

from tideflow import flow, get_run_logger, runtime, task
from tideflow.client import SyncClient
from tideflow.schemas import LogFilter
from tideflow.schemas.events import EventFilter
from tideflow.schemas.task_runs import TaskRunFilter
from tideflow.task_runners import ProcessPoolTaskRunner


@task(retries=1)
def extract(n: int) -> list[int]:
    get_run_logger().info("extracting %d rows", n)
    if runtime.task_run.run_count == 1:
        raise ConnectionError("first try fails")
    return list(range(n))


@task
def double(x: int) -> int:
    return 2 * x


@task
def total(values: list[int]) -> int:
    return sum(values)


@task
def explode() -> None:
    raise ValueError("bad row")


def _by_name(client: SyncClient, flow_run_id: Any) -> dict[str, Any]:
    runs = client.read_task_runs(TaskRunFilter(flow_run_id=[flow_run_id], limit=100))
    return {run.name: run for run in runs}


def test_a_flow_calls_task_runs_are_stored_with_states_and_inputs(client: SyncClient) -> None:
    ids: list[Any] = []

    @flow
    def etl(n: int) -> int:
        ids.append(runtime.flow_run.id)
        rows = extract(n)
        doubled = double.map(rows)
        explode.submit().wait()
        return total.submit(doubled).result()

    assert etl(3) == 6
    runs = _by_name(client, ids[0])
    assert sorted(runs) == ["double-0", "double-1", "double-2", "explode-0", "extract-0", "total-0"]
    extract_run = runs["extract-0"]
    assert [s.name for s in extract_run.state_history] == [
        "Pending", "Running", "AwaitingRetry", "Retrying", "Completed",
    ]  # fmt: skip
    assert extract_run.run_count == 2 and extract_run.parameters == {"n": 3}
    assert runs["explode-0"].state_name == "Failed"
    assert runs["explode-0"].state.message == "ValueError: bad row"
    assert runs["total-0"].task_inputs == {"values": [runs[f"double-{i}"].id for i in range(3)]}
    # the events, with the flow run and flow related
    page = client.read_events(
        EventFilter(
            event_names=["tideflow.task-run.Failed"],
            any_resource_ids=[f"tideflow.flow-run.{ids[0]}"],
        )
    )
    assert [e.resource["tideflow.resource.name"] for e in page.events] == ["explode-0"]
    roles = {r["tideflow.resource.role"] for r in page.events[0].related}
    assert {"flow-run", "flow"} <= roles
    # logs by task run
    logs = client.read_logs(LogFilter(flow_run_id=[ids[0]], task_run_id=[extract_run.id]))
    messages = [log.message for log in logs]
    assert messages.count("extracting 3 rows") == 2
    assert "Finished in state Completed()" in messages


def _pid_square(x: int) -> int:
    return x * x


def test_process_pool_task_runs_are_recorded_by_the_flows_process(client: SyncClient) -> None:
    ids: list[Any] = []
    square = task(_pid_square, name="square")

    @flow(task_runner=ProcessPoolTaskRunner(max_workers=2))
    def squares() -> list[int]:
        ids.append(runtime.flow_run.id)
        return square.map([1, 2, 3]).result()

    assert squares() == [1, 4, 9]
    runs = _by_name(client, ids[0])
    assert sorted(runs) == ["square-0", "square-1", "square-2"]
    for run in runs.values():
        assert [s.name for s in run.state_history] == ["Pending", "Running", "Completed"]


def test_the_task_run_cli(client: SyncClient, sdk_server: Any) -> None:
    ids: list[Any] = []

    @flow
    def small() -> None:
        ids.append(runtime.flow_run.id)
        extract(2)

    small()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env["COLUMNS"] = "200"

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "tideflow", *args], capture_output=True, text=True, env=env,
            timeout=60,
        )  # fmt: skip

    listed = cli("task-run", "ls", "--flow-run", str(ids[0]))
    assert listed.returncode == 0, listed.stderr
    assert "extract-0" in listed.stdout and "Completed" in listed.stdout
    run = _by_name(client, ids[0])["extract-0"]
    shown = cli("task-run", "inspect", run.id.hex[:10])
    assert shown.returncode == 0, shown.stderr
    assert "AwaitingRetry" in shown.stdout and '{"n": 2}' in shown.stdout
    logs = cli("task-run", "logs", str(run.id))
    assert logs.returncode == 0 and logs.stdout.count("extracting 2 rows") == 2
    missing = cli("task-run", "inspect", "0123456789ab")
    assert missing.returncode == 1
    assert missing.stderr.strip() == "Error: no task run id starts with '0123456789ab'"
