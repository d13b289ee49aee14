"""Replay backfill against a real server process: events stored before an automation existed are
replayed, ``--backfill`` records the firings that never happened and runs their actions (a
deployment run per firing, with the event's value rendered into its parameters), a firing the
engine made itself is not made again, and a second backfill fires nothing."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from serve_helpers import run_cli, wait_for

from tideflow.testing import ServerProcess


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    with ServerProcess(home=tmp_path_factory.mktemp("backfill"), startup_timeout=90) as proc:
        yield proc


def _history(http: httpx.Client, automation_id: str) -> list[dict[str, Any]]:
    r = http.get(f"/automations/{automation_id}/history", params={"limit": 50})
    assert r.status_code == 200, r.text
    fired: list[dict[str, Any]] = [f for f in r.json() if f["kind"] == "fired"]
    return fired


def test_backfill_fires_missed_firings_once(server: ServerProcess) -> None:
    now = dt.datetime.now(dt.UTC)
    with httpx.Client(base_url=server.api_url, timeout=30) as http:
        made_deployment = http.post("/deployments/", json={
            "name": "bf", "flow_name": "backfilled-flow", "parameters": {"n": 0},
            "enforce_parameter_schema": False})  # fmt: skip
        assert made_deployment.status_code == 201, made_deployment.text
        deployment = made_deployment.json()
        missed = [
            {"id": str(uuid.uuid4()), "event": "bf.order", "payload": {"n": n},
             "occurred": (now - dt.timedelta(minutes=30 - n)).isoformat(),
             "resource": {"tideflow.resource.id": f"shop.order.{n}"}}
            for n in range(3)
        ]  # fmt: skip
        assert http.post("/events", json=missed).json()["refused"] == []
        made = http.post("/automations/", json={
            "name": "bf-orders",
            "trigger": {"type": "event", "expect": ["bf.order"], "posture": "Reactive",
                        "threshold": 1, "within": 0},
            "actions": [{"type": "run-deployment", "deployment_id": deployment["id"],
                         "parameters": {"n": "{{ event.payload.n }}"}}],
        })  # fmt: skip
        assert made.status_code == 201, made.text
        automation = made.json()
        # One event after the automation exists: the engine fires it itself.
        live = {"id": str(uuid.uuid4()), "event": "bf.order", "payload": {"n": 9},
                "resource": {"tideflow.resource.id": "shop.order.9"}}  # fmt: skip
        http.post("/events", json=[live])
        wait_for(lambda: _history(http, automation["id"]), timeout=20)

        dry = run_cli(server.api_url, "automation", "replay", "bf-orders", "--since", "1 hour",
                      "--json")  # fmt: skip
        assert dry.returncode == 0, dry.stderr
        assert json.loads(dry.stdout)["fired"] == 4 and json.loads(dry.stdout)["backfilled"] is None
        assert len(_history(http, automation["id"])) == 1  # a dry run stores nothing

        first = run_cli(server.api_url, "automation", "replay", "bf-orders", "--since", "1 hour",
                        "--backfill", "--json")  # fmt: skip
        assert first.returncode == 0, first.stderr
        assert json.loads(first.stdout)["backfilled"] == 3

        def runs() -> list[dict[str, Any]]:
            r = http.post("/flow_runs/filter", json={"deployment_id": [deployment["id"]]})
            found: list[dict[str, Any]] = r.json()
            return found if len(found) == 4 else []

        created = wait_for(runs, timeout=30)
        assert sorted(r["parameters"]["n"] for r in created) == [0, 1, 2, 9]
        history = _history(http, automation["id"])
        assert len(history) == 4
        assert all(a["status"] == "executed" for f in history for a in f["actions"])

        again = run_cli(server.api_url, "automation", "replay", "bf-orders", "--since", "1 hour",
                        "--backfill")  # fmt: skip
        assert again.returncode == 0, again.stderr
        assert "backfilled none" in again.stdout
        assert len(_history(http, automation["id"])) == 4
        assert len(http.post("/flow_runs/filter",
                             json={"deployment_id": [deployment["id"]]}).json()) == 4  # fmt: skip

        unsaved = http.post("/automations/replay", json={
            "since": (now - dt.timedelta(hours=1)).isoformat(), "backfill": True,
            "automation": {"name": "x", "trigger": {"type": "event", "expect": ["bf.order"]},
                           "actions": [{"type": "do-nothing"}]}})  # fmt: skip
        assert unsaved.status_code == 422 and "saved automation" in unsaved.json()["detail"]
