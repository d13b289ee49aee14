"""Retries (AwaitingRetry → Retrying, run_count, delays) and timeouts (TimedOut) on a real server."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest
from sdk_helpers import run_script, state_names

from tideflow import flow
from tideflow.client import SyncClient
from tideflow.engine.errors import FlowRunTimeout
from tideflow.exceptions import TideflowError
from tideflow.runtime import flow_run


def test_retries_until_success_with_run_count(client: SyncClient) -> None:
    counts: list[int] = []
    ids: list[Any] = []

    @flow(retries=3, retry_delay_seconds=0.05)
    def flaky_twice() -> str:
        counts.append(flow_run.run_count)
        ids.append(flow_run.id)
        if len(counts) < 3:
            raise ConnectionError(f"attempt {len(counts)}")
        return "ok"

    assert flaky_twice() == "ok"
    assert counts == [1, 2, 3]
    assert state_names(client, ids[0]) == [
        "Pending", "Running", "AwaitingRetry", "Retrying", "AwaitingRetry", "Retrying", "Completed",
    ]  # fmt: skip
    assert client.read_flow_run(ids[0]).run_count == 3


def test_retries_exhausted_fail_with_the_last_error(client: SyncClient) -> None:
    ids: list[Any] = []

    @flow(retries=1)
    def always_fails() -> None:
        ids.append(flow_run.id)
        raise ValueError(f"bad {flow_run.run_count}")

    with pytest.raises(ValueError, match="bad 2"):
        always_fails()
    states = client.read_flow_run_states(ids[0])
    assert [s.name for s in states] == ["Pending", "Running", "AwaitingRetry", "Retrying", "Failed"]
    assert states[-1].message == "ValueError: bad 2"
    assert client.read_flow_run(ids[0]).run_count == 2


def test_retry_delay_list_gives_one_delay_per_retry(client: SyncClient) -> None:
    stamps: list[float] = []
    ids: list[Any] = []

    @flow(retries=2, retry_delay_seconds=[0.1, 0.4])
    def delayed() -> None:
        stamps.append(time.monotonic())
        ids.append(flow_run.id)
        raise RuntimeError("again")

    with pytest.raises(RuntimeError):
        delayed()
    assert len(stamps) == 3
    assert stamps[1] - stamps[0] >= 0.1 and stamps[2] - stamps[1] >= 0.4
    states = client.read_flow_run_states(ids[0])
    waits = [s for s in states if s.name == "AwaitingRetry"]
    gaps = [(w.details.scheduled_time - w.timestamp).total_seconds() for w in waits]  # type: ignore[operator]
    assert 0.05 < gaps[0] < 0.35 and 0.3 < gaps[1] < 0.7, gaps


def test_async_retries(client: SyncClient) -> None:
    counts: list[int] = []

    @flow(retries=1, retry_delay_seconds=0)
    async def aflaky() -> int:
        counts.append(flow_run.run_count)
        if len(counts) == 1:
            raise OSError("first")
        return flow_run.run_count

    assert asyncio.run(aflaky()) == 2 and counts == [1, 2]


def test_sync_timeout_in_a_thread_ends_timed_out(client: SyncClient) -> None:
    # Under pytest an interval timer is already armed (pytest-timeout), so the worker-thread path runs.
    ids: list[Any] = []

    @flow(timeout_seconds=0.3)
    def sleeps_too_long() -> None:
        ids.append(flow_run.id)
        time.sleep(5)

    started = time.monotonic()
    with pytest.raises(FlowRunTimeout, match=r"timed out after 0\.3 seconds") as info:
        sleeps_too_long()
    assert time.monotonic() - started < 3
    assert isinstance(info.value, TimeoutError) and isinstance(info.value, TideflowError)
    states = client.read_flow_run_states(ids[0])
    assert states[-1].name == "TimedOut" and states[-1].type.value == "FAILED"
    assert states[-1].message == "Flow run exceeded timeout of 0.3 seconds"


def test_sync_timeout_from_a_non_main_thread(client: SyncClient) -> None:
    box: dict[str, Any] = {}

    @flow(timeout_seconds=0.2)
    def slow() -> None:
        box["id"] = flow_run.id
        time.sleep(3)

    def target() -> None:
        try:
            slow()
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(5)
    assert isinstance(box["error"], FlowRunTimeout)
    assert state_names(client, box["id"])[-1] == "TimedOut"


def test_a_timed_out_attempt_is_retried(client: SyncClient) -> None:
    counts: list[int] = []

    @flow(timeout_seconds=0.2, retries=1)
    def slow_then_fast() -> str:
        counts.append(flow_run.run_count)
        if len(counts) == 1:
            time.sleep(2)
        return "fast"

    assert slow_then_fast() == "fast" and counts == [1, 2]


def test_async_timeout(client: SyncClient) -> None:
    ids: list[Any] = []

    @flow(timeout_seconds=0.2)
    async def asleeps() -> None:
        ids.append(flow_run.id)
        await asyncio.sleep(5)

    started = time.monotonic()
    with pytest.raises(FlowRunTimeout, match=r"timed out after 0\.2 seconds"):
        asyncio.run(asleeps())
    assert time.monotonic() - started < 3
    assert state_names(client, ids[0]) == ["Pending", "Running", "TimedOut"]


def test_async_flow_raising_its_own_timeout_error_is_a_failure(client: SyncClient) -> None:
    @flow(timeout_seconds=10)
    async def own_timeout() -> None:
        raise TimeoutError("mine")

    with pytest.raises(TimeoutError, match="mine") as info:
        asyncio.run(own_timeout())
    assert not isinstance(info.value, FlowRunTimeout)


SIGALRM_SCRIPT = """
import time
from tideflow import flow
from tideflow.runtime import flow_run
from tideflow.client import SyncClient

@flow(timeout_seconds=0.5)
def stuck():
    print("RUN", flow_run.id, flush=True)
    try:
        time.sleep(30)
    except Exception:
        print("swallowed", flush=True)   # a broad except in user code must not swallow the timeout
        time.sleep(30)

t = time.monotonic()
try:
    stuck()
except TimeoutError as exc:
    print("CAUGHT", type(exc).__name__, round(time.monotonic() - t, 1), flush=True)
"""


def test_sync_timeout_in_main_thread_interrupts_with_sigalrm(
    sdk_server: Any, client: SyncClient
) -> None:
    proc = run_script(SIGALRM_SCRIPT, {"TIDEFLOW_API_URL": sdk_server.api_url})
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    run_id = lines[0].split()[1]
    assert "swallowed" not in proc.stdout
    caught = lines[-1].split()
    assert caught[:2] == ["CAUGHT", "FlowRunTimeout"] and float(caught[2]) < 3
    assert state_names(client, run_id)[-1] == "TimedOut"  # type: ignore[arg-type]
