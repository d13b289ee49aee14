"""CLI verbs and advice a Prefect user expects, against a real server process (issue 16)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

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
