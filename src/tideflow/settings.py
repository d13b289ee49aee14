"""Every ``TIDEFLOW_*`` setting in one pydantic model; the only place the environment is read.

Values come, highest first, from keyword arguments, environment variables (names matched without
regard to case), then a project file ``tideflow.toml`` in the working directory or the nearest parent
holding one, then the active profile's file (written by ``tideflow config set``), then the defaults
below. The active profile is ``TIDEFLOW_PROFILE`` or the one ``tideflow profile use`` chose
(``$TIDEFLOW_HOME/active_profile``); the ``default`` profile is ``$TIDEFLOW_HOME/profile.toml``, any
other ``$TIDEFLOW_HOME/profiles/<name>.toml``. The sources are merged here by hand rather than with
pydantic-settings, whose import costs every process ~30 ms (issue 6); values are validated the same
way (strings from the environment are parsed by the field's type, errors name the setting).
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "DEFAULT_API_URL",
    "DEFAULT_PROFILE",
    "PROJECT_FILE",
    "Settings",
    "active_profile",
    "get_settings",
    "home_dir",
    "profile_names",
    "profile_path",
    "project_path",
    "read_profile",
    "read_project",
    "set_active_profile",
    "setting_sources",
    "write_profile",
]

ENV_PREFIX = "TIDEFLOW_"
DEFAULT_API_URL = "http://127.0.0.1:4200/api"


def home_dir() -> Path:
    """``TIDEFLOW_HOME`` (only ever set by the environment), defaulting to ``~/.tideflow``."""
    raw = os.environ.get("TIDEFLOW_HOME")
    return Path(raw).expanduser() if raw else Path.home() / ".tideflow"


DEFAULT_PROFILE = "default"
PROJECT_FILE = "tideflow.toml"
_PROFILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_MAX_PARENTS = 64  # directories looked at for a project file


def _check_profile_name(name: str) -> str:
    if not _PROFILE_NAME.match(name):
        raise ValueError(
            f"profile name {name!r} must be 1-64 letters, digits, '_', '.' or '-' "
            "(not starting with a punctuation mark)"
        )
    return name


def active_profile() -> str:
    """``TIDEFLOW_PROFILE``, else the name in ``$TIDEFLOW_HOME/active_profile``, else default."""
    name = os.environ.get("TIDEFLOW_PROFILE", "").strip()
    if not name:
        try:
            name = (home_dir() / "active_profile").read_text().strip()
        except OSError:
            name = ""
    return _check_profile_name(name) if name else DEFAULT_PROFILE


def set_active_profile(name: str) -> Path:
    """Make ``name`` the active profile (for processes without ``TIDEFLOW_PROFILE``)."""
    path = home_dir() / "active_profile"
    path.parent.mkdir(parents=True, exist_ok=True)
    if _check_profile_name(name) == DEFAULT_PROFILE:
        path.unlink(missing_ok=True)
    else:
        path.write_text(name + "\n")
    return path


def profile_path(name: str | None = None) -> Path:
    """The file of profile ``name`` (default: the active one)."""
    name = _check_profile_name(name) if name is not None else active_profile()
    if name == DEFAULT_PROFILE:
        return home_dir() / "profile.toml"
    return home_dir() / "profiles" / f"{name}.toml"


def profile_names() -> list[str]:
    """Every profile that has a file, and always ``default``, sorted."""
    names = {DEFAULT_PROFILE}
    folder = home_dir() / "profiles"
    if folder.is_dir():
        names.update(p.stem for p in folder.glob("*.toml") if _PROFILE_NAME.match(p.stem))
    return sorted(names)


def _read_toml(path: Path, what: str) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        return {}
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{what} {path} is not valid TOML: {exc}") from exc
    return data


def read_profile(name: str | None = None) -> dict[str, Any]:
    """A profile's file (default: the active one) as ``{"TIDEFLOW_X": value}``; a missing file is
    an empty profile."""
    return {str(k).upper(): v for k, v in _read_toml(profile_path(name), "profile file").items()}


def project_path(start: Path | None = None) -> Path | None:
    """The ``tideflow.toml`` in ``start`` (default: the working directory) or its nearest parent."""
    try:
        here = (start or Path.cwd()).resolve()
    except OSError:  # the working directory was deleted
        return None
    for folder in [here, *here.parents][:_MAX_PARENTS]:
        candidate = folder / PROJECT_FILE
        if candidate.is_file():
            return candidate
    return None


def read_project() -> dict[str, Any]:
    """The project file as ``{"TIDEFLOW_X": value}``: keys with or without the prefix, any case,
    at the top level or under a ``[tideflow]`` table."""
    path = project_path()
    if path is None:
        return {}
    data = _read_toml(path, "project file")
    table = data.get("tideflow")
    if isinstance(table, dict):
        data = {**{k: v for k, v in data.items() if k != "tideflow"}, **table}
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = str(key).upper()
        out[name if name.startswith(ENV_PREFIX) else ENV_PREFIX + name] = value
    return out


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def write_profile(values: dict[str, Any]) -> Path:
    """Replace the profile file with ``values`` (keys ``TIDEFLOW_*``), atomically."""
    path = profile_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"{key} = {_toml_value(values[key])}" for key in sorted(values)]
    tmp = path.with_suffix(".toml.tmp")
    tmp.write_text("\n".join(lines) + ("\n" if lines else ""))
    tmp.replace(path)
    return path


def _environment() -> dict[str, str]:
    """``TIDEFLOW_*`` environment variables, keys upper-cased (lookup ignores case)."""
    return {k.upper(): v for k, v in os.environ.items() if k.upper().startswith(ENV_PREFIX)}


class Settings(BaseModel):
    """tideflow's settings. Field ``x`` is read from ``TIDEFLOW_X``."""

    model_config = ConfigDict(extra="ignore", validate_default=True)

    home: Path = Field(
        default_factory=home_dir, description="Where the local database, logs and profile live."
    )
    api_url: str | None = Field(
        None, description="API base URL including /api; unset means the local server."
    )
    database_url: str | None = Field(
        None, description="SQLAlchemy URL; default sqlite+aiosqlite:///$TIDEFLOW_HOME/tideflow.db."
    )
    server_host: str = Field("127.0.0.1", description="Interface `tideflow server start` binds.")
    server_port: int = Field(
        4200, ge=1, le=65535, description="Port `tideflow server start` binds."
    )
    server_allowed_hosts: str = Field(
        "",
        description="Extra Host names the server answers, comma-separated (* for any); "
        "127.0.0.1, localhost, ::1 and server_host are always allowed.",
    )
    server_allowed_origins: str = Field(
        "",
        description="Extra browser origins (e.g. https://ops.example.com) allowed to open the "
        "websockets and post, comma-separated (* for any); the server's own origin always is.",
    )
    server_auth: Literal["auto", "on", "off"] = Field(
        "auto",
        description="API keys required on every route but health and version: auto = only when "
        "the server binds a non-loopback address; on; off.",
    )
    server_admin_key: str | None = Field(
        None,
        description="An admin API key (at least 16 characters) the server accepts besides the "
        "stored ones; with auth on, this or `tideflow server bootstrap` is needed to start.",
    )
    api_key: str | None = Field(
        None, description="API key the SDK and CLI send (Authorization: Bearer) to the server."
    )
    logging_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = Field(
        "INFO", description="Level of tideflow's own loggers and the default run-log level."
    )
    server_autostart: bool = Field(
        True, description="Start a background local server when none answers."
    )
    client_timeout: float = Field(30.0, gt=0, description="Seconds an API request may take.")
    server_start_timeout: float = Field(
        30.0, gt=0, description="Seconds to wait for an auto-started server."
    )
    client_state_report_patience: float = Field(
        60.0,
        ge=0,
        description="Seconds a run process keeps retrying a state report while the server cannot "
        "be reached or answers 502/503/504 (a restart), before the report is given up.",
    )
    logs_batch_interval: float = Field(
        0.25, gt=0, description="Seconds between run-log batches sent to the API."
    )
    logs_max_buffer: int = Field(
        100_000, gt=0, description="Run-log records kept while the API is unreachable."
    )
    results_storage: str | None = Field(
        None,
        description="Where task results are stored when a task persists or caches them: a folder "
        "or an fsspec URL; default $TIDEFLOW_HOME/results.",
    )
    runner_poll_interval: float = Field(
        10.0, gt=0, description="Fallback poll of serve() for missed pushes."
    )
    runner_heartbeat_interval: float = Field(
        5.0, gt=0, description="Seconds between runner heartbeats."
    )
    runner_heartbeat_timeout: float = Field(
        60.0,
        gt=0,
        description="Silence after which a runner's runs are Crashed and its deployments NOT_READY.",
    )
    runner_cancel_grace: float = Field(
        10.0, ge=0, description="SIGTERM→SIGKILL grace when cancelling a run."
    )
    runner_disconnect_grace: float = Field(
        10.0,
        ge=0,
        description="Seconds a runner whose websocket closed without a goodbye has to reconnect "
        "before its runs are Crashed (the heartbeat timeout stays the fallback).",
    )
    task_workers_max_redeliveries: int = Field(
        3,
        ge=0,
        description="Times a background task run whose task worker died is offered again before "
        "it is Crashed (ADR 0005).",
    )
    task_workers_heartbeat_timeout: float = Field(
        30.0,
        gt=0,
        description="Silence after which a task worker's claimed task runs are handed back "
        "(a websocket closed without a goodbye hands them back at once).",
    )
    late_runs_after: float = Field(
        15.0, ge=0, description="Seconds after its start time a scheduled run becomes Late."
    )
    metric_triggers_interval: float = Field(
        10.0, gt=0, description="Seconds between evaluations of the metric triggers."
    )
    scheduler_max_runs: int = Field(
        3, gt=0, description="Future runs kept scheduled per active schedule."
    )
    scheduler_max_days: int = Field(100, gt=0, description="Horizon of scheduled runs, in days.")
    scheduler_compute_timeout: float = Field(
        10.0,
        gt=0,
        description="Seconds one schedule's next run times may take to compute (off the event "
        "loop); a stored schedule that takes longer is quarantined, a new one refused with 422.",
    )
    server_max_request_bytes: int = Field(
        16 * 2**20,
        ge=2**16,
        description="Largest request body, and largest frame on /api/events/in, the server "
        "accepts (413 above; frames up to twice this are answered with refusals, larger ones "
        "close the websocket).",
    )
    server_max_json_depth: int = Field(
        100,
        ge=16,
        description="Deepest nesting of objects and arrays in a JSON request body (422 above); "
        "event payloads nest at most 64 levels.",
    )
    automations_max_causal_depth: int = Field(
        3,
        ge=1,
        description="An automation does not fire on an event its own actions caused this many "
        "firings deep (stops self-feeding loops; chains of different automations are unaffected).",
    )
    automations_max_firings_per_minute: int = Field(
        600,
        ge=1,
        description="An automation firing more often than this within a minute is paused "
        "(tideflow.automation.paused says why).",
    )
    templates_render_timeout: float = Field(
        2.0,
        gt=0,
        le=60,
        description="Seconds the templates of one automation action may take to render; "
        "past it the action fails with the reason.",
    )
    templates_max_output: int = Field(
        2**20,
        ge=1024,
        description="Characters the templates of one action may render, and the size of any one "
        "value a template builds on the way; above it the action fails with the reason.",
    )
    webhooks_allowed_networks: str = Field(
        "",
        description="Comma-separated CIDRs, host names (or *.domain) a webhook action may reach "
        "although they are loopback, link-local, private or reserved, e.g. "
        "'127.0.0.1/32,hooks.internal'; '*' allows every address. Empty: public addresses only.",
    )
    events_retention_days: float = Field(
        7.0, gt=0, description="Days events are kept before pruning."
    )
    events_max_payload_bytes: int = Field(
        1_000_000, gt=0, description="Largest accepted event payload (JSON bytes)."
    )
    events_client_buffer: int = Field(
        10_000, gt=0, description="Events an SDK process buffers while offline."
    )
    events_client_wait: float = Field(
        10.0,
        ge=0,
        description="Seconds emit_event waits for room when the SDK buffer is full and the server "
        "is reachable but behind (backpressure); after that, or while the server is unreachable, "
        "the oldest unsent event is dropped and counted. 0: never wait.",
    )
    events_spool_max_bytes: int = Field(
        50 * 2**20,
        ge=0,
        description="Bytes of unsent events kept in $TIDEFLOW_HOME/spool at exit for the next "
        "process to send (oldest dropped first, and counted); 0 turns the spool off.",
    )
    events_backlog_limit: int = Field(
        50_000,
        gt=0,
        description="Events the trigger engine may have queued before ingestion waits.",
    )
    tasks_refresh_cache: bool = Field(
        False,
        description="Tasks that do not set refresh_cache recompute and overwrite their cached "
        "results instead of reading them.",
    )
    task_default_retries: int = Field(
        0, ge=0, description="Retries of a task that does not set retries."
    )
    task_default_retry_delay_seconds: float | list[float] = Field(
        0.0,
        description="Retry delays of a task that does not set retry_delay_seconds: seconds, or a "
        "comma-separated list with one per retry (e.g. '1,10,100').",
    )
    test_crash_at: str | None = Field(
        None,
        description="Test hook: the server exits abruptly at this named point (e.g. after-firing-commit).",
    )
    secrets_key: str | None = Field(
        None,
        description="Fernet key(s) encrypting secrets at rest, comma-separated (the first encrypts); "
        "unset: $TIDEFLOW_HOME/secrets.key, created with mode 0600 on first use.",
    )

    @field_validator("task_default_retry_delay_seconds", mode="before")
    @classmethod
    def _delay_list(cls, value: Any) -> Any:
        if isinstance(value, str) and "," in value:
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("task_default_retry_delay_seconds")
    @classmethod
    def _non_negative_delays(cls, value: float | list[float]) -> float | list[float]:
        values = value if isinstance(value, list) else [value]
        if any(v < 0 for v in values):
            raise ValueError("retry delays must be ≥ 0 seconds")
        return value

    @field_validator("home", mode="before")
    @classmethod
    def _expand_home(cls, value: Any) -> Any:
        return Path(value).expanduser() if isinstance(value, str) else value

    @model_validator(mode="before")
    @classmethod
    def _from_sources(cls, data: Any) -> Any:
        # Fill what the caller did not pass: environment first, then the profile file.
        if not isinstance(data, dict):
            return data
        env = _environment()
        project = read_project()
        profile = read_profile()
        merged = dict(data)
        for name in cls.model_fields:
            key = ENV_PREFIX + name.upper()
            if name in merged or (key == "TIDEFLOW_HOME" and key not in env):
                continue  # TIDEFLOW_HOME locates the profile: only the environment sets it
            if key in env:
                merged[name] = env[key]
            elif key in project:
                merged[name] = project[key]
            elif key in profile:
                merged[name] = profile[key]
        return merged

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{self.home / 'tideflow.db'}"

    @property
    def local_api_url(self) -> str:
        """The local server's API URL, from ``server_host``/``server_port``."""
        host = "127.0.0.1" if self.server_host in ("0.0.0.0", "::", "") else self.server_host
        return f"http://{host}:{self.server_port}/api"

    @property
    def resolved_api_url(self) -> str:
        """``api_url`` when set, else the local server's URL."""
        return (self.api_url or self.local_api_url).rstrip("/")


def get_settings(**overrides: Any) -> Settings:
    """Settings read now (environment and profile are re-read on every call)."""
    return Settings(**overrides)


def setting_sources() -> dict[str, tuple[Any, str]]:
    """``{"TIDEFLOW_X": (value, "env" | "project" | "profile" | "default")}`` for ``tideflow
    config view``."""
    settings = get_settings()
    profile = read_profile()
    project = read_project()
    out: dict[str, tuple[Any, str]] = {}
    env = _environment()
    for name in Settings.model_fields:
        key = ENV_PREFIX + name.upper()
        if key in env:
            source = "env"
        elif key in project and key != "TIDEFLOW_HOME":
            source = "project"
        elif key in profile and key != "TIDEFLOW_HOME":
            source = "profile"
        else:
            source = "default"
        out[key] = (getattr(settings, name), source)
    return out
