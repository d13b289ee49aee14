"""`tideflow config view|set|unset`, run as real subprocesses against the per-test TIDEFLOW_HOME."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tideflow.settings import Settings, profile_path, read_profile, write_profile


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "COLUMNS": "200", **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "tideflow", *args],
        capture_output=True, text=True, timeout=60, env=full_env, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_set_writes_profile_with_any_key_spelling() -> None:
    result = run_cli(
        "config", "set", "server_port=4301", "TIDEFLOW_LOGGING_LEVEL=DEBUG", "Client_Timeout=2.5",
        "tideflow_server_autostart=false",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert read_profile() == {
        "TIDEFLOW_SERVER_PORT": 4301,
        "TIDEFLOW_LOGGING_LEVEL": "DEBUG",
        "TIDEFLOW_CLIENT_TIMEOUT": 2.5,
        "TIDEFLOW_SERVER_AUTOSTART": False,
    }
    assert "Set TIDEFLOW_SERVER_PORT = 4301" in result.stdout
    assert str(profile_path()) in result.stdout


def test_set_keeps_other_profile_values() -> None:
    write_profile({"TIDEFLOW_SCHEDULER_MAX_RUNS": 5})
    assert run_cli("config", "set", "late_runs_after=3").returncode == 0
    assert read_profile() == {"TIDEFLOW_SCHEDULER_MAX_RUNS": 5, "TIDEFLOW_LATE_RUNS_AFTER": 3.0}


def test_set_unknown_key_names_it_and_suggests_close_matches() -> None:
    write_profile({"TIDEFLOW_SCHEDULER_MAX_RUNS": 5})
    before = profile_path().read_bytes()
    result = run_cli("config", "set", "server_prot=4300")
    assert_one_line_error(result, "unknown setting 'server_prot'", "TIDEFLOW_SERVER_PORT")
    assert profile_path().read_bytes() == before


def test_set_invalid_value_names_key_and_reason_and_leaves_profile_unchanged() -> None:
    write_profile({"TIDEFLOW_SERVER_PORT": 4301})
    before = profile_path().read_bytes()
    result = run_cli("config", "set", "logging_level=DEBUG", "TIDEFLOW_SERVER_PORT=abc")
    assert_one_line_error(result, "TIDEFLOW_SERVER_PORT", "'abc'", "valid integer")
    assert profile_path().read_bytes() == before  # the valid pair before it was not written either
    result = run_cli("config", "set", "server_port=70000")
    assert_one_line_error(result, "TIDEFLOW_SERVER_PORT", "less than or equal to 65535")
    result = run_cli("config", "set", "logging_level=LOUD")
    assert_one_line_error(result, "TIDEFLOW_LOGGING_LEVEL", "'DEBUG', 'INFO'")
    assert profile_path().read_bytes() == before


def test_set_malformed_pair_and_env_only_key_are_refused() -> None:
    assert_one_line_error(
        run_cli("config", "set", "server_port"), "expected KEY=VALUE", "'server_port'"
    )
    assert_one_line_error(run_cli("config", "set", "home=/tmp/x"), "TIDEFLOW_HOME", "environment")
    assert not profile_path().exists()


def test_set_notes_when_env_overrides_the_new_value() -> None:
    result = run_cli("config", "set", "server_port=4301", env={"TIDEFLOW_SERVER_PORT": "4999"})
    assert result.returncode == 0, result.stderr
    assert "TIDEFLOW_SERVER_PORT is also set in the environment ('4999')" in result.stdout
    assert read_profile() == {"TIDEFLOW_SERVER_PORT": 4301}
    quiet = run_cli("config", "set", "client_timeout=4")
    assert "environment" not in quiet.stdout


def test_view_shows_value_and_source_of_every_setting() -> None:
    write_profile({"TIDEFLOW_LOGGING_LEVEL": "ERROR"})
    result = run_cli("config", "view", env={"TIDEFLOW_CLIENT_TIMEOUT": "7"})
    assert result.returncode == 0, result.stderr
    assert str(profile_path()) in result.stdout
    cells = [
        [cell.strip() for cell in line.strip()[1:-1].split("│")]
        for line in result.stdout.splitlines()
        if line.startswith("│")
    ]
    rows = {cell[0]: cell[1:] for cell in cells}
    assert rows["TIDEFLOW_LOGGING_LEVEL"] == ["ERROR", "profile"]
    assert rows["TIDEFLOW_CLIENT_TIMEOUT"] == ["7.0", "env"]
    assert rows["TIDEFLOW_SCHEDULER_MAX_DAYS"] == ["100", "default"]
    assert rows["TIDEFLOW_DATABASE_URL"] == ["-", "default"]
    assert set(rows) == {f"TIDEFLOW_{name.upper()}" for name in Settings.model_fields}


def test_view_json_lists_sources_and_profile_path() -> None:
    write_profile({"TIDEFLOW_SCHEDULER_MAX_RUNS": 9})
    result = run_cli("config", "view", "--json", env={"TIDEFLOW_API_URL": "http://h:1/api"})
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["profile"] == str(profile_path())
    assert data["settings"]["TIDEFLOW_SCHEDULER_MAX_RUNS"] == {"value": 9, "source": "profile"}
    assert data["settings"]["TIDEFLOW_API_URL"] == {"value": "http://h:1/api", "source": "env"}
    assert data["settings"]["TIDEFLOW_DATABASE_URL"] == {"value": None, "source": "default"}
    assert data["settings"]["TIDEFLOW_SERVER_AUTOSTART"] == {"value": False, "source": "env"}


def test_view_follows_tideflow_home(tmp_path: Path) -> None:
    other = tmp_path / "other-home"
    env = {"TIDEFLOW_HOME": str(other)}
    assert run_cli("config", "set", "scheduler_max_days=12", env=env).returncode == 0
    assert (other / "profile.toml").exists()
    assert not profile_path().exists()
    data = json.loads(run_cli("config", "view", "--json", env=env).stdout)
    assert data["profile"] == str(other / "profile.toml")
    assert data["settings"]["TIDEFLOW_SCHEDULER_MAX_DAYS"] == {"value": 12, "source": "profile"}


def test_unset_removes_keys_and_says_when_nothing_was_set() -> None:
    write_profile({"TIDEFLOW_SERVER_PORT": 4301, "TIDEFLOW_LOGGING_LEVEL": "DEBUG"})
    result = run_cli("config", "unset", "SERVER_PORT", "api_url")
    assert result.returncode == 0, result.stderr
    assert "Unset TIDEFLOW_SERVER_PORT" in result.stdout
    assert "TIDEFLOW_API_URL was not set in the profile" in result.stdout
    assert read_profile() == {"TIDEFLOW_LOGGING_LEVEL": "DEBUG"}
    data = json.loads(run_cli("config", "view", "--json").stdout)
    assert data["settings"]["TIDEFLOW_LOGGING_LEVEL"]["source"] == "profile"


def test_unset_unknown_key_is_an_error() -> None:
    write_profile({"TIDEFLOW_SERVER_PORT": 4301})
    assert_one_line_error(
        run_cli("config", "unset", "server_pot"), "unknown setting", "TIDEFLOW_SERVER_PORT"
    )
    assert read_profile() == {"TIDEFLOW_SERVER_PORT": 4301}


def test_broken_profile_is_one_line_error() -> None:
    profile_path().write_text("this is = = not toml\n")
    assert_one_line_error(run_cli("config", "view"), "profile.toml", "not valid TOML")
    assert_one_line_error(run_cli("config", "set", "server_port=1"), "not valid TOML")
    assert profile_path().read_text() == "this is = = not toml\n"


def test_bad_env_value_is_one_line_error_naming_it() -> None:
    result = run_cli("config", "view", env={"TIDEFLOW_SERVER_PORT": "abc"})
    assert_one_line_error(result, "TIDEFLOW_SERVER_PORT", "'abc'")


def test_view_masks_the_secrets_key() -> None:
    key = "k" * 43 + "="
    shown = run_cli("config", "view", env={"TIDEFLOW_SECRETS_KEY": key})
    assert shown.returncode == 0, shown.stderr
    assert "TIDEFLOW_SECRETS_KEY" in shown.stdout and "(set)" in shown.stdout
    assert key not in shown.stdout
