"""Background tasks for real (ADR 0005): a ``tideflow server start`` process, ``tideflow task serve``
worker processes, and ``Task.delay`` from this test process. Every execution appends a line to a file,
so "exactly once" and "redelivered" are read from what ran, not from the worker's bookkeeping."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from serve_helpers import assert_one_line_error, cli_env, run_cli, wait_for
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tideflow.client import SyncClient
from tideflow.exceptions import TaskRunFailed
from tideflow.schemas import LogFilter
from tideflow.schemas.events import EventFilter
from tideflow.task_worker import load_task
from tideflow.testing import ServerProcess

pytestmark = pytest.mark.slow

TASKS = """
import os, time
from tideflow import get_run_logger, task

def note(*words):
    with open(os.environ["RUN_LOG"], "a") as fh:
        fh.write(" ".join(str(w) for w in (*words, os.getpid())) + "\\n")

@task
def add(x: int, y: int = 1) -> int:
    note("add", x)
    return x + y

@task
def record(i: int) -> int:
    note("record", i)
    time.sleep(0.05)
    return i * i

@task
def slow_once(marker: str) -> str:
    # The first delivery blocks (its worker is killed meanwhile); a redelivery returns at once.
    first = not os.path.exists(marker)
    note("slow_once", "first" if first else "again")
    if first:
        open(marker, "w").close()
        time.sleep(120)
    return "finished"

@task
async def double(x: int) -> int:
    note("double", x)
    return 2 * x

@task(retries=1)
def broken(reason: str) -> None:
    note("broken", reason)
    raise ValueError(reason)

@task(log_prints=True)
def chatty(n: int) -> int:
    get_run_logger().info("chatty got %d", n)
    print(f"printed {n}")
    return n

@task
def sleepy(marker: str) -> str:
    note("sleepy", "start")
    open(marker, "w").close()
    for _ in range(1200):  # short sleeps: a cancel lands between two of them
        time.sleep(0.05)
    note("sleepy", "end")
    return "woke"
