"""Prefect 3's documented task examples (how-to guides "run work concurrently", "cache workflow step
outputs", "automatically rerun", "run background tasks"; concept pages tasks, task runners, caching,
states), rewritten in our words with the same API calls and ``prefect`` → ``tideflow``, run against a
real server: a Prefect user's task code works here with only the import names changed."""

from __future__ import annotations

import asyncio
import itertools
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tideflow import allow_failure, flow, get_run_logger, runtime, task, unmapped
from tideflow.cache_policies import INPUTS, NO_CACHE, TASK_SOURCE
from tideflow.client import SyncClient
from tideflow.futures import as_completed, wait
from tideflow.schemas import LogFilter
from tideflow.schemas.task_runs import TaskRunFilter
from tideflow.states import Completed, Failed, State
from tideflow.task_runners import ThreadPoolTaskRunner
from tideflow.tasks import exponential_backoff, task_input_hash
from tideflow.utilities.annotations import opaque, quote


@pytest.fixture(autouse=True)
def _results_here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    # Cached results of one test must not answer another's calls.
    monkeypatch.setenv("TIDEFLOW_RESULTS_STORAGE", str(tmp_path / "results"))
    yield tmp_path / "results"


def _task_runs(client: SyncClient, flow_run_id: Any) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while True:  # task-run states reach the server in batches (ADR 0002)
        runs = client.read_task_runs(TaskRunFilter(flow_run_id=[flow_run_id]))
        if runs and all(r.state is not None and r.state.is_final for r in runs):
            return {r.name: r for r in runs}
        if time.monotonic() > deadline:
            return {r.name: r for r in runs}
        time.sleep(0.1)


# --- run work concurrently ---------------------------------------------------------------------------
def test_submit_then_wait_for_the_futures() -> None:
    stops: list[float] = []

    @task
    def stop_at_floor(floor: float) -> None:
        print(f"elevator moving to floor {floor}")
        time.sleep(floor)
        stops.append(floor)
        print(f"elevator stops on floor {floor}")

    @flow
    def elevator() -> list[str]:
        floors = []
        for floor in range(10, 0, -1):
            floors.append(stop_at_floor.submit(floor / 100))
        done, not_done = wait(floors)
        assert len(done) == 10 and not not_done
        return [f.state.name for f in floors]

    assert elevator() == ["Completed"] * 10
    assert sorted(stops) == [f / 100 for f in range(1, 11)]


def test_thread_pool_with_max_workers() -> None:
    busy = {"now": 0, "most": 0}
    lock = threading.Lock()

    @task
    def stop_at_floor(floor: int) -> int:
        with lock:
            busy["now"] += 1
            busy["most"] = max(busy["most"], busy["now"])
        time.sleep(0.2)
        with lock:
            busy["now"] -= 1
        return floor

    @flow(task_runner=ThreadPoolTaskRunner(max_workers=3))
    def elevator() -> None:
        floors = []
        for floor in range(10, 0, -1):
            floors.append(stop_at_floor.submit(floor))
        wait(floors)  # wait for the sequence of futures to complete

    elevator()
    assert busy["most"] == 3


def test_future_result_wait_and_futures_between_tasks() -> None:
    said: list[str] = []

    @task
    def cool_task() -> str:
        return "sup"

    @task
    def what_did_cool_task_say(what_it_said: str) -> str:
        return f"cool task said {what_it_said}"

    @flow
    def my_workflow() -> None:
        future = cool_task.submit()
        said.append(future.result())
        other = cool_task.submit()
        other.wait()
        assert other.state.is_completed()
        futures = [cool_task.submit() for _ in range(10)]
        wait(futures)
        said.append(what_did_cool_task_say(cool_task.submit()))

    my_workflow()
    assert said == ["sup", "cool task said sup"]


def test_a_future_passed_to_submit_resolves_to_its_value() -> None:
    printed: list[tuple[type, str]] = []

    @task
    def say_hello(name: str) -> str:
        return f"Hello {name}!"

    @task
    def print_result(result: Any) -> None:
        printed.append((type(result), result))

    @flow(name="hello-flow")
    def hello_world() -> None:
        future = say_hello.submit("Marvin")
        print_result.submit(future).wait()

    hello_world()
    assert printed == [(str, "Hello Marvin!")]


