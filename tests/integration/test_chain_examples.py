"""The other chain examples end to end: a real server, the example served by serve(), the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from chain_helpers import env_for, ready, runs_of, serving, wait_for

from tideflow.client import SyncClient
from tideflow.testing import ServerProcess


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    with ServerProcess() as proc:
        yield proc


def tideflow(api_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, "-m", "tideflow", *args], capture_output=True,
                            text=True, env=env_for(api_url), timeout=60)  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result


def owned(client: SyncClient, deployment_id: object):  # type: ignore[no-untyped-def]
    return [a for a in client.read_automations()
            if a.owner_resource == f"tideflow.deployment.{deployment_id}"]  # fmt: skip


def test_event_payload_becomes_parameters(server: ServerProcess, tmp_path: Path) -> None:
    log = tmp_path / "serve.log"
    with (
        serving("chain_event_payload.py", server.api_url, log=log),
        SyncClient(server.api_url) as c,
    ):
        dep = ready(c, "load-table/on-arrival")
        tideflow(server.api_url, "event", "emit", "shop.orders.arrived", "--resource-id",
                 "shop.orders", "--payload", json.dumps({"table": "orders", "rows": 42}))  # fmt: skip
        [run] = wait_for("the triggered run", lambda: runs_of(c, dep.id, "COMPLETED"))
        assert run.parameters == {"table": "orders", "rows": 42}
    assert "loading 42 rows into orders (int)" in log.read_text()


def test_custom_event_emitted_in_a_flow_triggers_a_deployment(
    server: ServerProcess, tmp_path: Path
) -> None:
    log = tmp_path / "serve.log"
    with serving("chain_custom_event.py", server.api_url, log=log), SyncClient(server.api_url) as c:
        ready(c, "build-report/nightly")
        dep = ready(c, "publish-report/on-report-ready")
        tideflow(server.api_url, "deployment", "run", "build-report/nightly", "--param", "name=q3")
        [run] = wait_for("the triggered run", lambda: runs_of(c, dep.id, "COMPLETED"))
        assert run.parameters == {"name": "q3", "pages": 12}
    assert "publishing report q3 (12 pages)" in log.read_text()


def test_proactive_trigger_fires_on_silence_and_resolves(server: ServerProcess) -> None:
    api = server.api_url
    env_window = {"TIDEFLOW_EXAMPLE_WINDOW": "3"}
    proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve().parents[2] / "examples"
                             / "chain_proactive.py")], env=env_for(api, **env_window),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        with SyncClient(api) as c:
            watched = ready(c, "nightly-load/nightly_load")
            alarm = ready(c, "alarm/no-completion")
            # Nothing completes: within the 3 s window the alarm deployment runs.
            [run] = wait_for("the alarm run", lambda: runs_of(c, alarm.id, "COMPLETED"), timeout=30)
            assert run.parameters == {"missing": "nightly_load"}
            [auto] = owned(c, alarm.id)
            assert auto.name == "nightly_load missing"
            # The watched deployment completes after all: the firing resolves.
            tideflow(api, "deployment", "run", "nightly-load/nightly_load")
            wait_for("the watched run", lambda: runs_of(c, watched.id, "COMPLETED"))
            kinds = wait_for("the resolution", lambda: (k := [f.kind for f in c.automation_history(auto.id)])
                             and "resolved" in k and k)  # fmt: skip
            assert "fired" in kinds
    finally:
        proc.terminate()
        proc.wait(30)


def test_compound_trigger_waits_for_both_upstreams(server: ServerProcess) -> None:
    with serving("chain_compound.py", server.api_url), SyncClient(server.api_url) as c:
        orders = ready(c, "extract-orders/extract_orders")
        ready(c, "extract-customers/extract_customers")
        combine = ready(c, "combine/when-both-extracted")
        [auto] = owned(c, combine.id)
        tideflow(server.api_url, "deployment", "run", "extract-orders/extract_orders")
        [first] = wait_for("orders", lambda: runs_of(c, orders.id, "COMPLETED"))
        # The first completion is remembered in the compound's state, but nothing fires yet.
        events = c.read_events()
        completed = next(e for e in events.events if e.resource.id == f"tideflow.flow-run.{first.id}"
                         and e.event == "tideflow.flow-run.Completed")  # fmt: skip
        why = c.explain_automation(auto.id, completed.id)
        assert "1 of 2 children fired" in "\n".join(why["lines"])
        assert runs_of(c, combine.id) == [] and c.automation_history(auto.id) == []
        tideflow(server.api_url, "deployment", "run", "extract-customers/extract_customers")
        wait_for("the combine run", lambda: runs_of(c, combine.id, "COMPLETED"))
        time.sleep(0.5)
        assert len(runs_of(c, combine.id)) == 1
        [firing] = c.automation_history(auto.id)
        assert len(firing.event_ids) == 2


def test_the_tasks_example_runs_with_retries_and_a_cache(server: ServerProcess) -> None:
    examples = Path(__file__).resolve().parents[2] / "examples"
    done = subprocess.run(
        [sys.executable, str(examples / "tasks_etl.py")], capture_output=True, text=True,
        env=env_for(server.api_url), timeout=120, cwd=examples,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("day 1: 5 rows, revenue 90.0") == 2
    assert "Failed (ConnectionError: source not reachable yet); retry 1/3" in done.stderr
    assert "Finished in state Cached()" in done.stderr
    with SyncClient(server.api_url) as c:
        from tideflow.schemas.task_runs import TaskRunFilter

        cached = c.read_task_runs(TaskRunFilter(state_name=["Cached"], task_name=["price"]))
        assert len(cached) == 5
