"""`tideflow variable set|get|inspect|ls|unset` as real subprocesses against a real server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator

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
        [sys.executable, "-m", "tideflow", "variable", *args],
        capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"}, timeout=60,
    )  # fmt: skip


def one_line_error(result: subprocess.CompletedProcess[str], fragment: str) -> None:
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0], result.stderr


def test_cli_variable_lifecycle(api: str) -> None:
    made = cli("set", "crew", '["ada", "alan"]', "--tag", "team")
    assert made.returncode == 0, made.stderr
    assert 'Set variable \'crew\' = ["ada", "alan"]' in made.stdout
    assert cli("set", "greeting", "hello world").returncode == 0  # not JSON: kept as text
    assert cli("set", "zip", "01234", "--string").returncode == 0

    assert json.loads(cli("get", "crew").stdout) == ["ada", "alan"]
    assert cli("get", "greeting").stdout == "hello world\n"
    assert cli("get", "zip").stdout == "01234\n"
    inspected = json.loads(cli("inspect", "crew").stdout)
    assert inspected["tags"] == ["team"] and inspected["value"] == ["ada", "alan"]

    one_line_error(cli("set", "crew", "1"), "variable 'crew' exists already; pass --overwrite")
    changed = cli("set", "crew", "[1]", "--overwrite")
    assert changed.returncode == 0 and "Changed variable 'crew' = [1]" in changed.stdout
    assert json.loads(cli("inspect", "crew").stdout)["tags"] == ["team"]

    listed = json.loads(cli("ls", "--json").stdout)
    assert [v["name"] for v in listed] == ["crew", "greeting", "zip"]
    assert [v["name"] for v in json.loads(cli("ls", "--json", "--tag", "team").stdout)] == ["crew"]
    table = cli("ls")
    assert table.returncode == 0 and "greeting" in table.stdout and "hello world" in table.stdout

    for name in ("crew", "greeting", "zip"):
        assert cli("unset", name).returncode == 0
    one_line_error(cli("get", "crew"), "no variable named 'crew'")
    one_line_error(cli("unset", "crew"), "no variable named 'crew'")
    assert "No variables." in cli("ls").stdout


def test_cli_refuses_bad_input_in_one_line(api: str) -> None:
    one_line_error(cli("set", "Bad Name", "1"), "lowercase letters, digits, '_' and '-'")
    one_line_error(cli("get", "Bad Name"), "lowercase letters, digits, '_' and '-'")
    one_line_error(cli("set", "big", "x" * 10_001), "above the limit of 10000 bytes")
