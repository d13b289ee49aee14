"""`tideflow flow ls` and `tideflow flow-run ls|inspect|logs|cancel|delete` as real subprocesses
against a real server process. Test data is made with the client; each test uses its own flow name."""

from __future__ import annotations

import datetime as dt
import json
import os
import pty
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import pytest

from tideflow.client import SyncClient
from tideflow.exceptions import ObjectNotFound
from tideflow.schemas import FlowRun, FlowRunCreate, LogCreate, State
from tideflow.schemas.states import Cancelled, Completed, Failed, Late, Running, Scheduled
from tideflow.testing import ServerProcess, free_port


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    home = tmp_path_factory.mktemp("server")
    with ServerProcess(f"sqlite+aiosqlite:///{home / 'cli.db'}", home=home) as proc:
        yield proc


@pytest.fixture
def client(server: ServerProcess) -> Iterator[SyncClient]:
    with SyncClient(server.api_url) as c:
        yield c


@pytest.fixture
def flow_name() -> str:
    return f"cli-flow-{uuid.uuid4().hex[:8]}"


def run_cli(
    server: ServerProcess | str, *args: str, timeout: float = 60, columns: int = 250
) -> subprocess.CompletedProcess[str]:
    api_url = server if isinstance(server, str) else server.api_url
    env = {**os.environ, "TIDEFLOW_API_URL": api_url, "COLUMNS": str(columns)}
    return subprocess.run(
        [sys.executable, "-m", "tideflow", *args],
        capture_output=True, text=True, timeout=timeout, env=env, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def make_run(client: SyncClient, flow: str, name: str, *states: State, **kwargs: object) -> FlowRun:
    run = client.create_flow_run(FlowRunCreate(flow_name=flow, name=name, **kwargs))  # type: ignore[arg-type]
    for state in states:
        client.set_flow_run_state(run.id, state)
    return client.read_flow_run(run.id)


def table_rows(stdout: str) -> list[list[str]]:
    return [
        [cell.strip() for cell in line.strip()[1:-1].split("│")]
        for line in stdout.splitlines()
        if line.startswith("│")
    ]


def set_columns(server: ServerProcess, run_id: uuid.UUID, **values: object) -> None:
    """Change a stored run's columns directly (ids and deployment links the API cannot set)."""
    path = server.database_url.removeprefix("sqlite+aiosqlite:///")
    with sqlite3.connect(path, timeout=30) as db:
        for column, value in values.items():
            db.execute(f"UPDATE flow_runs SET {column} = ? WHERE id = ?", (value, run_id.hex))


# --- flow ls --------------------------------------------------------------------------------------
def test_flow_ls_table_and_json(server: ServerProcess, client: SyncClient, flow_name: str) -> None:
    flow = client.create_flow(flow_name)
    result = run_cli(server, "flow", "ls")
    assert result.returncode == 0, result.stderr
    rows = {row[0]: row for row in table_rows(result.stdout)}
    assert rows[flow_name][1] == str(flow.id)
    assert rows[flow_name][2] == flow.created.astimezone().strftime("%Y-%m-%d %H:%M:%S")
    data = json.loads(run_cli(server, "flow", "ls", "--json").stdout)
    assert {"id": str(flow.id), "name": flow_name} == {
        k: v
        for item in data
        if item["name"] == flow_name
        for k, v in item.items()
        if k in ("id", "name")
    }


# --- flow-run ls ----------------------------------------------------------------------------------
def test_ls_in_an_80_column_terminal_shows_id_prefixes_and_readable_names(
    server: ServerProcess, client: SyncClient, flow_name: str
) -> None:
    run = make_run(client, flow_name, "narrow-run", Running(), Completed())
    result = run_cli(server, "flow-run", "ls", "--flow", flow_name, columns=80)
    assert result.returncode == 0, result.stderr
    assert all(len(line) <= 80 for line in result.stdout.splitlines())
    (row,) = table_rows(result.stdout)
    assert row[0] == run.id.hex[:8]
    assert row[1].startswith("narrow") and row[3] == "Completed"
    shown = run_cli(server, "flow-run", "inspect", row[0])  # the prefix is enough to address it
    assert shown.returncode == 0 and str(run.id) in shown.stdout


def test_ls_shows_runs_newest_first_with_states(
    server: ServerProcess, client: SyncClient, flow_name: str
) -> None:
    done = make_run(client, flow_name, "first", Running(), Completed())
    failed = make_run(client, flow_name, "second", Running(), Failed(message="boom"))
    waiting = make_run(client, flow_name, "third", state=Scheduled())
    result = run_cli(server, "flow-run", "ls", "--flow", flow_name)
    assert result.returncode == 0, result.stderr
    rows = table_rows(result.stdout)
    assert [row[0] for row in rows] == [str(waiting.id), str(failed.id), str(done.id)]
    by_id = {row[0]: row for row in rows}
    assert by_id[str(done.id)][1:4] == ["first", flow_name, "Completed"]
    assert by_id[str(failed.id)][3] == "Failed"
    assert by_id[str(waiting.id)][3] == "Scheduled"
    assert done.start_time is not None
    assert by_id[str(done.id)][4] == done.start_time.astimezone().strftime("%Y-%m-%d %H:%M:%S")
    assert by_id[str(done.id)][5].endswith(("ms", "s"))
    assert by_id[str(waiting.id)][5] == "-"


def test_ls_json_is_full_flow_runs_only(
    server: ServerProcess, client: SyncClient, flow_name: str
) -> None:
    a = make_run(client, flow_name, "a", Running(), parameters={"x": 1}, tags=["t1"])
    b = make_run(client, flow_name, "b", Running())
    result = run_cli(server, "flow-run", "ls", "--flow", flow_name, "--json")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    data = json.loads(result.stdout)  # nothing but the JSON on stdout
    runs = [FlowRun.model_validate(item) for item in data]
    assert [r.id for r in runs] == [b.id, a.id]
    assert runs[1].parameters == {"x": 1}
    assert runs[1].tags == ["t1"]
    assert runs[1].state is not None and runs[1].state.type.value == "RUNNING"
    assert runs[1].flow_name == flow_name


def test_ls_filters_by_state_type_name_and_tags(
    server: ServerProcess, client: SyncClient, flow_name: str
) -> None:
    done = make_run(client, flow_name, "done", Running(), Completed(), tags=["a", "b"])
    late = make_run(client, flow_name, "late", Late(), state=Scheduled(), tags=["a"])
    failed = make_run(client, flow_name, "failed", Running(), Failed())

    def ids(*extra: str) -> set[str]:
        result = run_cli(server, "flow-run", "ls", "--flow", flow_name, "--json", *extra)
        assert result.returncode == 0, result.stderr
        return {item["id"] for item in json.loads(result.stdout)}

    assert ids("--state", "completed") == {str(done.id)}
    assert ids("--state", "LATE") == {str(late.id)}
    assert ids("--state", "Scheduled") == {str(late.id)}  # a type: Late is a SCHEDULED state
    assert ids("--state", "failed", "--state", "late") == {str(failed.id), str(late.id)}
    assert ids("--tag", "a") == {str(done.id), str(late.id)}
    assert ids("--tag", "a", "--tag", "b") == {str(done.id)}
    assert ids("--tag", "a", "--state", "completed") == {str(done.id)}
    assert ids("--limit", "2") == {str(failed.id), str(late.id)}
    bad = run_cli(server, "flow-run", "ls", "--state", "Finished")
    assert_one_line_error(bad, "unknown state 'Finished'", "COMPLETED", "Late")


def test_ls_empty(server: ServerProcess, flow_name: str) -> None:
    result = run_cli(server, "flow-run", "ls", "--flow", flow_name)
    assert result.returncode == 0
    assert result.stdout.strip() == "No flow runs."
    assert json.loads(run_cli(server, "flow-run", "ls", "--flow", flow_name, "--json").stdout) == []


def test_dead_server_is_one_line_naming_the_url() -> None:
    url = f"http://127.0.0.1:{free_port()}/api"
    for args in (("flow-run", "ls"), ("flow", "ls"), ("flow-run", "inspect", "abcdef12")):
        result = run_cli(url, *args)
        assert_one_line_error(result, url)
        assert result.stdout == ""


# --- flow-run inspect -----------------------------------------------------------------------------
def test_inspect_by_full_id_and_prefix(
    server: ServerProcess, client: SyncClient, flow_name: str
) -> None:
    parent = make_run(client, flow_name, "parent", Running())
    run = make_run(
        client, flow_name, "child", Running(), Failed(message="it broke"),
        parameters={"n": 3, "who": "world"}, tags=["nightly", "etl"], parent_flow_run_id=parent.id,
    )  # fmt: skip
    for ref in (str(run.id), run.id.hex[:8], str(run.id)[:13].upper()):
        result = run_cli(server, "flow-run", "inspect", ref)
        assert result.returncode == 0, result.stderr
        out = result.stdout
        assert f"child  {run.id}" in out
        assert f"{flow_name}  {run.flow_id}" in out
        assert "Failed  it broke" in out
        assert '{"n": 3, "who": "world"}' in out
        assert "nightly, etl" in out
        assert str(parent.id) in out
    history = [row for row in table_rows(out) if len(row) == 4]
    assert [row[1] for row in history] == ["Pending", "Running", "Failed"]
    assert history[-1][2:] == ["FAILED", "it broke"]


def test_inspect_json_has_state_history(
    server: ServerProcess, client: SyncClient, flow_name: str
) -> None:
    run = make_run(client, flow_name, "j", Running(), Completed(message="ok"))
    result = run_cli(server, "flow-run", "inspect", str(run.id)[:10], "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["id"] == str(run.id)
    assert data["run_count"] == 1
    assert [s["name"] for s in data["state_history"]] == ["Pending", "Running", "Completed"]
    assert data["state"]["message"] == "ok"


def test_inspect_bad_references(server: ServerProcess, client: SyncClient, flow_name: str) -> None:
    assert_one_line_error(run_cli(server, "flow-run", "inspect", "abc"), "'abc'", "at least 6")
    assert_one_line_error(
        run_cli(server, "flow-run", "inspect", "xyz123456"), "'xyz123456'", "not a flow run id"
    )
    missing = uuid.uuid4()
    assert_one_line_error(
        run_cli(server, "flow-run", "inspect", str(missing)), str(missing), "not found"
    )
    # No stored id starts with a prefix of an id that was never stored (one in 16^-6 chance aside).
    never = uuid.uuid4().hex[:12]
    assert_one_line_error(
        run_cli(server, "flow-run", "inspect", never), f"no flow run id starts with '{never}'"
    )


def test_inspect_ambiguous_prefix(
    server: ServerProcess, client: SyncClient, flow_name: str
) -> None:
    one = make_run(client, flow_name, "one")
    two = make_run(client, flow_name, "two")
    twin = uuid.UUID(one.id.hex[:10] + two.id.hex[10:])  # shares one's first 10 hex characters
    set_columns(server, two.id, id=twin.hex)
    result = run_cli(server, "flow-run", "inspect", one.id.hex[:8])
    assert_one_line_error(result, "ambiguous", "matches 2 flow runs", str(one.id), str(twin))
    assert run_cli(server, "flow-run", "inspect", one.id.hex[:11]).returncode == (
        0 if one.id.hex[10] != twin.hex[10] else 1
    )
    assert run_cli(server, "flow-run", "inspect", str(one.id)).returncode == 0


# --- flow-run logs --------------------------------------------------------------------------------
def _log(run: FlowRun, level: int, message: str, at: dt.datetime) -> LogCreate:
    return LogCreate(
        flow_run_id=run.id, name="tideflow.flow_runs", level=level, message=message, timestamp=at
    )


def test_logs_in_time_order_with_level_and_limit(
    server: ServerProcess, client: SyncClient, flow_name: str
) -> None:
    run = make_run(client, flow_name, "logged", Running())
    t0 = dt.datetime.now(dt.UTC)
    # Sent out of order, with a message that looks like Rich markup.
    client.create_logs([
        _log(run, 30, "third [red]not markup[/red]", t0 + dt.timedelta(seconds=2)),
        _log(run, 20, "first", t0),
        _log(run, 10, "second", t0 + dt.timedelta(seconds=1)),
        _log(run, 40, "fourth", t0 + dt.timedelta(seconds=3)),
    ])  # fmt: skip
    result = run_cli(server, "flow-run", "logs", run.id.hex[:8])
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split()[-1] for line in lines[:2]] == ["first", "second"]
    assert lines[0].split()[2] == "INFO"
    assert lines[0].startswith(t0.astimezone().strftime("%Y-%m-%d %H:%M:%S"))
    assert lines[2].endswith("WARNING  third [red]not markup[/red]")
    assert lines[3].split()[2:] == ["ERROR", "fourth"]
    warned = run_cli(
        server, "flow-run", "logs", str(run.id), "--level", "warning"
    ).stdout.splitlines()
    assert [line.split()[2] for line in warned] == ["WARNING", "ERROR"]
    assert (
        len(run_cli(server, "flow-run", "logs", str(run.id), "--level", "35").stdout.splitlines())
        == 1
    )
    tail = run_cli(server, "flow-run", "logs", str(run.id), "--limit", "2").stdout.splitlines()
    assert [line.split()[-1] for line in tail] == ["markup[/red]", "fourth"]
    bad = run_cli(server, "flow-run", "logs", str(run.id), "--level", "LOUD")
    assert_one_line_error(bad, "unknown log level 'LOUD'")


def test_logs_follow_until_final_state(
    server: ServerProcess, client: SyncClient, flow_name: str
) -> None:
    run = make_run(client, flow_name, "followed", Running())
    client.create_logs([_log(run, 20, "before", dt.datetime.now(dt.UTC))])
    env = {**os.environ, "TIDEFLOW_API_URL": server.api_url}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tideflow", "flow-run", "logs", str(run.id), "--follow"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().rstrip().endswith("INFO     before")
        client.create_logs([_log(run, 40, "while running", dt.datetime.now(dt.UTC))])
        assert proc.stdout.readline().rstrip().endswith("ERROR    while running")
        time.sleep(0.2)
        assert proc.poll() is None  # still following a Running run
        client.create_logs([_log(run, 20, "last words", dt.datetime.now(dt.UTC))])
        client.set_flow_run_state(run.id, Completed())
        rest, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert rest.splitlines()[-1].endswith("INFO     last words")
    assert len(rest.splitlines()) == 1  # nothing printed twice


def test_logs_follow_of_finished_run_returns_at_once(
    server: ServerProcess, client: SyncClient, flow_name: str
) -> None:
    run = make_run(client, flow_name, "over", Running(), Completed())
    client.create_logs([_log(run, 20, "only", dt.datetime.now(dt.UTC))])
    result = run_cli(server, "flow-run", "logs", str(run.id), "--follow", timeout=20)
    assert result.returncode == 0, result.stderr
    assert [line.split()[-1] for line in result.stdout.splitlines()] == ["only"]


# --- flow-run cancel ------------------------------------------------------------------------------
def test_cancel_without_deployment_goes_to_cancelled(
    server: ServerProcess, client: SyncClient, flow_name: str
) -> None:
    run = make_run(client, flow_name, "to-cancel", Running())
    result = run_cli(server, "flow-run", "cancel", run.id.hex[:8])
    assert result.returncode == 0, result.stderr
    assert f"{run.id}) is now Cancelled" in result.stdout
    state = client.read_flow_run(run.id).state
    assert state is not None and state.type.value == "CANCELLED"
    assert state.message == "cancelled by user"


def test_cancel_with_deployment_goes_to_cancelling(
    server: ServerProcess, client: SyncClient, flow_name: str
) -> None:
    run = make_run(client, flow_name, "deployed", state=Scheduled())
    set_columns(server, run.id, deployment_id=uuid.uuid4().hex)
    result = run_cli(server, "flow-run", "cancel", str(run.id))
    assert result.returncode == 0, result.stderr
    assert "is now Cancelling; its runner will stop it" in result.stdout
    state = client.read_flow_run(run.id).state
    assert state is not None and state.type.value == "CANCELLING"


def test_cancel_final_run_is_refused(
    server: ServerProcess, client: SyncClient, flow_name: str
) -> None:
    done = make_run(client, flow_name, "done", Running(), Completed())
    gone = make_run(client, flow_name, "gone", Running(), Cancelled())
    assert_one_line_error(run_cli(server, "flow-run", "cancel", str(done.id)), "already Completed")
    assert_one_line_error(run_cli(server, "flow-run", "cancel", str(gone.id)), "already Cancelled")
    state = client.read_flow_run(done.id).state
    assert state is not None and state.type.value == "COMPLETED"


# --- flow-run delete ------------------------------------------------------------------------------
def test_delete_needs_yes_without_a_terminal(
    server: ServerProcess, client: SyncClient, flow_name: str
) -> None:
    run = make_run(client, flow_name, "doomed", Running(), Completed())
    refused = run_cli(server, "flow-run", "delete", str(run.id))
    assert_one_line_error(refused, "pass --yes", str(run.id))
    assert client.read_flow_run(run.id).id == run.id
    result = run_cli(server, "flow-run", "delete", run.id.hex[:8], "--yes")
    assert result.returncode == 0, result.stderr
    assert f"Deleted flow run doomed ({run.id})" in result.stdout
    with pytest.raises(ObjectNotFound):
        client.read_flow_run(run.id)
    assert_one_line_error(run_cli(server, "flow-run", "delete", str(run.id), "--yes"), "not found")


def test_delete_asks_on_a_terminal(
    server: ServerProcess, client: SyncClient, flow_name: str
) -> None:
    kept = make_run(client, flow_name, "kept")
    removed = make_run(client, flow_name, "removed")
    env = {**os.environ, "TIDEFLOW_API_URL": server.api_url}
    for run, answer, code in ((kept, b"n\n", 1), (removed, b"y\n", 0)):
        leader, follower = pty.openpty()
        proc = subprocess.Popen(
            [sys.executable, "-m", "tideflow", "flow-run", "delete", str(run.id)],
            stdin=follower, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
        )  # fmt: skip
        os.close(follower)
        os.write(leader, answer)
        out, err = proc.communicate(timeout=30)
        os.close(leader)
        assert proc.returncode == code, err
        assert f"Delete flow run {run.name} ({run.id})? [y/N]".encode() in out
        assert b"Traceback" not in err
    assert client.read_flow_run(kept.id).id == kept.id
    with pytest.raises(ObjectNotFound):
        client.read_flow_run(removed.id)
