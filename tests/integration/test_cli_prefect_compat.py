"""CLI verbs and advice a Prefect user expects, against a real server process (issue 16)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tideflow.schemas import FlowRunFilter
from tideflow.schemas.events import Event
from tideflow.testing import ServerProcess


@pytest.fixture(scope="module")
def server() -> Iterator[ServerProcess]:
    with ServerProcess() as proc:
        yield proc


@pytest.fixture
def api(server: ServerProcess, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    monkeypatch.setenv("TIDEFLOW_API_URL", server.api_url)
    monkeypatch.setenv("TIDEFLOW_HOME", str(tmp_path / "home"))
    return server.api_url


def tideflow(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tideflow", *args],
        capture_output=True, text=True, env=os.environ.copy(), timeout=60, cwd=cwd,
    )  # fmt: skip


PREFECT_STYLE = """\
name: {name}
trigger:
  type: event
  expect: [prefect.flow-run.Completed]
actions:
  - type: do-nothing
"""


def test_a_trigger_on_prefect_names_warns_in_cli_api_and_ui(
    api: str, server: ServerProcess, tmp_path: Path
) -> None:
    path = tmp_path / "a.yaml"
    path.write_text(PREFECT_STYLE.format(name="ported"))
    created = tideflow("automation", "create", "-f", str(path))
    assert created.returncode == 0, created.stderr
    warning = (
        "no event named 'prefect.flow-run.Completed' has been stored; did you mean "
        "tideflow.flow-run.Completed?"
    )
    assert "Created automation 'ported'" in created.stdout
    assert warning in " ".join(created.stderr.split()), created.stderr
    inspected = tideflow("automation", "inspect", "ported")
    assert warning in " ".join(inspected.stderr.split())
    auto = json.loads(tideflow("automation", "inspect", "ported", "--json").stdout)
    assert any(warning in w for w in auto["event_warnings"])
    page = httpx.get(f"{api.removesuffix('/api')}/automations/{auto['id']}", timeout=10)
    assert page.status_code == 200
    assert "automation-event-warning-1" in page.text
    assert warning.replace("'", "&#39;") in page.text or warning in page.text


def _one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode != 0, result
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


AUTOMATION = {
    "name": "{name}",
    "trigger": {"type": "event", "expect": ["tideflow.flow-run.Completed"]},
    "actions": [{"type": "do-nothing"}],
}


def _automation_json(name: str) -> str:
    return json.dumps({**AUTOMATION, "name": name})


def test_automation_create_from_json_or_yaml_and_enable_disable(api: str, tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    path.write_text(_automation_json("from-json-file"))
    assert tideflow("automation", "create", "--from-json", str(path)).returncode == 0
    inline = tideflow("automation", "create", "--from-json", _automation_json("from-json-text"))
    assert inline.returncode == 0, inline.stderr
    yml = tmp_path / "a.yaml"
    yml.write_text(PREFECT_STYLE.format(name="from-yaml").replace("prefect.", "tideflow."))
    assert tideflow("automation", "create", "--from-yaml", str(yml)).returncode == 0
    listed = {a["name"]: a for a in json.loads(tideflow("automation", "ls", "--json").stdout)}
    assert {"from-json-file", "from-json-text", "from-yaml"} <= set(listed)

    disabled = tideflow("automation", "disable", "from-json-file")
    assert disabled.returncode == 0 and "Paused automation 'from-json-file'" in disabled.stdout
    assert not json.loads(tideflow("automation", "inspect", "from-json-file", "--json").stdout)[
        "enabled"
    ]
    by_id = tideflow("automation", "enable", listed["from-json-file"]["id"])
    assert by_id.returncode == 0 and "Resumed" in by_id.stdout
    assert json.loads(tideflow("automation", "inspect", "from-json-file", "--json").stdout)[
        "enabled"
    ]

    _one_line_error(tideflow("automation", "create"), "exactly one of --file, --from-json")
    _one_line_error(
        tideflow("automation", "create", "--from-json", "{nope"), "--from-json is not valid JSON"
    )
    _one_line_error(tideflow("automation", "disable", "missing"), "no automation is called")


def _deployment(api: str, name: str) -> str:
    from tideflow.client import SyncClient
    from tideflow.schemas.deployments import DeploymentCreate

    with SyncClient(api) as client:
        client.create_deployment(DeploymentCreate(flow_name="compat-flow", name=name))
    return f"compat-flow/{name}"


def test_schedule_verbs(api: str) -> None:
    full = _deployment(api, "scheduled")
    other = _deployment(api, "other")
    for args in (("--cron", "0 2 * * *", "--timezone", "Europe/Paris"),
                 ("--interval", "2 hours"), ("--rrule", "FREQ=WEEKLY;BYDAY=MO"),
                 ("--interval", "90", "--inactive")):  # fmt: skip
        made = tideflow("schedule", "create", full, *args)
        assert made.returncode == 0 and "Created schedule" in made.stdout, made.stderr
    listed = json.loads(tideflow("schedule", "ls", full, "--json").stdout)
    kinds = sorted((s["schedule"]["type"], s["active"]) for s in listed)
    assert kinds == [("cron", True), ("interval", False), ("interval", True), ("rrule", True)]
    assert {s["schedule"].get("interval") for s in listed} >= {"PT2H", "PT1M30S"}
    assert tideflow("schedule", "create", other, "--interval", "1h").returncode == 0

    paused = tideflow("schedule", "pause", "--all")
    assert paused.returncode == 0 and "Paused 4 schedule(s) of 2 deployment(s)" in paused.stdout
    assert not any(
        s["active"] for s in json.loads(tideflow("schedule", "ls", other, "--json").stdout)
    )
    resumed = tideflow("schedule", "resume", full)
    assert resumed.returncode == 0 and "Resumed 4 schedule(s)" in resumed.stdout

    first = listed[0]["id"]
    assert tideflow("schedule", "delete", full, first[:8], "-y").returncode == 0
    assert len(json.loads(tideflow("schedule", "ls", full, "--json").stdout)) == 3
    cleared = tideflow("schedule", "clear", full, "-y")
    assert cleared.returncode == 0 and "Deleted 3 schedule(s)" in cleared.stdout
    assert json.loads(tideflow("schedule", "ls", full, "--json").stdout) == []

    _one_line_error(tideflow("schedule", "create", full), "exactly one of --cron")
    _one_line_error(
        tideflow("schedule", "create", full, "--cron", "61 * * * *"), "invalid schedule"
    )
    _one_line_error(
        tideflow("schedule", "create", full, "--interval", "2 fortnights"), "unknown unit"
    )
    _one_line_error(tideflow("schedule", "pause"), "give a deployment")
    _one_line_error(tideflow("schedule", "pause", full, "--all"), "not both")


def test_deployment_run_start_in_human_durations(api: str) -> None:
    import datetime as dt

    full = _deployment(api, "later")
    before = dt.datetime.now(dt.UTC)
    made = tideflow("deployment", "run", full, "--start-in", "2 hours")
    assert made.returncode == 0, made.stderr
    from tideflow.client import SyncClient

    with SyncClient(api) as client:
        d = client.read_deployment_by_name(full)
        [run] = client.read_flow_runs(FlowRunFilter(deployment_id=[d.id]))
    assert run.expected_start_time is not None
    delay = (run.expected_start_time - before).total_seconds()
    assert 7190 < delay < 7300, delay
    _one_line_error(
        tideflow("deployment", "run", full, "--start-in", "soonish"), "--start-in", "not a duration"
    )


def test_database_upgrade_yes_and_downgrade_reset(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}"
    up = tideflow("server", "database", "upgrade", "-y", "--database-url", url)
    assert up.returncode == 0 and "upgrade:" in up.stdout and "(empty) ->" in up.stdout, up.stderr
    down = tideflow("server", "database", "downgrade", "-y", "--database-url", url)
    assert down.returncode == 0 and "-> (empty)" in down.stdout, down.stderr
    again = tideflow("server", "database", "reset", "-y", "--database-url", url)
    assert again.returncode == 0 and "reset:" in again.stdout, again.stderr


def test_server_start_help_shows_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "250")
    shown = tideflow("server", "start", "--help")
    text = " ".join(shown.stdout.split())
    assert "TIDEFLOW_SERVER_HOST, else 127.0.0.1" in text
    assert "TIDEFLOW_SERVER_PORT, else 4200" in text
    assert "TIDEFLOW_DATABASE_URL, else SQLite at $TIDEFLOW_HOME/tideflow.db" in text
    assert "bind ." not in text  # the old help lost its "[default: ...]" to Rich markup


def test_automation_replay_cli(api: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tideflow.client import SyncClient

    monkeypatch.setenv("COLUMNS", "250")
    name = f"acme.replayed.{uuid.uuid4().hex[:6]}"
    with SyncClient(api) as client:
        client.emit_events([
            Event(event=name, resource={"tideflow.resource.id": "acme.r", "tideflow.resource.name": n})
            for n in ("one", "two")
        ])  # fmt: skip
    path = tmp_path / "r.yaml"
    path.write_text(
        f"name: replayed\ntrigger: {{type: event, expect: [{name}]}}\n"
        "actions:\n  - type: call-webhook\n    url: https://example.com/hook\n"
        "    body: {file: '{{ event.resource.name }}'}\n"
    )
    draft = tideflow("automation", "replay", "-f", str(path), "--since", "1 hour")
    assert draft.returncode == 0, draft.stderr
    assert "replayed: would have fired 2 times between" in " ".join(draft.stdout.split())
    assert '"file": "one"' in draft.stdout and '"file": "two"' in draft.stdout
    assert tideflow("automation", "create", "-f", str(path)).returncode == 0
    stored = json.loads(
        tideflow("automation", "replay", "replayed", "--since", "2 hours ago", "--json").stdout
    )
    assert stored["fired"] == 2
    _one_line_error(tideflow("automation", "replay", "replayed", "--since", "a while"), "--since")
    _one_line_error(tideflow("automation", "replay"), "give an automation NAME or --file")