def test_map_then_wait_and_as_completed() -> None:
    @task
    def stop_at_floor(floor: int) -> int:
        time.sleep(floor / 1000)
        return floor

    @flow
    def elevator() -> tuple[list[int], list[int]]:
        floors = list(range(10, 0, -1))
        futures = stop_at_floor.map(floors)
        wait(futures)
        finished = [f.result() for f in as_completed(futures)]
        return futures.result(), finished

    ordered, finished = elevator()
    assert ordered == list(range(10, 0, -1))
    assert sorted(finished) == list(range(1, 11))


def test_async_tasks_gathered_with_asyncio() -> None:
    stops: list[int] = []

    @task
    async def stop_at_floor(floor: int) -> int:
        await asyncio.sleep(floor / 100)
        stops.append(floor)
        return floor

    @flow
    async def elevator() -> list[int]:
        floors = list(range(10, 0, -1))
        return await asyncio.gather(*[stop_at_floor(floor) for floor in floors])

    assert asyncio.run(elevator()) == list(range(10, 0, -1))
    assert stops == list(range(1, 11))  # they ran together: the shortest sleep finished first


def test_result_without_raising_and_the_future_state() -> None:
    @task
    def my_task() -> str:
        raise ValueError("I'm a failing task!")

    @flow
    def my_flow() -> str:
        future = my_task.submit()
        result = future.result(raise_on_failure=False)
        if future.state.is_failed():
            assert isinstance(result, ValueError)
            return f"handled: {result}"
        return "no failure?"

    assert my_flow() == "handled: I'm a failing task!"


def test_wait_for_and_allow_failure() -> None:
    order: list[str] = []

    @task
    def extract() -> str:
        time.sleep(0.05)
        order.append("extract")
        return "data"

    @task
    def breaks() -> None:
        raise RuntimeError("upstream broke")

    @task
    def load() -> str:
        order.append(runtime.task_run.name or "")
        return "loaded"

    @task
    def clean_up(previous: Any) -> str:
        return f"cleaned after {type(previous).__name__}"

    @flow
    def pipeline() -> tuple[str, str, str]:
        first = extract.submit()
        loaded = load.submit(wait_for=[first])  # a state dependency without passing data
        failing = breaks.submit()
        cleaned = clean_up.submit(allow_failure(failing))
        also = load(wait_for=[allow_failure(failing)])
        return loaded.result(), cleaned.result(), also

    assert pipeline() == ("loaded", "cleaned after RuntimeError", "loaded")
    assert order.index("extract") < order.index("load-0")  # the submitted load waited


def test_map_over_several_iterables_with_unmapped() -> None:
    @task
    def add(a: int, b: int) -> int:
        return a + b

    @task
    def scale(x: int, factors: list[int]) -> list[int]:
        return [x * f for f in factors]

    @flow
    def math() -> tuple[list[int], list[list[int]]]:
        sums = add.map([1, 2, 3], [4, 5, 6])
        scaled = scale.map([1, 2], unmapped([10, 100]))
        return sums.result(), scaled.result()

    assert math() == ([5, 7, 9], [[10, 100], [20, 200]])


def test_dask_task_runner_runs_the_elevator() -> None:
    pytest.importorskip("distributed", reason="the dask extra is not installed")
    from tideflow_dask.task_runners import DaskTaskRunner  # as `prefect_dask.task_runners`

    @task
    def stop_at_floor(floor: int) -> int:
        time.sleep(floor / 1000)
        return floor * 10

    @flow(task_runner=DaskTaskRunner(cluster_kwargs={"n_workers": 2, "threads_per_worker": 1}))
    def elevator() -> list[int]:
        floors = []
        for floor in range(10, 0, -1):
            floors.append(stop_at_floor.submit(floor))
        wait(floors)
        return [f.result() for f in floors]

    assert elevator() == [f * 10 for f in range(10, 0, -1)]


