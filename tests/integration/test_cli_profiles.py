"""`tideflow profile` and the project file `tideflow.toml` (issue 16): named profiles, one active,
`config set` writing to it, TIDEFLOW_PROFILE for one process; env > tideflow.toml > profile > default."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tideflow.settings import get_settings, project_path


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("TIDEFLOW_HOME", str(home))
    for key in list(os.environ):
        if key.startswith("TIDEFLOW_") and key != "TIDEFLOW_HOME":
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    return home


def tideflow(*args: str, cwd: Path | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tideflow", *args],
        capture_output=True, text=True, env={**os.environ, "COLUMNS": "250", **env},
        timeout=60, cwd=cwd,
    )  # fmt: skip


def _view(cwd: Path | None = None, **env: str) -> dict[str, object]:
    result = tideflow("config", "view", "--json", cwd=cwd, **env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def _port(view: dict[str, object]) -> tuple[object, object]:
    entry = view["settings"]["TIDEFLOW_SERVER_PORT"]  # type: ignore[index]
    return entry["value"], entry["source"]  # type: ignore[index]


def test_profiles_create_use_ls_inspect_delete(home: Path) -> None:
    assert tideflow("config", "set", "server_port=4301").returncode == 0  # the default profile
    made = tideflow("profile", "create", "staging", "--from", "default")
    assert made.returncode == 0, made.stderr
    assert (home / "profiles" / "staging.toml").is_file()
    assert tideflow("profile", "create", "empty").returncode == 0
    assert tideflow("profile", "ls").stdout.split("\n")[:3] == ["* default", "  empty", "  staging"]

    used = tideflow("profile", "use", "staging")
    assert used.returncode == 0 and "Now using profile 'staging'" in used.stdout
    assert tideflow("config", "set", "server_port=4302").returncode == 0  # writes staging's file
    view = _view()
    assert view["profile_name"] == "staging" and _port(view) == (4302, "profile")
    assert "4302" in tideflow("profile", "inspect").stdout
    assert "4301" in tideflow("profile", "inspect", "default").stdout
    # One process can pick another profile without switching.
    assert _port(_view(TIDEFLOW_PROFILE="default")) == (4301, "profile")
    assert _port(_view(TIDEFLOW_PROFILE="empty")) == (4200, "default")
    listed = json.loads(tideflow("profile", "ls", "--json").stdout)
    assert [p["name"] for p in listed if p["active"]] == ["staging"]

    refused = tideflow("profile", "delete", "staging", "-y")
    assert refused.returncode == 1 and "is active" in refused.stderr
    assert tideflow("profile", "use", "default").returncode == 0
    assert tideflow("profile", "delete", "staging", "-y").returncode == 0
    assert not (home / "profiles" / "staging.toml").exists()
    assert _port(_view()) == (4301, "profile")


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("profile", "create", "default"), "already exists"),
        (("profile", "create", "../evil"), "profile name '../evil' must be"),
        (("profile", "use", "nope"), "no profile is called 'nope'"),
        (("profile", "delete", "default", "-y"), "default profile cannot be deleted"),
        (("profile", "create", "x", "--from", "nope"), "no profile is called 'nope'"),
    ],
)
def test_bad_profile_commands_are_one_line_errors(
    home: Path, args: tuple[str, ...], fragment: str
) -> None:
    (home).mkdir(parents=True, exist_ok=True)
    (home / "profile.toml").write_text("TIDEFLOW_SERVER_PORT = 4301\n")
    result = tideflow(*args)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and fragment in result.stderr, result.stderr


def test_project_file_in_a_parent_beats_the_profile(home: Path, tmp_path: Path) -> None:
    assert tideflow("config", "set", "server_port=4301", "logging_level=DEBUG").returncode == 0
    project = tmp_path / "repo"
    deep = project / "src" / "pkg"
    deep.mkdir(parents=True)
    (project / "tideflow.toml").write_text("server_port = 4310\n[tideflow]\nclient_timeout = 7\n")
    view = _view(cwd=deep)
    assert _port(view) == (4310, "project")
    assert view["project"] == str(project / "tideflow.toml")
    assert view["settings"]["TIDEFLOW_CLIENT_TIMEOUT"] == {"value": 7.0, "source": "project"}  # type: ignore[index]
    assert view["settings"]["TIDEFLOW_LOGGING_LEVEL"]["source"] == "profile"  # type: ignore[index]
    # The environment still wins; outside the project the profile applies.
    assert _port(_view(cwd=deep, TIDEFLOW_SERVER_PORT="4999")) == (4999, "env")
    assert _port(_view(cwd=tmp_path)) == (4301, "profile")
    bad = project / "tideflow.toml"
    bad.write_text("server_port = \n")
    broken = tideflow("config", "view", cwd=deep)
    assert (
        broken.returncode == 1
        and "project file" in broken.stderr
        and "not valid TOML" in broken.stderr
    )


def test_project_lookup_in_process(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "tideflow.toml").write_text("TIDEFLOW_SERVER_PORT = 4321\n")
    inner = tmp_path / "a" / "b"
    inner.mkdir(parents=True)
    monkeypatch.chdir(inner)
    assert project_path() == tmp_path / "tideflow.toml"
    assert get_settings().server_port == 4321
    assert get_settings(server_port=4322).server_port == 4322
