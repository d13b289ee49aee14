"""Task caching and result persistence in real flow runs: keys from policies, Cached runs that skip
the function, expiry, refresh, keys stable across processes, storage locations and serializers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tideflow import flow, task
from tideflow.cache_policies import DEFAULT, INPUTS, NO_CACHE, RUN_ID, TASK_SOURCE, KeyContext
from tideflow.results import ResultSerializationError


def test_inputs_and_source_cache_across_flow_runs(tmp_path: Path) -> None:
    calls: list[int] = []
    runs: list[Any] = []

    @task(cache_policy=INPUTS + TASK_SOURCE, result_storage=str(tmp_path / "results"))
    def expensive(x: int) -> dict[str, int]:
        calls.append(x)
        return {"x": x, "squared": x * x}

    @flow
    def f(x: int) -> dict[str, int]:
        fut = expensive.submit(x)
        runs.append(fut.task_run)
        return fut.result()

    assert f(3) == {"x": 3, "squared": 9}
    assert f(3) == {"x": 3, "squared": 9}  # a new flow run, same inputs and source: reused
    assert f(4) == {"x": 4, "squared": 16}
    assert calls == [3, 4]
    assert [r.state.name for r in runs] == ["Completed", "Cached", "Completed"]
    assert runs[1].result_location == runs[0].result_location
    assert Path(runs[0].result_location).parent == tmp_path / "results"
    assert "Running" not in [s.name for s in runs[1].history]


def test_the_default_policy_caches_within_one_flow_run_only(tmp_path: Path) -> None:
    calls: list[int] = []

    @task(persist_result=True, result_storage=str(tmp_path))
    def once_per_run(x: int) -> int:
        calls.append(x)
        return x

    @flow
    def f() -> list[int]:
        return [once_per_run(1), once_per_run(1)]

    assert f() == [1, 1] and calls == [1]
    assert f() == [1, 1] and calls == [1, 1]  # RUN_ID: a new flow run computes again
    assert once_per_run.cache_policy == DEFAULT == INPUTS + TASK_SOURCE + RUN_ID


def test_expiry_and_refresh(tmp_path: Path) -> None:
    calls: list[float] = []

    # 3 s: the second call must land within it even on a loaded machine (a flow call can take 0.5 s)
    @task(cache_policy=INPUTS, cache_expiration=3, result_storage=str(tmp_path))
    def stamp(key: str) -> float:
        calls.append(time.monotonic())
        return calls[-1]

    @flow
    def f() -> float:
        return stamp("k")

    first = f()
    assert f() == first  # within the expiration
    time.sleep(3.1)
    second = f()
    assert second != first and len(calls) == 2
    refreshed = stamp.with_options(refresh_cache=True)

    @flow
    def g() -> float:
        return refreshed("k")

    third = g()
    assert third != second and len(calls) == 3
    assert f() == third  # the refresh overwrote the stored record


def test_cache_key_fn_and_excluded_inputs(tmp_path: Path) -> None:
    calls: list[str] = []

    def by_table(context: KeyContext, parameters: dict[str, Any]) -> str:
        return f"table:{parameters['table']}"

    @task(cache_key_fn=by_table, result_storage=str(tmp_path))
    def load(table: str, limit: int) -> str:
        calls.append(table)
        return f"{table}/{limit}"

    @task(cache_policy=INPUTS - "client", result_storage=str(tmp_path))
    def fetch(url: str, client: object) -> str:
        calls.append(url)
        return url

    @flow
    def f() -> list[str]:
        return [load("users", 1), load("users", 2), fetch("u", object()), fetch("u", object())]

    assert f() == ["users/1", "users/1", "u", "u"]
    assert calls == ["users", "u"]


def test_no_cache_and_contradicting_options(tmp_path: Path) -> None:
    calls: list[int] = []

    @task(cache_policy=NO_CACHE, result_storage=str(tmp_path))
    def never(x: int) -> int:
        calls.append(x)
        return x

    @flow
    def f() -> None:
        never(1)
        never(1)

    f()
    assert calls == [1, 1]
    assert NO_CACHE + INPUTS is NO_CACHE
    with pytest.raises(ValueError, match="persist_result=False: a cache needs them stored"):
        task(cache_policy=INPUTS, persist_result=False)(lambda: None)
    with pytest.raises(ValueError, match="result_serializer must be one of"):
        task(result_serializer="yaml")(lambda: None)
    with pytest.raises(TypeError, match="cache_policy must be a cache policy"):
        task(cache_policy="inputs")(lambda: None)  # type: ignore[arg-type]


def test_an_unstorable_result_fails_the_task_run_naming_it(tmp_path: Path) -> None:
    runs: list[Any] = []

    @task(persist_result=True, result_storage=str(tmp_path))
    def makes_a_lock() -> Any:
        return threading.Lock()

    @task(persist_result=True, result_serializer="json", result_storage=str(tmp_path))
    def makes_a_set() -> Any:
        return {1, 2}

    @flow
    def f() -> None:
        for t in (makes_a_lock, makes_a_set):
            fut = t.submit()
            runs.append(fut.task_run)
            fut.wait()

    f()
    assert [r.state.name for r in runs] == ["Failed", "Failed"]
    assert "the result of task 'makes_a_lock' (lock) cannot be stored with the pickle" in (
        runs[0].state.message
    )
    assert "task 'makes_a_set' (set) cannot be stored with the json serializer" in (
        runs[1].state.message
    )

    @flow
    def g() -> None:
        makes_a_lock()

    with pytest.raises(ResultSerializationError, match="makes_a_lock"):
        g()


def test_json_records_and_fsspec_urls(tmp_path: Path) -> None:
    @task(cache_policy=INPUTS, result_serializer="json", result_storage=str(tmp_path))
    def as_json(x: int) -> dict[str, int]:
        return {"x": x}

    @task(cache_policy=INPUTS, result_storage="memory://tideflow-results")
    def in_memory(x: int) -> int:
        return x + 1

    holder: list[Any] = []

    @flow
    def f() -> None:
        holder.append(as_json.submit(5).task_run)
        holder.append(in_memory.submit(5).task_run)

    f()
    f()
    record = Path(holder[0].result_location).read_bytes()
    head, _, body = record.partition(b"\n")
    assert json.loads(head)["serializer"] == "json" and json.loads(body) == {"x": 5}
    assert holder[1].result_location.startswith("memory://tideflow-results/")
    assert [r.state.name for r in holder] == ["Completed", "Completed", "Cached", "Cached"]


SCRIPT = """
import sys
from tideflow import flow, task
from tideflow.cache_policies import INPUTS, TASK_SOURCE

@task(cache_policy=INPUTS + TASK_SOURCE)
def compute(x):
    print("COMPUTED", x, flush=True)
    return x * 10

@flow
def f(x: int):
    fut = compute.submit(x)
    return fut.result(), fut.state.name

print("RESULT", f(int(sys.argv[1])), flush=True)
"""


def test_cache_keys_are_stable_across_processes(tmp_path: Path) -> None:
    script = tmp_path / "cached_flow.py"
    script.write_text(SCRIPT)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    outputs = []
    for _ in range(2):
        proc = subprocess.run(
            [sys.executable, str(script), "7"], capture_output=True, text=True, env=env,
            timeout=120, cwd=tmp_path,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        outputs.append(proc.stdout)
    assert "COMPUTED 7" in outputs[0] and "RESULT (70, 'Completed')" in outputs[0]
    assert "COMPUTED" not in outputs[1] and "RESULT (70, 'Cached')" in outputs[1]
    assert list((Path(env["TIDEFLOW_HOME"]) / "results").iterdir())  # the default storage
