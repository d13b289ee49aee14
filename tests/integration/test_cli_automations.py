"""`tideflow automation …` and the SDK's Automation against a real server process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tideflow.testing import ServerProcess


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    with ServerProcess() as proc:
        yield proc


@pytest.fixture
def api(server: ServerProcess, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("TIDEFLOW_API_URL", server.api_url)
    return server.api_url


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tideflow", "automation", *args],
        capture_output=True, text=True, env=os.environ.copy(), timeout=60,
    )  # fmt: skip


YAML = """\
name: {name}
description: count completions
trigger:
  type: event
  expect: [tideflow.flow-run.Completed]
  match_related:
    tideflow.resource.name: upstream
actions:
  - type: do-nothing
"""


def test_cli_lifecycle(api: str, tmp_path: Path) -> None:
    path = tmp_path / "a.yaml"
    path.write_text(YAML.format(name="cli-auto"))
    created = cli("create", "-f", str(path))
    assert created.returncode == 0, created.stderr
    assert "Created automation 'cli-auto'" in created.stdout

    listed = json.loads(cli("ls", "--json").stdout)
    [auto] = [a for a in listed if a["name"] == "cli-auto"]
    inspected = json.loads(cli("inspect", "cli-auto", "--json").stdout)
    assert inspected["id"] == auto["id"]
    assert "tideflow.flow-run.Completed" in cli("inspect", auto["id"]).stdout

    path.write_text(YAML.format(name="cli-auto").replace("count completions", "changed"))
    assert cli("update", "cli-auto", "-f", str(path)).returncode == 0
    assert json.loads(cli("inspect", "cli-auto", "--json").stdout)["description"] == "changed"

    assert "Paused" in cli("pause", "cli-auto").stdout
    assert json.loads(cli("inspect", "cli-auto", "--json").stdout)["enabled"] is False
    assert "Resumed" in cli("resume", "cli-auto").stdout

    # Fire it with an event, then read its history and the explanation.
    from tideflow.client import SyncClient
    from tideflow.schemas.events import Event

    hit = Event(event="tideflow.flow-run.Completed", resource={"tideflow.resource.id": "r.1"},  # type: ignore[arg-type]
                related=[{"tideflow.resource.id": "d.1", "tideflow.resource.role": "deployment",  # type: ignore[list-item]
                          "tideflow.resource.name": "upstream"}])  # fmt: skip
    with SyncClient(api) as client:
        client.emit_events([hit])
    for _ in range(100):
        history = json.loads(cli("history", "cli-auto", "--json").stdout)
        if history and history[0]["actions"][0]["status"] == "executed":
            break
        time.sleep(0.1)
    assert history[0]["triggering_event_id"] == str(hit.id)
    assert "do-nothing" in cli("history", "cli-auto").stdout
    why = cli("explain", "cli-auto", "--event", str(hit.id))
    assert why.returncode == 0 and "this event fired" in why.stdout and "✓" in why.stdout

    deleted = cli("delete", "cli-auto", "--yes")
    assert deleted.returncode == 0 and "Deleted" in deleted.stdout
    gone = cli("inspect", "cli-auto")
    assert gone.returncode == 1 and "no automation is called 'cli-auto'" in gone.stderr


def test_cli_errors_are_one_line(api: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(YAML.format(name="bad").replace("type: do-nothing", "type: run-deployment"))
    result = cli("create", "-f", str(bad))
    assert result.returncode == 1
    assert "deployment_id is required" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    missing = cli("create", "-f", str(tmp_path / "nope.yaml"))
    assert missing.returncode == 1 and "cannot read" in missing.stderr
    assert cli("explain", "x", "--event", "nope").returncode == 1


def test_sdk_create_read_update_delete(api: str) -> None:
    from tideflow.automations import Automation
    from tideflow.schemas.automations import DoNothing, EventTrigger

    auto = Automation(name="sdk-auto", trigger=EventTrigger(expect={"x.y"}), actions=[DoNothing()])
    auto.create()
    assert auto.id is not None
    read = Automation.read("sdk-auto")
    assert read.id == auto.id and read.trigger.expect == {"x.y"}  # type: ignore[union-attr]
    read.description = "updated"
    read.update()
    assert Automation.read(id=auto.id).description == "updated"
    assert read.delete() is True
    assert read.delete() is False