# --- tasks concept: direct calls, submit, quote and opaque -------------------------------------------
def test_a_task_called_outside_a_flow_returns_its_value() -> None:
    @task
    def add_integers(a: int, b: int) -> int:
        return a + b

    @flow
    def my_flow() -> int:
        future = add_integers.submit(1, 2)  # returns immediately
        return future.result()

    assert add_integers(1, 2) == 3
    assert my_flow() == 3


@dataclass
class Pipeline:
    base_rate: float
    adjusted_rate: float = 0.0

    def __post_init__(self) -> None:
        self.adjusted_rate = self.base_rate * 1.5


def test_quote_passes_an_argument_untouched_and_opaque_resolves_without_traversing() -> None:
    seen: list[Any] = []

    @task
    def run_pipeline(pipeline: Pipeline) -> None:
        seen.append(pipeline)

    @task
    def build_pipeline(base_rate: float) -> Pipeline:
        return Pipeline(base_rate=base_rate)

    @flow
    def my_flow() -> None:
        pipeline = Pipeline(base_rate=100.0)
        run_pipeline(quote(pipeline))
        future = build_pipeline.submit(100.0)
        run_pipeline.submit(opaque(future)).wait()
        run_pipeline(quote([pipeline]))  # the list itself, not searched

    my_flow()
    assert seen[0].adjusted_rate == 150.0 and isinstance(seen[0], Pipeline)
    assert isinstance(seen[1], Pipeline) and seen[1].adjusted_rate == 150.0
    assert isinstance(seen[2], list) and seen[2][0] is seen[0]


# --- caching -----------------------------------------------------------------------------------------
def test_persist_result_caches_within_the_flow_run(client: SyncClient) -> None:
    calls: list[int] = []

    @task(persist_result=True)
    def add_one(x: int) -> int:
        calls.append(x)
        return x + 1

    @flow
    def my_flow() -> tuple[int, int, int, Any]:
        return add_one(1), add_one(1), add_one(2), runtime.flow_run.id

    *values, run_id = my_flow()
    assert values == [2, 2, 3]
    assert calls == [1, 2]  # the second add_one(1) was cached
    runs = _task_runs(client, run_id)
    assert [runs[n].state_name for n in ("add_one-0", "add_one-1", "add_one-2")] == [
        "Completed",
        "Cached",
        "Completed",
    ]
    my_flow()  # the DEFAULT policy includes the flow run: a new run computes again
    assert calls == [1, 2, 1, 2]


def test_the_default_policy_outside_a_flow_shares_nothing() -> None:
    calls: list[int] = []

    @task(persist_result=True)
    def add_one(x: int) -> int:
        calls.append(x)
        return x + 1

    assert add_one(1) == add_one(1) == 2
    assert calls == [1, 1]  # DEFAULT keys on the run: outside a flow, each task run is its own


def test_cache_on_inputs_outside_a_flow() -> None:
    calls: list[int] = []

    @task(cache_policy=INPUTS)
    def my_stateful_task(x: int) -> int:
        calls.append(x)
        return x + 1

    assert [my_stateful_task(x=1), my_stateful_task(x=1), my_stateful_task(x=2)] == [2, 2, 3]
    assert calls == [1, 2]


def test_cache_on_a_subset_of_inputs() -> None:
    calls: list[tuple[int, bool]] = []

    @task(cache_policy=INPUTS - "debug")
    def my_stateful_task(x: int, debug: bool = False) -> int:
        calls.append((x, debug))
        return x + 1

    my_stateful_task(x=1)
    my_stateful_task(x=1, debug=True)
    my_stateful_task(x=1, debug=False)
    assert calls == [(1, False)]


def test_cache_expiration() -> None:
    calls: list[int] = []

    @task(cache_policy=INPUTS, cache_expiration=timedelta(seconds=2))
    def my_stateful_task(x: int) -> int:
        calls.append(x)
        return x + 1

    my_stateful_task(x=1)
    my_stateful_task(x=1)
    assert calls == [1]
    time.sleep(2.1)
    my_stateful_task(x=1)  # the record expired: runs again
    assert calls == [1, 1]


