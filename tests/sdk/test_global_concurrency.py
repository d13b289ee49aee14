"""concurrency() / rate_limit() against a real server: at most N holders at once across threads and
processes, the lease renewed while held, a kill -9'd holder's slots back after its lease, timeouts,
missing limits, rate limits that drain, and the async pairs."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
import uuid

import pytest

from tideflow.client import SyncClient
from tideflow.concurrency import (
    ConcurrencySlotTimeout,
    aconcurrency,
    arate_limit,
    concurrency,
    rate_limit,
)
from tideflow.exceptions import ObjectNotFound
from tideflow.schemas.global_concurrency import GlobalConcurrencyLimitCreate


def _limit(client: SyncClient, limit: int, decay: float = 0.0) -> str:
    name = f"gcl-{uuid.uuid4().hex[:8]}"
    client.create_global_concurrency_limit(
        GlobalConcurrencyLimitCreate(name=name, limit=limit, slot_decay_per_second=decay)
    )
    return name


def test_at_most_the_limit_hold_slots_at_once(client: SyncClient) -> None:
    name = _limit(client, 2)
    inside, most = 0, 0
    lock = threading.Lock()

    def work() -> None:
        nonlocal inside, most
        with concurrency(name):
            with lock:
                inside += 1
                most = max(most, inside)
            time.sleep(0.3)
            with lock:
                inside -= 1

    threads = [threading.Thread(target=work) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert most == 2
    assert client.read_global_concurrency_limit(name).active_slots == 0


def test_occupy_and_timeout_and_the_lease_is_renewed_while_held(client: SyncClient) -> None:
    name = _limit(client, 3)
    with concurrency(name, occupy=2, lease_seconds=0.6):
        time.sleep(1.5)  # past two lease lengths: the renewer keeps it
        assert client.read_global_concurrency_limit(name).active_slots == 2
        with pytest.raises(ConcurrencySlotTimeout, match=f"no free slots of '{name}'"):
            with concurrency(name, occupy=2, timeout_seconds=0.5):
                pass
        with concurrency(name, occupy=1, timeout_seconds=5):
            assert client.read_global_concurrency_limit(name).active_slots == 3
    assert client.read_global_concurrency_limit(name).active_slots == 0


HOLDER = """
import sys, time
from tideflow.concurrency import concurrency
with concurrency(sys.argv[1], occupy=1, lease_seconds=1.5):
    print("held", flush=True)
    time.sleep(600)
"""


def test_a_killed_holder_frees_its_slot_when_the_lease_runs_out(
    client: SyncClient, _point_at_server: str
) -> None:
    name = _limit(client, 1)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, name], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        with pytest.raises(ConcurrencySlotTimeout):
            with concurrency(name, timeout_seconds=0.3):
                pass
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        started = time.monotonic()
        with concurrency(name, timeout_seconds=15):
            waited = time.monotonic() - started
    finally:
        proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    assert waited < 10  # the lease ran out (1.5 s after its last renewal); no stuck slot


def test_missing_limits_pass_unless_strict(client: SyncClient) -> None:
    with concurrency("no-such-limit-anywhere"):
        pass
    with pytest.raises(ObjectNotFound, match="tideflow gcl create no-such-limit-anywhere"):
        with concurrency("no-such-limit-anywhere", strict=True):
            pass


def test_rate_limit_spaces_calls_by_the_decay(client: SyncClient) -> None:
    name = _limit(client, 1, decay=5.0)  # one call per 0.2 s
    started = time.monotonic()
    for _ in range(4):
        rate_limit(name)
    assert time.monotonic() - started >= 0.5  # the 2nd to 4th calls waited ~0.2 s each
    with pytest.raises(ConcurrencySlotTimeout):
        rate_limit(name, timeout_seconds=0.01)


def test_async_pairs(client: SyncClient) -> None:
    name = _limit(client, 1)
    rate = _limit(client, 5, decay=1.0)

    async def main() -> float:
        async with aconcurrency(name):
            held = client.read_global_concurrency_limit(name).active_slots
        await arate_limit(rate, occupy=2)
        return held

    assert asyncio.run(main()) == 1
    assert client.read_global_concurrency_limit(name).active_slots == 0
    assert client.read_global_concurrency_limit(rate).active_slots > 1
