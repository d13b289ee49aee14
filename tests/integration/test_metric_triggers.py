"""Metric triggers against a real server process: a success-rate trigger on one flow's runs
fires once when failures push it under the threshold (however many evaluations follow), resolves
when completed runs bring it back, and says what it measures (GET .../metric); a lateness
trigger fires on a run left waiting past its time; runs of other flows are not counted; replay
and event explain answer that a metric trigger is not evaluated on events."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from serve_helpers import wait_for

from tideflow.testing import ServerProcess

INTERVAL = 0.3  # seconds between metric evaluations in this server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = {"TIDEFLOW_METRIC_TRIGGERS_INTERVAL": str(INTERVAL)}
    with ServerProcess(home=tmp_path_factory.mktemp("metric"), env=env, startup_timeout=90) as proc:
        yield proc


def _run(http: httpx.Client, flow: str, final: str) -> None:
    run = http.post("/flow_runs/", json={"flow_name": flow}).json()
    for state in ("RUNNING", final):
        r = http.post(f"/flow_runs/{run['id']}/set_state", json={"state": {"type": state}})
        assert r.status_code in (200, 201), r.text


def _records(http: httpx.Client, automation_id: str) -> list[tuple[str, list[str]]]:
    history = http.get(f"/automations/{automation_id}/history", params={"limit": 50}).json()
    return [(f["kind"], [a["status"] for a in f["actions"]]) for f in reversed(history)]


def _automation(http: httpx.Client, name: str, trigger: dict[str, Any]) -> str:
    made = http.post("/automations/", json={
        "name": name, "trigger": trigger,
        "actions": [{"type": "do-nothing"}], "actions_on_resolve": [{"type": "do-nothing"}],
    })  # fmt: skip
    assert made.status_code == 201, made.text
    automation_id: str = made.json()["id"]
    return automation_id


def test_success_rate_fires_once_per_breach_and_resolves(server: ServerProcess) -> None:
    with httpx.Client(base_url=server.api_url, timeout=30) as http:
        automation_id = _automation(http, "etl-failing", {
            "type": "metric",
            "metric": {"name": "successes", "operator": "<", "threshold": 0.5,
                       "range": 600, "firing_for": 0},
            "match_related": {"tideflow.resource.role": "flow", "tideflow.resource.name": "etl"},
        })  # fmt: skip
        _run(http, "other", "FAILED")  # another flow's failures do not count
        time.sleep(INTERVAL * 5)
        assert _records(http, automation_id) == []
        status = http.get(f"/automations/{automation_id}/metric").json()
        assert status["value"] is None and "no runs to measure" in status["lines"][0]

        _run(http, "etl", "FAILED")
        _run(http, "etl", "COMPLETED")
        _run(http, "etl", "FAILED")  # 1 of 3 succeeded: 0.33 < 0.5
        wait_for(lambda: _records(http, automation_id), timeout=20)
        time.sleep(INTERVAL * 8)  # many more evaluations of the same breach
        assert _records(http, automation_id) == [("fired", ["executed"])]
        status = http.get(f"/automations/{automation_id}/metric").json()
        assert status["breached"] and status["runs"] == 3 and status["open_firing_id"]
        assert abs(status["value"] - 1 / 3) < 1e-9
        fired = http.post("/events/filter", json={
            "event_names": ["tideflow.automation.triggered"],
            "resource_ids": [f"tideflow.automation.{automation_id}"]}).json()["events"]  # fmt: skip
        assert len(fired) == 1

        for _ in range(3):  # 4 of 6: 0.67, the breach ends
            _run(http, "etl", "COMPLETED")
        wait_for(lambda: len(_records(http, automation_id)) == 2, timeout=20)
        time.sleep(INTERVAL * 5)
        assert _records(http, automation_id) == [
            ("fired", ["executed"]),
            ("resolved", ["executed"]),
        ]
        assert http.get(f"/automations/{automation_id}/metric").json()["open_firing_id"] is None

        replay = http.post(f"/automations/{automation_id}/replay",
                           json={"since": "2026-01-01T00:00:00Z"})  # fmt: skip
        assert replay.status_code == 422 and "metric trigger" in replay.json()["detail"]
        event = fired[0]["id"]
        why = http.get(f"/automations/{automation_id}/explain", params={"event_id": event})
        assert why.status_code == 200, why.text
        assert "metric trigger" in why.json()["explanation"]["verdict"]
    with httpx.Client(base_url=server.api_url.removesuffix("/api"), timeout=30) as ui:
        for page in ("/automations", f"/automations/{automation_id}"):
            shown = ui.get(page, headers={"Accept": "text/html"})
            assert shown.status_code == 200 and "etl-failing" in shown.text, page


def test_lateness_fires_for_a_run_left_waiting(server: ServerProcess) -> None:
    with httpx.Client(base_url=server.api_url, timeout=30) as http:
        automation_id = _automation(http, "late-reports", {
            "type": "metric",
            "metric": {"name": "lateness", "operator": ">", "threshold": 60,
                       "range": 3600, "firing_for": 0},
            "match_related": {"tideflow.resource.role": "flow", "tideflow.resource.name": "report"},
        })  # fmt: skip
        due = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)).isoformat()
        made = http.post("/flow_runs/", json={"flow_name": "report", "state": {
            "type": "SCHEDULED", "details": {"scheduled_time": due}}})  # fmt: skip
        assert made.status_code == 201, made.text
        wait_for(lambda: _records(http, automation_id), timeout=20)
        status = http.get(f"/automations/{automation_id}/metric").json()
        assert status["value"] >= 290 and status["breached"]
