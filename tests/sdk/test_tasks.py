"""Tasks inside real flow runs (a real server subprocess): calls, submit/map and futures, dependencies,
retries, timeouts, hooks, async tasks, both task runners, runtime facts and logs."""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
import time
from typing import Any

import pytest

from tideflow import flow, runtime, task, unmapped
from tideflow.client import SyncClient
from tideflow.engine.errors import TaskRunTimeout, UpstreamTaskError
from tideflow.futures import FutureList, TaskFuture, as_completed, wait
from tideflow.schemas import LogFilter, StateType
from tideflow.task_runners import ProcessPoolTaskRunner, ThreadPoolTaskRunner
from tideflow.tasks import exponential_backoff


def _names(run: Any) -> list[str]:
    return [s.name for s in run.history]


def test_a_task_called_in_a_flow_is_a_task_run_and_outside_a_local_one() -> None:
    seen: list[Any] = []

    @task
    def double(x: int) -> int:
        seen.append((runtime.task_run.name, runtime.task_run.parameters, runtime.flow_run.name))
        return 2 * x

    @flow(flow_run_name="calls-tasks")
    def f() -> int:
        return double(2) + double(x=3)

    assert f() == 10
    assert seen == [
        ("double-0", {"x": 2}, "calls-tasks"),
        ("double-1", {"x": 3}, "calls-tasks"),
    ]
    seen.clear()
    # outside a flow: a task run in this process only (retries, caching…), none on the server
    assert double(5) == 10
    [(name, parameters, flow_run_name)] = seen
    assert name.startswith("double-") and parameters == {"x": 5} and flow_run_name is None
    assert double.fn(4) == 8


def test_runtime_task_run_is_empty_outside_a_task_run() -> None:
    assert runtime.task_run.id is None
    assert runtime.task_run.name is None
    assert runtime.task_run.parameters == {}
    assert runtime.task_run.run_count == 0
    assert runtime.task_run.tags == []


def test_submit_map_unmapped_and_futures_as_arguments() -> None:
    @task
    def add(a: int, b: int) -> int:
        return a + b

    @task
    def total(values: list[int]) -> int:
        return sum(values)

    holder: dict[str, Any] = {}

    @flow(task_runner=ThreadPoolTaskRunner(max_workers=4))
    def f(n: int) -> int:
        futures = add.map(range(n), unmapped(10))
        holder["futures"] = futures
        summed = total.submit(futures)  # a list of futures: waits for every one
        holder["summed"] = summed
        return summed.result()

    assert f(5) == sum(range(5)) + 50
    futures: FutureList[int] = holder["futures"]
    assert isinstance(futures, FutureList) and len(futures) == 5
    assert futures.result() == [10, 11, 12, 13, 14]
    assert [fut.task_run.parameters for fut in futures] == [{"a": i, "b": 10} for i in range(5)]
    summed: TaskFuture[int] = holder["summed"]
    assert summed.state.type is StateType.COMPLETED
    # the dependencies are recorded as the run's inputs (the future ids, in order)
    assert summed.task_run.task_inputs == {"values": [fut.task_run_id for fut in futures]}


def test_wait_and_as_completed() -> None:
    @task
    def sleepy(seconds: float) -> float:
        time.sleep(seconds)
        return seconds

    @flow
    def f() -> tuple[Any, ...]:
        futures = sleepy.map([0.3, 0.0, 0.1])
        order = [fut.result() for fut in as_completed(futures)]
        quick = sleepy.submit(0.0)
        slow = sleepy.submit(2.0)
        done, not_done = wait([quick, slow], timeout=0.5)
        return order, quick in done, slow in not_done

    order, quick_done, slow_pending = f()
    assert order == [0.0, 0.1, 0.3]
    assert quick_done and slow_pending


def test_map_refuses_mismatched_or_missing_iterables() -> None:
    @task
    def pair(a: int, b: int) -> int:
        return a + b

    @flow
    def mismatched() -> None:
        pair.map([1, 2], [1, 2, 3])

    @flow
    def nothing_to_map() -> None:
        pair.map(1, 2)

    with pytest.raises(ValueError, match=r"different lengths \(a: 2, b: 3\)"):
        mismatched()
    with pytest.raises(ValueError, match=r"needs at least one iterable argument"):
        nothing_to_map()


