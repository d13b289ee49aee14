"""Settings: environment > profile > default, TIDEFLOW_HOME relocation, profile errors, setting_sources()."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from tideflow.settings import (
    DEFAULT_API_URL,
    Settings,
    get_settings,
    home_dir,
    profile_path,
    read_profile,
    setting_sources,
    write_profile,
)


def test_default_when_neither_env_nor_profile(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TIDEFLOW_SERVER_PORT")
    settings = get_settings()
    assert settings.server_port == 4200
    assert settings.api_url is None
    assert settings.local_api_url == DEFAULT_API_URL
    assert settings.resolved_api_url == DEFAULT_API_URL


def test_profile_beats_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TIDEFLOW_SERVER_PORT")
    write_profile({"TIDEFLOW_SERVER_PORT": 4301, "TIDEFLOW_LOGGING_LEVEL": "DEBUG"})
    settings = get_settings()
    assert settings.server_port == 4301
    assert settings.logging_level == "DEBUG"
    assert settings.local_api_url == "http://127.0.0.1:4301/api"


def test_env_beats_profile(monkeypatch: pytest.MonkeyPatch) -> None:
    write_profile({"TIDEFLOW_SERVER_PORT": 4301, "TIDEFLOW_CLIENT_TIMEOUT": 5.0})
    monkeypatch.setenv("TIDEFLOW_SERVER_PORT", "4302")
    settings = get_settings()
    assert settings.server_port == 4302
    assert settings.client_timeout == 5.0  # only the env-set key is overridden


def test_overrides_beat_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIDEFLOW_SERVER_PORT", "4302")
    assert get_settings(server_port=4303).server_port == 4303


def test_settings_are_reread_on_every_call(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TIDEFLOW_SERVER_PORT")
    write_profile({"TIDEFLOW_SERVER_PORT": 4311})
    assert get_settings().server_port == 4311
    write_profile({"TIDEFLOW_SERVER_PORT": 4312})
    assert get_settings().server_port == 4312


def test_tideflow_home_relocates_profile_and_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere"
    monkeypatch.setenv("TIDEFLOW_HOME", str(elsewhere))
    monkeypatch.delenv("TIDEFLOW_SERVER_PORT")
    assert home_dir() == elsewhere
    assert profile_path() == elsewhere / "profile.toml"
    written = write_profile({"TIDEFLOW_SERVER_PORT": 4321})
    assert written == elsewhere / "profile.toml"
    settings = get_settings()
    assert settings.home == elsewhere
    assert settings.server_port == 4321
    assert settings.resolved_database_url == f"sqlite+aiosqlite:///{elsewhere / 'tideflow.db'}"


def test_tideflow_home_defaults_to_dot_tideflow(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("TIDEFLOW_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert home_dir() == tmp_path / ".tideflow"


def test_tideflow_home_expands_user(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("TIDEFLOW_HOME", "~/tf")
    assert home_dir() == tmp_path / "tf"
    assert get_settings().home == tmp_path / "tf"


def test_database_url_setting_wins_over_home_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIDEFLOW_DATABASE_URL", "postgresql+asyncpg://u@h/db")
    assert get_settings().resolved_database_url == "postgresql+asyncpg://u@h/db"


def test_bad_profile_toml_is_a_clear_error() -> None:
    path = profile_path()
    path.write_text("TIDEFLOW_SERVER_PORT = = 3\n")
    with pytest.raises(ValueError, match=r"profile file .*profile\.toml is not valid TOML"):
        read_profile()
    with pytest.raises(ValueError, match="not valid TOML"):
        get_settings()


def test_bad_profile_value_names_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TIDEFLOW_SERVER_PORT")
    write_profile({"TIDEFLOW_SERVER_PORT": "not-a-port"})
    with pytest.raises(ValidationError, match="server_port"):
        get_settings()


def test_bad_env_value_names_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIDEFLOW_SERVER_PORT", "99999")
    with pytest.raises(ValidationError, match="server_port"):
        get_settings()


def test_missing_profile_is_empty() -> None:
    assert not profile_path().exists()
    assert read_profile() == {}


def test_profile_keys_are_case_insensitive(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TIDEFLOW_SERVER_PORT")
    profile_path().write_text('tideflow_server_port = 4331\ntideflow_api_url = "http://x:1/api"\n')
    assert read_profile() == {"TIDEFLOW_SERVER_PORT": 4331, "TIDEFLOW_API_URL": "http://x:1/api"}
    assert get_settings().server_port == 4331


def test_write_profile_round_trips_types() -> None:
    values = {
        "TIDEFLOW_SERVER_AUTOSTART": False,
        "TIDEFLOW_CLIENT_TIMEOUT": 2.5,
        "TIDEFLOW_SCHEDULER_MAX_RUNS": 7,
        "TIDEFLOW_API_URL": 'http://h:1/api?q="x"\\y',
    }
    write_profile(values)
    assert read_profile() == values
    write_profile({})
    assert read_profile() == {}


def test_setting_sources_reports_env_profile_and_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIDEFLOW_CLIENT_TIMEOUT", "3")
    write_profile({"TIDEFLOW_LOGGING_LEVEL": "WARNING", "TIDEFLOW_CLIENT_TIMEOUT": 9.0})
    sources = setting_sources()
    assert sources["TIDEFLOW_CLIENT_TIMEOUT"] == (3.0, "env")
    assert sources["TIDEFLOW_LOGGING_LEVEL"] == ("WARNING", "profile")
    assert sources["TIDEFLOW_SCHEDULER_MAX_DAYS"] == (100, "default")
    assert sources["TIDEFLOW_HOME"][1] == "env"  # conftest sets it


def test_setting_sources_covers_every_setting() -> None:
    sources = setting_sources()
    assert set(sources) == {f"TIDEFLOW_{name.upper()}" for name in Settings.model_fields}
    assert all(source in {"env", "profile", "default"} for _, source in sources.values())


def test_env_names_ignore_case(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TIDEFLOW_SERVER_PORT")
    monkeypatch.setenv("tideflow_server_port", "4341")
    assert get_settings().server_port == 4341
    assert setting_sources()["TIDEFLOW_SERVER_PORT"] == (4341, "env")


def test_env_strings_are_parsed_by_the_field_type(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIDEFLOW_SERVER_AUTOSTART", "false")
    monkeypatch.setenv("TIDEFLOW_CLIENT_TIMEOUT", "2.5")
    monkeypatch.setenv("TIDEFLOW_LOGGING_LEVEL", "DEBUG")
    settings = get_settings()
    assert settings.server_autostart is False
    assert settings.client_timeout == 2.5
    assert settings.logging_level == "DEBUG"
    monkeypatch.setenv("TIDEFLOW_LOGGING_LEVEL", "LOUD")
    with pytest.raises(ValidationError, match="logging_level"):
        get_settings()


def test_settings_construct_directly_with_the_same_precedence(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``Settings(...)`` is ``get_settings(...)``: keyword > environment > profile > default."""
    write_profile({"TIDEFLOW_SERVER_PORT": 4351, "TIDEFLOW_SCHEDULER_MAX_RUNS": 5})
    monkeypatch.setenv("TIDEFLOW_SERVER_PORT", "4352")
    settings = Settings(client_timeout=4.0, unknown_key="ignored")
    assert (settings.server_port, settings.scheduler_max_runs, settings.client_timeout) == (
        4352,
        5,
        4.0,
    )
    assert settings.late_runs_after == 15.0