def test_refresh_cache_and_combined_policies() -> None:
    @task(cache_policy=TASK_SOURCE, refresh_cache=True)
    def never_caching_task() -> float:
        return random.random()

    @task(cache_policy=TASK_SOURCE, refresh_cache=False)
    def caching_task() -> float:
        return random.random()

    @task(cache_policy=INPUTS + TASK_SOURCE)
    def my_task(x: int) -> float:
        return x + random.random()

    assert never_caching_task() != never_caching_task()
    assert caching_task() == caching_task()
    assert my_task(1) == my_task(1) != my_task(2)


def test_no_cache_policy_never_caches() -> None:
    @task(cache_policy=NO_CACHE)
    def fresh() -> float:
        return random.random()

    assert fresh() != fresh()


def test_cache_key_functions() -> None:
    calls: list[int] = []
    contexts: list[Any] = []

    def static_cache_key(context: Any, parameters: dict[str, Any]) -> str:
        contexts.append((context.task.name, context.task_run_id, parameters))
        return "static cache key"

    @task(cache_key_fn=static_cache_key)
    def my_cached_task(x: int) -> int:
        calls.append(x)
        return x + 1

    @task(cache_key_fn=task_input_hash, cache_expiration=timedelta(days=1))
    def hello_task(name_input: str) -> str:
        calls.append(len(name_input))
        return f"hello {name_input}"

    assert my_cached_task(1) == 2
    assert my_cached_task(5) == 2  # one key for every call
    assert calls == [1]
    assert contexts[0][0] == "my_cached_task" and contexts[0][1] is not None
    assert contexts[0][2] == {"x": 1}
    assert hello_task("marvin") == hello_task("marvin") == "hello marvin"
    assert hello_task("arthur") == "hello arthur"
    assert calls == [1, 6, 6]


def test_cache_records_in_their_own_key_storage(tmp_path: Path, _results_here: Path) -> None:
    keys = tmp_path / "cache-keys"
    calls: list[int] = []

    @task(cache_policy=INPUTS.configure(key_storage=str(keys)))
    def my_cached_task(x: int) -> int:
        calls.append(x)
        return x + 42

    assert my_cached_task(1) == my_cached_task(1) == 43
    assert calls == [1]
    assert len(list(keys.iterdir())) == 1  # the record, apart from the result it points to
    assert len(list(_results_here.iterdir())) == 1
    for record in keys.iterdir():
        record.unlink()  # deleting the cache records leaves the results, and forgets the cache
    assert my_cached_task(1) == 43
    assert calls == [1, 1]


# --- retries -----------------------------------------------------------------------------------------
def test_retries_with_a_list_of_delays_and_exponential_backoff() -> None:
    attempts: list[float] = []

    @task(retries=4, retry_delay_seconds=[0.01, 0.02, 0.04, 0.08])
    def melancholic_task() -> None:
        attempts.append(time.monotonic())
        raise Exception("We used to see each other so much more often")

    @task(retries=3, retry_delay_seconds=exponential_backoff(backoff_factor=0.02))
    def backing_off() -> str:
        attempts.append(time.monotonic())
        if len(attempts) < 5 + 3:
            raise Exception("not yet")
        return "done"

    @flow
    def my_workflow() -> dict[str, Any]:
        state = melancholic_task(return_state=True)
        return {"state": state, "value": backing_off.submit().result()}

    out = my_workflow()
    state, value = out["state"], out["value"]
    assert state.is_failed() and state.name == "Failed"
    with pytest.raises(Exception, match="so much more often"):
        state.result()
    assert value == "done"
    assert len(attempts) == 5 + 3
    gaps = [b - a for a, b in itertools.pairwise(attempts[5:])]
    assert gaps[0] >= 0.02 and gaps[1] >= 0.04  # 0.02 * 2**n


