"""docs/migrate-from-prefect.md holds: every Python block runs, as written, against the real server
(each in a fresh interpreter; the blocks assert what the text claims), and every `tideflow ...`
command its shell blocks show exists."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tideflow.testing import ServerProcess

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "migrate-from-prefect.md"
_BLOCK = re.compile(r"^```(\w+)\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def _blocks(language: str) -> list[str]:
    return [body for lang, body in _BLOCK.findall(GUIDE.read_text()) if lang == language]


def _first_line(code: str) -> str:
    return next(line for line in code.splitlines() if line.strip() and "import" not in line)


PYTHON = _blocks("python")


def test_the_guide_has_runnable_blocks() -> None:
    assert len(PYTHON) >= 4
    text = GUIDE.read_text()
    for name in ("__tideflow_kind", "TIDEFLOW_API_URL", "tideflow.flow-run.Completed",
                 "tideflow.resource.name", "pause_on_shutdown", "tideflow.toml"):  # fmt: skip
        assert name in text


@pytest.mark.parametrize("code", PYTHON, ids=[_first_line(c)[:40] for c in PYTHON])
def test_python_block_runs(code: str, sdk_server: ServerProcess, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env["TIDEFLOW_API_URL"] = sdk_server.api_url
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env,
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"


def _commands() -> list[tuple[str, ...]]:
    found: dict[tuple[str, ...], None] = {}
    for block in _blocks("bash"):
        for line in block.splitlines():
            words = line.split("#")[0].split()
            if len(words) >= 2 and words[0] == "tideflow":
                path = tuple(w for w in words[1:4] if re.fullmatch(r"[a-z][a-z-]*", w))
                found[path[:3] if path[:2] in {("server", "database")} else path[:2]] = None
    return list(found)


@pytest.mark.parametrize("command", _commands(), ids=" ".join)
def test_shell_commands_exist(command: tuple[str, ...]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "tideflow", *command, "--help"],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