"""


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    env = {"TIDEFLOW_TASK_WORKERS_MAX_REDELIVERIES": "2"}
    with ServerProcess(env=env) as proc:
        yield proc


@pytest.fixture
def setup(server: ServerProcess, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    tasks_file = tmp_path / "bg_tasks.py"
    tasks_file.write_text(TASKS)
    run_log = tmp_path / "runs.log"
    run_log.touch()
    extra = {"RUN_LOG": str(run_log), "TIDEFLOW_RESULTS_STORAGE": str(tmp_path / "results")}
    for key, value in {"TIDEFLOW_API_URL": server.api_url, **extra}.items():
        monkeypatch.setenv(key, value)
    workers: list[subprocess.Popen[bytes]] = []

    def start_worker(*entries: str, limit: int = 10) -> subprocess.Popen[bytes]:
        args = [f"{tasks_file}:{e}" for e in entries]
        with open(tmp_path / f"worker-{len(workers)}.out", "w") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "tideflow", "task", "serve", *args, "--limit", str(limit)],
                env=cli_env(server.api_url, **extra), stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        workers.append(proc)
        return proc

    yield {
        "file": tasks_file,
        "log": run_log,
        "tmp": tmp_path,
        "start_worker": start_worker,
        "task": lambda name: load_task(f"{tasks_file}:{name}"),
    }
    for proc in workers:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)


def _lines(log: Path, kind: str) -> list[list[str]]:
    return [line.split() for line in log.read_text().splitlines() if line.startswith(kind + " ")]


def test_delay_runs_on_a_worker_and_the_result_reads_back(setup: dict[str, Any]) -> None:
    add = setup["task"]("add")
    future = add.delay(2, y=5)  # before any worker: it waits as backlog
    assert future.state.name == "Scheduled"
    setup["start_worker"]("add", "broken", "double")
    assert future.result(timeout=60) == 7
    assert future.state.name == "Completed"
    with SyncClient() as client:
        run = client.read_task_run(future.task_run_id)
    assert [s.name for s in run.state_history] == ["Scheduled", "Pending", "Running", "Completed"]
    assert run.parameters == {"x": 2, "y": 5} and run.flow_run_id is None
    assert run.result_location is not None
    assert _lines(setup["log"], "add") == [["add", "2", _lines(setup["log"], "add")[0][2]]]

    assert setup["task"]("double").delay(21).result(timeout=60) == 42  # an async task

    named = add.with_options(task_run_name="sum-of-{x}").delay(3)
    assert named.result(timeout=60) == 4
    assert named.task_run.name == "sum-of-3"

    failing = setup["task"]("broken").delay("no luck")
    with pytest.raises(TaskRunFailed, match=r"ended Failed.*no luck"):
        failing.result(timeout=60)
    assert len(_lines(setup["log"], "broken")) == 2  # its own retry, inside one delivery
    with SyncClient() as client:
        run = client.read_task_run(failing.task_run_id)
        events = client.read_events(
            EventFilter(
                event_prefixes=["tideflow.task-run."], resource_ids=[f"tideflow.task-run.{run.id}"]
            )
        )
    assert run.run_count == 2
    assert [s.name for s in run.state_history].count("Pending") == 1
    assert {e.event for e in events.events} >= {
        "tideflow.task-run.Scheduled",
        "tideflow.task-run.Pending",
        "tideflow.task-run.Running",
        "tideflow.task-run.AwaitingRetry",
        "tideflow.task-run.Failed",
    }


def test_task_serve_runs_a_worker_and_a_signal_stops_it_cleanly(setup: dict[str, Any]) -> None:
    script = setup["tmp"] / "serve_add.py"
    script.write_text(
        f"import sys\nsys.path.insert(0, {str(setup['tmp'])!r})\nfrom bg_tasks import add\n"
        "if __name__ == '__main__':\n    add.serve(limit=2)\n"
    )
    out = setup["tmp"] / "serve_add.out"
    with open(out, "w") as fh:
        proc = subprocess.Popen(
            [sys.executable, str(script)], env=cli_env(os.environ["TIDEFLOW_API_URL"], **{
                "RUN_LOG": str(setup["log"]),
                "TIDEFLOW_RESULTS_STORAGE": os.environ["TIDEFLOW_RESULTS_STORAGE"],
            }), stdout=fh, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        assert setup["task"]("add").delay(40).result(timeout=60) == 41
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, out.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert "serving add (limit 2)" in out.read_text()


def test_a_parameter_json_cannot_hold_is_refused_by_name(setup: dict[str, Any]) -> None:
    add = setup["task"]("add")
    with pytest.raises(TypeError, match=r"parameter 'x' \(object\).*JSON"):
        add.delay(object())


def test_two_workers_fifty_runs_each_runs_exactly_once(setup: dict[str, Any]) -> None:
    first = setup["start_worker"]("record", limit=2)
    second = setup["start_worker"]("record", limit=2)
    record = setup["task"]("record")
    futures = [record.delay(i) for i in range(50)]
    assert [f.result(timeout=120) for f in futures] == [i * i for i in range(50)]
    ran = _lines(setup["log"], "record")
    assert sorted(int(words[1]) for words in ran) == list(range(50))  # each exactly once
    assert {words[2] for words in ran} == {str(first.pid), str(second.pid)}  # both took a share


def test_a_killed_workers_run_is_redelivered_to_another(setup: dict[str, Any]) -> None:
    doomed = setup["start_worker"]("slow_once")
    future = setup["task"]("slow_once").delay(str(setup["tmp"] / "marker"))
    wait_for(lambda: _lines(setup["log"], "slow_once"), timeout=60)
    assert _lines(setup["log"], "slow_once")[0][1:] == ["first", str(doomed.pid)]
    rescuer = setup["start_worker"]("slow_once")
    os.kill(doomed.pid, signal.SIGKILL)
    assert future.result(timeout=60) == "finished"
    assert [w[1:] for w in _lines(setup["log"], "slow_once")] == [
        ["first", str(doomed.pid)],
        ["again", str(rescuer.pid)],
    ]
    with SyncClient() as client:
        run = client.read_task_run(future.task_run_id)
    # (the killed worker's Running may not have been reported before it died: reports are batched)
    names = [s.name for s in run.state_history if s.name != "Running"]
    assert names == ["Scheduled", "Pending", "Scheduled", "Pending", "Completed"]
    assert run.deliveries == 2 and run.worker_id is not None
    inspected = run_cli(os.environ["TIDEFLOW_API_URL"], "task-run", "inspect", str(run.id))
    assert inspected.returncode == 0, inspected.stderr
    assert f"2, task worker {run.worker_id}" in inspected.stdout
    handed_back = [s for s in run.state_history if s.name == "Scheduled"][1]
    assert "stopped while running it; offered again (redelivery 1 of 2)" in (
        handed_back.message or ""
    )


def test_a_bad_entrypoint_is_one_line_and_exit_1(server: ServerProcess, tmp_path: Path) -> None:
    missing = run_cli(server.api_url, "task", "serve", str(tmp_path / "nope.py") + ":add")
    assert_one_line_error(missing, "nope.py does not exist")
    bad_module = run_cli(server.api_url, "task", "serve", "no_such_module_xyz:add")
    assert_one_line_error(bad_module, "cannot import module 'no_such_module_xyz'")
    not_a_task = tmp_path / "plain.py"
    not_a_task.write_text(textwrap.dedent("def add(x):\n    return x\n"))
    result = run_cli(server.api_url, "task", "serve", f"{not_a_task}:add")
    assert_one_line_error(result, "is not a task")


def test_a_bad_hello_is_refused_with_the_reason(server: ServerProcess) -> None:
    url = server.api_url.replace("http://", "ws://") + "/task_workers/ws"
    with connect(url) as ws:
        ws.send(json.dumps({"type": "hello", "worker_id": "not-a-uuid", "name": "w"}))
        answer = json.loads(ws.recv(timeout=10))
        assert answer["type"] == "error"
        assert answer["detail"].startswith("invalid hello: worker_id")
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008


def test_a_delayed_run_cancelled_before_a_worker_never_runs(setup: dict[str, Any]) -> None:
    add = setup["task"]("add")
    doomed = add.delay(100)
    api = os.environ["TIDEFLOW_API_URL"]
    result = run_cli(api, "task-run", "cancel", str(doomed.task_run_id)[:8])
    assert result.returncode == 0, result.stderr
    assert "is now Cancelled" in result.stdout
    setup["start_worker"]("add")
    assert add.delay(1).result(timeout=60) == 2  # the worker runs later runs, not the cancelled one
    assert [w[1] for w in _lines(setup["log"], "add")] == ["1"]
    assert doomed.state.name == "Cancelled"
    with pytest.raises(TaskRunFailed, match="ended Cancelled"):
        doomed.result(timeout=5)
    again = run_cli(api, "task-run", "cancel", str(doomed.task_run_id))
    assert_one_line_error(again, "is already Cancelled: nothing to cancel")


def test_a_running_delayed_run_is_stopped_by_its_worker(setup: dict[str, Any]) -> None:
    worker = setup["start_worker"]("sleepy", "add")
    marker = setup["tmp"] / "sleepy-started"
    future = setup["task"]("sleepy").delay(str(marker))
    wait_for(marker.exists, timeout=60)
    state = future.cancel()
    assert state.name in ("Cancelling", "Cancelled")
    wait_for(lambda: future.state.name == "Cancelled", timeout=30)
    assert [w[1] for w in _lines(setup["log"], "sleepy")] == ["start"]  # it never reached "end"
    with SyncClient() as client:
        run = client.read_task_run(future.task_run_id)
    names = [s.name for s in run.state_history]
    assert names[-2:] == ["Cancelling", "Cancelled"] and "Completed" not in names
    assert worker.poll() is None  # the worker lives on and takes more work
    assert setup["task"]("add").delay(4).result(timeout=60) == 5


def test_deferred_map_and_result_async(setup: dict[str, Any]) -> None:
    from tideflow import unmapped

    setup["start_worker"]("add", "double", "broken")
    add = setup["task"]("add")
    futures = add.map([1, 2, 3], unmapped(10), deferred=True)
    assert [f.result(timeout=60) for f in futures] == [11, 12, 13]

    async def from_async_code() -> list[int]:
        double = setup["task"]("double")
        delayed = [double.delay(i) for i in range(3)]
        return list(await asyncio.gather(*(f.result_async(timeout=60) for f in delayed)))

    assert asyncio.run(from_async_code()) == [0, 2, 4]
    failing = setup["task"]("broken").delay("oops")
    error = failing.result(timeout=60, raise_on_failure=False)
    assert isinstance(error, TaskRunFailed) and "oops" in str(error)


def test_a_delayed_runs_logs_reach_its_task_run(setup: dict[str, Any]) -> None:
    setup["start_worker"]("chatty")
    future = setup["task"]("chatty").delay(7)
    assert future.result(timeout=60) == 7

    def messages() -> list[str]:
        with SyncClient() as client:
            logs = client.read_logs(LogFilter(task_run_id=[future.task_run_id]))
        found = [log.message for log in logs]
        return found if {"chatty got 7", "printed 7"} <= set(found) else []

    found = wait_for(messages, timeout=30)
    assert "Finished in state Completed()" in found
    shown = run_cli(os.environ["TIDEFLOW_API_URL"], "task-run", "logs", str(future.task_run_id))
    assert shown.returncode == 0, shown.stderr
    assert "chatty got 7" in shown.stdout and "printed 7" in shown.stdout
    # ... and on its UI page, although it has no flow run
    root = os.environ["TIDEFLOW_API_URL"].removesuffix("/api")
    page = httpx.get(f"{root}/task-runs/{future.task_run_id}", timeout=30)
    assert page.status_code == 200 and "chatty got 7" in page.text and "printed 7" in page.text