def test_an_upstream_failure_leaves_its_dependants_not_ready() -> None:
    @task
    def boom() -> int:
        raise ValueError("no data")

    @task
    def after(x: int) -> int:
        return x

    holder: dict[str, Any] = {}

    @flow
    def f() -> None:
        upstream = boom.submit()
        downstream = after.submit(upstream)
        holder["up"], holder["down"] = upstream, downstream
        downstream.wait()

    f()  # the flow did not ask for the results: it completes
    up, down = holder["up"], holder["down"]
    assert up.state.name == "Failed" and up.state.message == "ValueError: no data"
    assert down.state.type is StateType.PENDING and down.state.name == "NotReady"
    assert "upstream task run 'boom-0'" in down.state.message
    with pytest.raises(UpstreamTaskError, match="did not complete"):
        down.result()
    with pytest.raises(ValueError, match="no data"):
        up.result()
    assert isinstance(up.result(raise_on_failure=False), ValueError)


def test_retries_with_a_delay_list_then_success() -> None:
    calls: list[float] = []

    @task(retries=3, retry_delay_seconds=[0.05, 0.1, 0.2])
    def flaky() -> str:
        calls.append(time.monotonic())
        if len(calls) < 3:
            raise ConnectionError("try again")
        return "ok"

    holder: dict[str, Any] = {}

    @flow
    def f() -> str:
        fut = flaky.submit()
        holder["run"] = fut.task_run
        return fut.result()

    assert f() == "ok"
    run = holder["run"]
    assert run.run_count == 3
    assert _names(run) == [
        "Pending", "Running", "AwaitingRetry", "Retrying", "AwaitingRetry", "Retrying", "Completed",
    ]  # fmt: skip
    gaps = [b - a for a, b in itertools.pairwise(calls)]
    assert gaps[0] >= 0.05 and gaps[1] >= 0.1


def test_retries_exhausted_fail_with_the_last_error() -> None:
    @task(retries=2, retry_delay_seconds=exponential_backoff(0.01))
    def always() -> None:
        raise RuntimeError(f"attempt {runtime.task_run.run_count}")

    @flow
    def f() -> None:
        always()

    with pytest.raises(RuntimeError, match="attempt 3"):
        f()
    assert exponential_backoff(2)(3) == [2.0, 4.0, 8.0]


def test_retry_condition_fn_can_refuse_a_retry() -> None:
    calls: list[int] = []

    def only_connection_errors(tsk: Any, run: Any, state: Any) -> bool:
        return "ConnectionError" in (state.message or "")

    @task(retries=5, retry_condition_fn=only_connection_errors)
    def picky() -> None:
        calls.append(1)
        raise KeyError("not retried")

    @flow
    def f() -> None:
        picky()

    with pytest.raises(KeyError):
        f()
    assert len(calls) == 1


def test_a_task_timeout_ends_timed_out() -> None:
    holder: dict[str, Any] = {}

    @task(timeout_seconds=0.2)
    def slow() -> None:
        time.sleep(3)

    @flow
    def f() -> None:
        fut = slow.submit()
        holder["fut"] = fut
        fut.result()

    started = time.monotonic()
    with pytest.raises(TaskRunTimeout, match=r"timed out after 0\.2 s"):
        f()
    assert time.monotonic() - started < 2.5
    state = holder["fut"].state
    assert state.name == "TimedOut" and state.type is StateType.FAILED


def test_hooks_get_the_task_run_and_its_final_state() -> None:
    seen: list[tuple[str, str, str]] = []

    def on_ok(tsk: Any, run: Any, state: Any) -> None:
        seen.append(("completion", run.name, state.name))

    def on_bad(tsk: Any, run: Any, state: Any) -> None:
        seen.append(("failure", run.name, state.name))

    @task(on_completion=[on_ok], on_failure=[on_bad])
    def maybe(fail: bool) -> None:
        if fail:
            raise ValueError("asked to")

    @flow
    def f() -> None:
        maybe(False)
        maybe.submit(True).wait()

    f()
    assert seen == [("completion", "maybe-0", "Completed"), ("failure", "maybe-1", "Failed")]