def test_retry_condition_fn_reads_the_error_from_the_state() -> None:
    seen: list[int] = []

    def retry_handler(task: Any, task_run: Any, state: State) -> bool:
        """Retry unless the HTTP status code is 401 or 404."""
        try:
            state.result()
        except httpx.HTTPStatusError as exc:
            return exc.response.status_code not in [401, 404]
        except httpx.ConnectError:
            return False
        except Exception:
            return True
        return False

    @task(retries=1, retry_condition_fn=retry_handler)
    def api_call_task(status: int) -> dict[str, int]:
        seen.append(status)
        response = httpx.Response(status, request=httpx.Request("GET", "https://example.test"))
        response.raise_for_status()
        return {"status": status}

    @flow
    def my_workflow() -> list[str]:
        return [api_call_task(status=s, return_state=True).name for s in (404, 500, 200)]

    assert my_workflow() == ["Failed", "Failed", "Completed"]
    assert seen == [404, 500, 500, 200]  # 404 was not retried, 500 once


def test_retry_jitter_factor() -> None:
    last_run_time = [0.0]
    gaps: list[float] = []

    @task(
        retries=3,
        retry_delay_seconds=exponential_backoff(backoff_factor=0.01),
        retry_jitter_factor=3,
    )
    def some_task_with_exponential_backoff_retries() -> str:
        now = time.monotonic()
        if last_run_time[0]:
            gaps.append(now - last_run_time[0])
        last_run_time[0] = now
        if len(gaps) < 2:
            raise Exception("I could fail some more")
        return "That's enough failure"

    @flow
    def f() -> str:
        return some_task_with_exponential_backoff_retries()

    assert f() == "That's enough failure"
    assert gaps[0] >= 0.01 and gaps[1] >= 0.02


# --- states ------------------------------------------------------------------------------------------
def test_a_task_returning_a_state_and_return_state() -> None:
    @task
    def toggle_task(fail: bool) -> State:
        if fail:
            return Failed(message="I was instructed to fail.")
        return Completed(message="I was instructed to succeed.")

    @task
    def add_one(x: int) -> int:
        return x + 1

    @flow
    def example() -> tuple[State, State]:
        state_one = toggle_task(fail=True)  # this run ends Failed
        state_two = toggle_task(fail=False)  # this one Completed
        return state_one, state_two  # and the flow run fails: it returns a Failed state

    @flow
    def my_flow() -> None:
        result = add_one(1)
        assert isinstance(result, int) and result == 2
        state = add_one(1, return_state=True)
        assert state.is_completed() is True
        assert state.result() == 2

    flow_state = example(return_state=True)
    assert flow_state.is_failed() and flow_state.message == "1/2 states failed."
    one, two = flow_state.result(raise_on_failure=False)
    assert one.is_failed() and two.is_completed()
    assert my_flow(return_state=True).is_completed()


def test_a_failed_task_with_return_state_does_not_raise() -> None:
    @task
    def breaks() -> None:
        raise ValueError("nope")

    @flow
    def f() -> str:
        state = breaks(return_state=True)
        submitted = breaks.submit(return_state=True)
        assert submitted.is_failed()
        return f"{state.name}: {state.message}"

    assert f() == "Failed: ValueError: nope"
    state = f(return_state=True)
    assert state.is_completed() and state.result() == "Failed: ValueError: nope"


# --- options, runtime, logging -----------------------------------------------------------------------
def test_with_options_runtime_and_run_logger(client: SyncClient) -> None:
    @task(name="Bake", retries=0)
    def bake(item: str) -> str:
        logger = get_run_logger()
        logger.info("baking %s in %s", item, runtime.task_run.name)
        return f"{runtime.task_run.task_name}:{item}"

    quick = bake.with_options(name="Quick bake", tags=["oven"], retries=2)

    @flow
    def kitchen() -> tuple[str, str, Any]:
        return bake("bread"), quick("toast"), runtime.flow_run.id

    slow, fast, run_id = kitchen()
    assert (slow, fast) == ("Bake:bread", "Quick bake:toast")
    assert quick.retries == 2 and quick.tags == ["oven"] and bake.retries == 0
    runs = _task_runs(client, run_id)
    assert runs["Quick bake-0"].tags == ["oven"]
    deadline = time.monotonic() + 10
    while True:
        logs = client.read_logs(LogFilter(task_run_id=[runs["Bake-0"].id]))
        if any("baking bread in Bake-0" in log.message for log in logs) or (
            time.monotonic() > deadline
        ):
            break
        time.sleep(0.1)
    assert any("baking bread in Bake-0" in log.message for log in logs)


