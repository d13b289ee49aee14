"""The top-level command with lazily loaded groups: help lists every group with its help line, a
mistyped group gets a suggestion (exit 2), and a bare group prints its help (exit 0)."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys

import pytest

from tideflow.cli.main import GROUPS


def _tideflow(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200", "TIDEFLOW_API_URL": "http://127.0.0.1:9/api"}
    return subprocess.run(
        [sys.executable, "-m", "tideflow", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def test_help_lists_every_group_with_its_help_line() -> None:
    result = _tideflow("--help")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    for name, module in GROUPS.items():
        summary = importlib.import_module(module).app.info.help.splitlines()[0]
        assert any(f" {name} " in line and summary in line for line in lines), (name, summary)
    assert any(" version " in line for line in lines)


def test_a_mistyped_group_is_one_line_with_a_suggestion_and_exit_2() -> None:
    result = _tideflow("deploymnt", "run", "x/y")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        # `deploy` (tideflow.yaml) is a top-level command too, so both are suggested.
        "Error: No such command 'deploymnt'. Did you mean 'deployment', 'deploy'? "
        "(see 'python -m tideflow --help')"
    ]


@pytest.mark.parametrize("group", ["deployment", "event"])
def test_a_bare_group_prints_its_help(group: str) -> None:
    result = _tideflow(group)
    assert result.returncode == 0, result.stderr
    assert f"Usage: python -m tideflow {group} [OPTIONS] COMMAND [ARGS]..." in result.stdout