def test_the_flow_run_ends_after_its_submitted_task_runs() -> None:
    finished = threading.Event()

    @task
    def background() -> None:
        time.sleep(0.3)
        finished.set()

    @flow
    def f() -> None:
        background.submit()  # never awaited by the flow

    f()
    assert finished.is_set()


def test_async_tasks_in_an_async_flow() -> None:
    @task
    async def fetch(x: int) -> int:
        await asyncio.sleep(0.01)
        return x + 1

    @flow
    async def f() -> list[int]:
        direct = await fetch(1)
        mapped = fetch.map([10, 20])
        return [direct, *mapped.result()]

    assert asyncio.run(f()) == [2, 11, 21]


def _square(x: int) -> int:
    logging.getLogger("tideflow.flow_runs").info("squaring %d", x)
    return x * x


def test_process_pool_task_runner_runs_tasks_in_other_processes(client: SyncClient) -> None:
    import os

    @task
    def pid_and_square(x: int) -> tuple[int, int]:
        return os.getpid(), _square(x)

    ids: list[Any] = []

    @flow(task_runner=ProcessPoolTaskRunner(max_workers=2))
    def f(n: int) -> list[tuple[int, int]]:
        ids.append(runtime.flow_run.id)
        return pid_and_square.map(range(n)).result()

    results = f(4)
    assert [sq for _, sq in results] == [0, 1, 4, 9]
    assert all(pid != os.getpid() for pid, _ in results)
    # the workers' log records reach the flow run's logs, attributed to their task runs
    deadline = time.monotonic() + 10
    messages: list[str] = []
    while time.monotonic() < deadline:
        logs = client.read_logs(LogFilter(flow_run_id=[ids[0]]))
        messages = [log.message for log in logs if log.message.startswith("squaring")]
        if len(messages) == 4:
            break
        time.sleep(0.2)
    assert sorted(messages) == [f"squaring {i}" for i in range(4)]
    assert all(log.task_run_id is not None for log in logs if log.message.startswith("squaring"))


def test_log_prints_per_task_and_logs_name_the_task_run(client: SyncClient) -> None:
    ids: list[Any] = []

    @task(log_prints=True)
    def chatty() -> None:
        print("hello from a task")

    @flow
    def f() -> None:
        ids.append(runtime.flow_run.id)
        chatty()

    f()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        logs = client.read_logs(LogFilter(flow_run_id=[ids[0]]))
        printed = [log for log in logs if log.message == "hello from a task"]
        if printed:
            break
        time.sleep(0.1)
    assert len(printed) == 1 and printed[0].task_run_id is not None
    assert any(log.message == "Finished in state Completed()" for log in logs)


def test_task_options_are_checked_and_with_options_copies() -> None:
    with pytest.raises(TypeError, match=r"unknown option\(s\) retrys"):
        task(retrys=2)  # type: ignore[call-overload]
    with pytest.raises(ValueError, match="retries must be an integer"):
        task(retries=-1)(lambda: None)
    with pytest.raises(ValueError, match="retry_delay_seconds must be a number"):
        task(retries=1, retry_delay_seconds=[-1])(lambda: None)
    with pytest.raises(ValueError, match="timeout_seconds must be a number > 0"):
        task(timeout_seconds=0)(lambda: None)
    with pytest.raises(TypeError, match="task_runner must be a task runner"):
        flow(task_runner="threads")(lambda: None)  # type: ignore[arg-type]

    @task(retries=1, tags=["a"])
    def base(x: int) -> int:
        return x

    copy = base.with_options(name="renamed", retries=4)
    assert (copy.name, copy.retries, copy.tags, copy.fn) == ("renamed", 4, ["a"], base.fn)
    assert (base.name, base.retries) == ("base", 1)


def test_task_run_name_template_and_bad_arguments() -> None:
    @task(task_run_name="load-{table}")
    def load(table: str) -> str:
        return runtime.task_run.name or ""

    @flow
    def f() -> str:
        return load("users")

    assert f() == "load-users"

    @flow
    def bad_call() -> None:
        load(1, 2)  # type: ignore[call-arg]

    with pytest.raises(TypeError, match="task 'load': too many positional arguments"):
        bad_call()
