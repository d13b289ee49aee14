"""Tag-based task concurrency in real flow runs: at most N task runs with a limited tag run at once
across flow runs, the others wait in AwaitingConcurrencySlot; untagged tasks never ask; the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from typing import Any

from tideflow import flow, task
from tideflow.client import SyncClient
from tideflow.task_runners import ThreadPoolTaskRunner


def test_a_tag_limit_holds_task_runs_across_flow_runs(client: SyncClient) -> None:
    tag = f"db-{os.getpid()}-{time.monotonic_ns()}"
    client.upsert_concurrency_limit(tag, 2)
    lock = threading.Lock()
    running = [0]
    peak = [0]
    runs: list[Any] = []

    @task(tags=[tag])
    def query(i: int) -> int:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.3)
        with lock:
            running[0] -= 1
        return i

    @flow(task_runner=ThreadPoolTaskRunner(max_workers=4))
    def load(n: int) -> list[int]:
        futures = query.map(range(n))
        runs.extend(f.task_run for f in futures)
        return futures.result()

    threads = [threading.Thread(target=load, args=(3,)) for _ in range(2)]  # two flow runs at once
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert peak[0] == 2
    assert len(runs) == 6 and all(r.state.name == "Completed" for r in runs)
    waited = [r for r in runs if "AwaitingConcurrencySlot" in [s.name for s in r.history]]
    assert waited, "no task run waited for a slot"
    assert client.read_concurrency_limit(tag).active_slots == []  # all released


def test_the_concurrency_limit_cli(client: SyncClient) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env["COLUMNS"] = "200"

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "tideflow", "concurrency-limit", *args],
            capture_output=True, text=True, env=env, timeout=60,
        )  # fmt: skip

    made = cli("create", "cli-tag", "3")
    assert made.returncode == 0, made.stderr
    assert "Concurrency limit for tag 'cli-tag': 3 at once" in made.stdout
    assert "cli-tag" in cli("ls").stdout
    assert '"concurrency_limit": 3' in cli("inspect", "cli-tag").stdout
    assert cli("delete", "cli-tag").returncode == 0
    gone = cli("inspect", "cli-tag")
    assert gone.returncode == 1
    assert gone.stderr.strip() == "Error: no concurrency limit for tag 'cli-tag'"
    bad = cli("create", "x", "-1")
    assert bad.returncode == 2 and "-1" in bad.stderr