# --- state change hooks ------------------------------------------------------------------------------
def test_on_running_hooks_as_an_option_and_a_decorator() -> None:
    started: list[tuple[str, str, int]] = []

    def record_start_time(task: Any, task_run: Any, state: State) -> None:
        started.append((task.name, state.name, task_run.run_count))

    @task(on_running=[record_start_time])
    def my_task() -> str:
        return "hello"

    @task(retries=2)
    def another_task() -> str:
        if len(started) < 3:
            raise RuntimeError("once more")
        return "world"

    @another_task.on_running
    def log_start(task: Any, task_run: Any, state: State) -> None:
        started.append((task.name, state.name, task_run.run_count))

    done: list[str] = []

    @another_task.on_completion
    def finished(task: Any, task_run: Any, state: State) -> None:
        done.append(state.name)

    @flow
    def my_flow() -> tuple[str, str]:
        return my_task(), another_task()

    assert my_flow() == ("hello", "world")
    # once per attempt, before the body: the first try and each retry
    assert started == [
        ("my_task", "Running", 1),
        ("another_task", "Running", 1),
        ("another_task", "Retrying", 2),
    ]
    assert done == ["Completed"]


def test_hooks_given_kwargs_with_partial_and_with_options() -> None:
    from functools import partial

    data: dict[str, Any] = {}

    def my_hook(task: Any, task_run: Any, state: State, **kwargs: Any) -> None:
        data.update(state=state, **kwargs)

    @task
    def bad_task() -> None:
        raise ValueError("meh")

    @flow
    def ok_with_failure_flow(x: str = "foo", y: int = 42) -> tuple[str, State]:
        bad_task_with_a_hook = bad_task.with_options(
            on_failure=[partial(my_hook, **dict(x=x, y=y))]
        )
        # the task run's state in a tuple: the flow returns without raising
        return "bar", bad_task_with_a_hook(return_state=True)

    _, task_run_state = ok_with_failure_flow()
    assert data == {"x": "foo", "y": 42, "state": task_run_state}
    assert task_run_state.is_failed()


# --- settings the guides name ------------------------------------------------------------------------
def test_default_retries_and_delays_from_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    # As `prefect config set PREFECT_TASK_DEFAULT_RETRIES=2` and `..._RETRY_DELAY_SECONDS="1,10,100"`
    monkeypatch.setenv("TIDEFLOW_TASK_DEFAULT_RETRIES", "2")
    monkeypatch.setenv("TIDEFLOW_TASK_DEFAULT_RETRY_DELAY_SECONDS", "0.01,0.02")
    attempts: list[float] = []

    @task
    def uses_the_defaults() -> None:
        attempts.append(time.monotonic())
        raise RuntimeError("still failing")

    @task(retries=0)
    def says_no_retries() -> None:
        attempts.append(time.monotonic())
        raise RuntimeError("once")

    @flow
    def f() -> tuple[State, State]:
        return uses_the_defaults(return_state=True), says_no_retries(return_state=True)

    first, second = f(return_state=True).result(raise_on_failure=False)
    assert first.is_failed() and second.is_failed()
    assert len(attempts) == 3 + 1  # two retries by default, none where the task says so
    assert attempts[2] - attempts[1] >= 0.02
    attempts.clear()
    uses_the_defaults(return_state=True)  # outside a flow too
    assert len(attempts) == 3


def test_refresh_cache_for_all_tasks_from_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    @task(cache_policy=TASK_SOURCE)
    def follows_the_setting() -> float:
        return random.random()

    @task(cache_policy=TASK_SOURCE, refresh_cache=False)
    def caching_task() -> float:
        return random.random()

    first, kept = follows_the_setting(), caching_task()
    assert follows_the_setting() == first
    monkeypatch.setenv("TIDEFLOW_TASKS_REFRESH_CACHE", "true")
    assert follows_the_setting() != first  # recomputed, and stored again
    assert caching_task() == kept  # refresh_cache=False: reads its cache still
