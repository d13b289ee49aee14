"""An automation that feeds itself: a deployment trigger ``{}`` (empty expect = every event) with its
run-deployment action turned one event into 1,450 runs and 5,802 events in 30 s, without end. Now
the engine does not fire an automation on events its own actions caused
TIDEFLOW_AUTOMATIONS_MAX_CAUSAL_DEPTH firings deep, pauses one firing more than
TIDEFLOW_AUTOMATIONS_MAX_FIRINGS_PER_MINUTE times a minute (with an explaining event, an explain
line and a history row), keeps chains of different automations working, and warns on saving a
run-deployment action on an every-event trigger. Each against a real server process."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tideflow.testing import ServerProcess

# No runner serves these deployments: their runs stay Scheduled, and without the late-run monitor
# (an hour) each firing makes exactly four events: automation.triggered, action.triggered,
# action.executed and the new run's Scheduled.
QUIET = {"TIDEFLOW_LATE_RUNS_AFTER": "3600"}
EVENTS_PER_FIRING = 4


@contextmanager
def _api(**env: str) -> Iterator[tuple[ServerProcess, httpx.Client]]:
    with (
        ServerProcess(env={**QUIET, **env}) as server,
        httpx.Client(base_url=server.api_url, timeout=10) as client,
    ):
        yield server, client


@pytest.fixture
def api() -> Iterator[tuple[ServerProcess, httpx.Client]]:
    with _api() as pair:
        yield pair


def _until(check: Callable[[], bool], limit: float = 60.0) -> None:
    start = time.monotonic()
    while not check():
        assert time.monotonic() - start < limit, f"not true within {limit:g} s"
        time.sleep(0.3)


def _settle(read: Callable[[], int], *, quiet: float = 5.0, limit: float = 90.0) -> int:
    """The value once it has not changed for ``quiet`` seconds (a runaway loop never settles)."""
    last, since, start = -1, time.monotonic(), time.monotonic()
    while time.monotonic() - start < limit:
        value = read()
        if value != last:
            last, since = value, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return value
        time.sleep(0.3)
    raise AssertionError(f"still changing after {limit:g} s (last value {last})")


def _runs(client: httpx.Client, deployment_id: str) -> int:
    response = client.post("/flow_runs/count", json={"deployment_id": [deployment_id]})
    assert response.status_code == 200, response.text
    return int(response.json())


def _events(client: httpx.Client, name: str) -> list[dict[str, Any]]:
    response = client.post("/events/filter", json={"event_names": [name], "limit": 200})
    assert response.status_code == 200, response.text
    return list(response.json()["events"])


def _emit(client: httpx.Client, name: str, count: int = 1) -> list[str]:
    body = [{"event": name, "resource": {"tideflow.resource.id": f"test.{name}.{i}"}}
            for i in range(count)]  # fmt: skip
    response = client.post("/events", json=body)
    assert response.status_code == 200, response.text
    return list(response.json()["accepted"])


def _healthy_quickly(client: httpx.Client) -> None:
    start = time.monotonic()
    assert client.get("/health", timeout=5).status_code == 200
    assert time.monotonic() - start < 5


def _owned(client: httpx.Client, deployment_id: str) -> dict[str, Any]:
    response = client.post(
        "/automations/filter", json={"owner_resource": [f"tideflow.deployment.{deployment_id}"]}
    )
    assert response.status_code == 200, response.text
    [automation] = response.json()
    return dict(automation)


def _bound(depth: int) -> int:
    # One outside event fires it at depth 1; each firing's events fire it once more, down to the
    # limit: 1 + 4 + 16 runs for depth 3.
    return sum(EVENTS_PER_FIRING**k for k in range(depth))


def test_a_self_feeding_deployment_trigger_makes_a_bounded_number_of_runs(
    api: tuple[ServerProcess, httpx.Client],
) -> None:
    server, client = api
    created = client.post(
        "/deployments/", json={"flow_name": "loop-flow", "name": "loop", "triggers": [{}]}
    )
    assert created.status_code == 201, created.text
    deployment_id = created.json()["id"]
    automation = _owned(client, deployment_id)
    assert automation["trigger"]["expect"] == []
    assert any("expect is empty" in w for w in automation["warnings"])  # saved, with a warning
    # A trigger registered with the deployment (serve(), to_deployment()) is warned about in the
    # server log, which is where that path shows it.
    _until(lambda: "trigger.expect is empty" in server.log_path.read_text())

    # Its own deployment.created event already started one bounded cascade.
    _until(lambda: _runs(client, deployment_id) > 0)
    baseline = _settle(lambda: _runs(client, deployment_id))
    assert baseline == _bound(3)

    _emit(client, "test.kick")
    _until(lambda: _runs(client, deployment_id) > baseline)
    after = _settle(lambda: _runs(client, deployment_id))
    assert after - baseline == _bound(3) == 21
    _healthy_quickly(client)
    assert automation["id"] in {
        a["id"] for a in client.post("/automations/filter", json={"enabled": True}).json()
    }

    # The automation's own events say how deep each firing was; none went past the limit.
    triggered = _events(client, "tideflow.automation.triggered")
    depths = [e["payload"]["lineage"][automation["id"]] for e in triggered]
    assert max(depths) == 3
    assert sorted(set(depths)) == [1, 2, 3]

    # explain names the guard on an event of the deepest generation.
    deepest = next(e for e in triggered if e["payload"]["lineage"][automation["id"]] == 3)
    explained = client.get(
        f"/automations/{automation['id']}/explain", params={"event_id": deepest["id"]}
    )
    assert explained.status_code == 200, explained.text
    text = "\n".join(explained.json()["lines"])
    assert "causal depth" in text and "limit is 3" in text, text
    assert explained.json()["explanation"]["would_fire"] is False


def test_the_causal_depth_is_a_setting() -> None:
    with _api(TIDEFLOW_AUTOMATIONS_MAX_CAUSAL_DEPTH="1") as (_, client):
        body = {"name": "loop", "trigger": {"type": "event"},
                "actions": [{"type": "run-deployment", "deployment_id": None}]}  # fmt: skip
        deployment = client.post("/deployments/", json={"flow_name": "f", "name": "d"}).json()
        body["actions"][0]["deployment_id"] = deployment["id"]
        assert client.post("/automations/", json=body).status_code == 201
        time.sleep(0.5)
        _emit(client, "test.kick")
        _until(lambda: _runs(client, deployment["id"]) > 0)
        assert _settle(lambda: _runs(client, deployment["id"])) == _bound(1) == 1
        _healthy_quickly(client)


def test_the_firing_rate_limit_pauses_an_automation_and_says_why() -> None:
    with _api(TIDEFLOW_AUTOMATIONS_MAX_FIRINGS_PER_MINUTE="5") as (server, client):
        created = client.post("/automations/", json={
            "name": "pinger", "trigger": {"type": "event", "expect": ["test.ping"]},
            "actions": [{"type": "do-nothing"}],
        })  # fmt: skip
        assert created.status_code == 201, created.text
        assert created.json()["warnings"] == []
        automation_id = created.json()["id"]
        time.sleep(0.5)
        pings = _emit(client, "test.ping", 12)

        def paused() -> bool:
            return client.get(f"/automations/{automation_id}").json()["enabled"] is False

        _until(paused)

        history = client.get(f"/automations/{automation_id}/history", params={"limit": 50})
        assert history.status_code == 200
        kinds = [f["kind"] for f in history.json()]
        assert kinds.count("fired") == 5  # the limit, not one more
        [paused] = [f for f in history.json() if f["kind"] == "paused"]
        assert "fired more than 5 times within 60 seconds" in paused["detail"]
        assert kinds[0] == "paused"  # newest first

        [event] = _events(client, "tideflow.automation.paused")
        assert event["resource"]["tideflow.resource.id"] == f"tideflow.automation.{automation_id}"
        assert event["payload"]["limit"] == 5
        assert event["payload"]["guard"] == "rate"
        assert "TIDEFLOW_AUTOMATIONS_MAX_FIRINGS_PER_MINUTE" in event["payload"]["reason"]

        explained = client.get(
            f"/automations/{automation_id}/explain", params={"event_id": pings[-1]}
        )
        assert explained.status_code == 200, explained.text
        lines = explained.json()["lines"]
        assert any("paused by the engine: fired more than 5 times" in line for line in lines), lines
        page = httpx.get(f"http://127.0.0.1:{server.port}/automations/{automation_id}", timeout=10)
        assert "Paused by the engine" in page.text and "fired more than 5 times" in page.text

        # The user resumes it: it fires again (counting afresh).
        assert client.post(f"/automations/{automation_id}/resume", json={}).status_code == 200
        time.sleep(0.5)
        _emit(client, "test.ping")

        def fired() -> int:
            rows = client.get(f"/automations/{automation_id}/history", params={"limit": 50})
            return sum(f["kind"] == "fired" for f in rows.json())

        _until(lambda: fired() == 6)
        assert _settle(fired, quiet=2.0) == 6
        _healthy_quickly(client)


def test_a_runaway_loop_past_a_high_depth_is_paused_by_the_rate_limit() -> None:
    env = {"TIDEFLOW_AUTOMATIONS_MAX_CAUSAL_DEPTH": "50",
           "TIDEFLOW_AUTOMATIONS_MAX_FIRINGS_PER_MINUTE": "30"}  # fmt: skip
    with _api(**env) as (_, client):
        created = client.post(
            "/deployments/", json={"flow_name": "loop-flow", "name": "loop", "triggers": [{}]}
        )
        deployment_id = created.json()["id"]
        automation = _owned(client, deployment_id)

        def paused() -> bool:
            return client.get(f"/automations/{automation['id']}").json()["enabled"] is False

        _until(paused)
        runs = _settle(lambda: _runs(client, deployment_id))
        assert runs == 30  # each firing made one run, until the 31st firing paused it
        assert len(_events(client, "tideflow.automation.paused")) == 1
        _healthy_quickly(client)


def _complete(client: httpx.Client, run_id: str) -> None:
    for state in ("PENDING", "RUNNING", "COMPLETED"):
        response = client.post(f"/flow_runs/{run_id}/set_state", json={"state": {"type": state}})
        assert response.status_code == 200, response.text


def _only_run(client: httpx.Client, deployment_id: str) -> str:
    _until(lambda: _runs(client, deployment_id) > 0)
    _settle(lambda: _runs(client, deployment_id), quiet=2.0)
    runs = client.post("/flow_runs/filter", json={"deployment_id": [deployment_id]}).json()
    assert len(runs) == 1, runs
    return str(runs[0]["id"])


def test_a_chain_of_different_automations_fires_once_per_hop(
    api: tuple[ServerProcess, httpx.Client],
) -> None:
    _, client = api

    def deployment(name: str, after: str | None) -> str:
        triggers = [] if after is None else [{
            "expect": ["tideflow.flow-run.Completed"],
            "match_related": {"tideflow.resource.name": after},
        }]  # fmt: skip
        response = client.post(
            "/deployments/", json={"flow_name": f"{name}-flow", "name": name, "triggers": triggers}
        )
        assert response.status_code == 201, response.text
        assert all(not a["warnings"] for a in client.post("/automations/filter", json={}).json())
        return str(response.json()["id"])

    up, mid, down = deployment("up", None), deployment("mid", "up"), deployment("down", "mid")
    first = client.post(f"/deployments/{up}/create_flow_run", json={})
    assert first.status_code == 201, first.text
    _complete(client, first.json()["id"])
    _complete(client, _only_run(client, mid))  # a run created by the mid automation...
    _only_run(client, down)  # ...whose Completed fires the down automation, once
    assert _runs(client, up) == 1 and _runs(client, mid) == 1 and _runs(client, down) == 1


def test_saving_a_run_deployment_action_on_every_event_warns(
    api: tuple[ServerProcess, httpx.Client], tmp_path: Path
) -> None:
    server, client = api
    deployment = client.post("/deployments/", json={"flow_name": "f", "name": "d"}).json()
    body = {"name": "every", "enabled": False, "trigger": {"type": "event"},
            "actions": [{"type": "run-deployment", "deployment_id": deployment["id"]}]}  # fmt: skip
    created = client.post("/automations/", json=body)
    assert created.status_code == 201, created.text
    [warning] = created.json()["warnings"]
    assert warning.startswith("trigger.expect is empty, so it matches every event")
    ident = created.json()["id"]

    named = client.patch(f"/automations/{ident}", json={"trigger": {"type": "event", "expect": ["x.done"]}})  # fmt: skip
    assert named.status_code == 200 and named.json()["warnings"] == []
    compound = {"type": "compound", "require": "any", "triggers": [
        {"type": "event", "expect": ["x.done"]}, {"type": "event"}]}  # fmt: skip
    again = client.patch(f"/automations/{ident}", json={"trigger": compound})
    assert again.status_code == 200, again.text
    assert again.json()["warnings"][0].startswith("trigger.triggers[1].expect is empty")
    assert client.get(f"/automations/{ident}").json()["warnings"] == again.json()["warnings"]
    page = httpx.get(f"http://127.0.0.1:{server.port}/automations/{ident}", timeout=10)
    assert "trigger.triggers[1].expect is empty" in page.text

    # The CLI saves it and prints the warning.
    spec = tmp_path / "every.yaml"
    spec.write_text(
        "name: every-cli\nenabled: false\ntrigger: {type: event}\n"
        f"actions: [{{type: run-deployment, deployment_id: '{deployment['id']}'}}]\n"
    )
    env = {**os.environ, "TIDEFLOW_API_URL": server.api_url, "TIDEFLOW_HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "tideflow", "automation", "create", "--file", str(spec)],
        capture_output=True, text=True, env=env, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "Created automation 'every-cli'" in done.stdout
    assert "Warning: automation 'every-cli': trigger.expect is empty" in done.stderr
