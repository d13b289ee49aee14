"""`tideflow config`: view every setting with its source, and set or unset values in the profile file.

Keys are accepted with or without the ``TIDEFLOW_`` prefix, in any case. A value is validated against
the setting's type and constraints before the profile is written, so a bad value never lands there.
"""

from __future__ import annotations

import difflib
import os
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from tideflow.cli._common import console, exit_with_error, one_line, print_json

if TYPE_CHECKING:
    from pydantic.fields import FieldInfo

__all__ = ["app"]

app = typer.Typer(
    help="View and change tideflow settings (environment > tideflow.toml > profile > default).",
    no_args_is_help=True,
)

_PREFIX = "TIDEFLOW_"
# TIDEFLOW_HOME locates the profile itself, so only the environment can set it.
_ENV_ONLY = {"TIDEFLOW_HOME"}


def _fields() -> dict[str, FieldInfo]:
    """``{"TIDEFLOW_X": field}`` for every setting."""
    from tideflow.settings import Settings

    return {_PREFIX + name.upper(): info for name, info in Settings.model_fields.items()}


def _canonical_key(raw: str, fields: dict[str, FieldInfo]) -> str:
    """``TIDEFLOW_X`` for ``raw`` (prefix optional, any case), or one error line with close matches."""
    key = raw.strip().upper()
    if not key.startswith(_PREFIX):
        key = _PREFIX + key
    if key in fields:
        return key
    close = difflib.get_close_matches(key, list(fields), n=3, cutoff=0.6)
    hint = (
        f"; did you mean {', '.join(close)}?"
        if close
        else "; run `tideflow config view` to list them"
    )
    exit_with_error(f"unknown setting {raw.strip()!r}{hint}")


def _validate(key: str, info: FieldInfo, raw: str) -> Any:
    """``raw`` converted to the setting's type, as a profile value; one error line when invalid."""
    from pydantic import TypeAdapter, ValidationError

    try:
        adapter: TypeAdapter[Any] = TypeAdapter(Annotated[info.annotation, info])  # type: ignore[arg-type]
        value = adapter.validate_python(raw)
    except ValidationError as exc:
        reason = "; ".join(str(err["msg"]) for err in exc.errors())
        exit_with_error(f"invalid value {raw!r} for {key}: {reason}")
    return value if isinstance(value, bool | int | float) else str(value)


def _read_profile() -> dict[str, Any]:
    from tideflow.settings import read_profile

    try:
        return read_profile()
    except ValueError as exc:
        exit_with_error(one_line(exc))


def _note_env_overrides(keys: list[str]) -> None:
    for key in keys:
        if key in os.environ:
            console.print(
                Text(
                    f"Note: {key} is also set in the environment ({os.environ[key]!r}), which overrides the profile.",
                    style="yellow",
                )
            )


# Credentials: `config view` says whether they are set, never what they are (its output is pasted
# into bug reports and shown on shared screens).
_SECRETS = frozenset({"TIDEFLOW_API_KEY", "TIDEFLOW_SERVER_ADMIN_KEY", "TIDEFLOW_SECRETS_KEY"})


def _shown(key: str, value: Any) -> Any:
    return "******** (set)" if key in _SECRETS and value else value


@app.command("view")
def view(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Show every setting, its value and where it came from (env, project, profile or default)."""
    from tideflow.settings import active_profile, profile_path, project_path, setting_sources

    try:
        sources = setting_sources()
    except ValueError as exc:
        exit_with_error(f"invalid tideflow settings: {one_line(exc)}")
    try:
        path, name = profile_path(), active_profile()
    except ValueError as exc:
        exit_with_error(f"invalid tideflow settings: {one_line(exc)}")
    project = project_path()
    if as_json:
        print_json(
            {
                "profile": str(path),
                "profile_name": name,
                "project": str(project) if project else None,
                "settings": {
                    key: {"value": _shown(key, value), "source": source}
                    for key, (value, source) in sources.items()
                },
            }
        )
        return
    title = f"profile: {path}" + (f" ({name})" if name != "default" else "")
    if project is not None:
        title += f"; project: {project}"
    table = Table(title=title, title_justify="left")
    table.add_column("Setting", no_wrap=True)
    table.add_column("Value", overflow="fold")
    table.add_column("Source", no_wrap=True)
    styles = {"env": "yellow", "project": "magenta", "profile": "cyan", "default": "dim"}
    for key, (value, source) in sources.items():
        shown = "-" if value is None else str(_shown(key, value))
        table.add_row(key, Text(shown), Text(source, style=styles[source]))
    console.print(table)


@app.command("set")
def set_(
    pairs: Annotated[
        list[str],
        typer.Argument(help="KEY=VALUE pairs, e.g. server_port=4300.", show_default=False),
    ],
) -> None:
    """Write settings to the active profile's file (see `tideflow profile`)."""
    from tideflow.settings import write_profile

    fields = _fields()
    updates: dict[str, Any] = {}
    for pair in pairs:
        raw_key, sep, raw_value = pair.partition("=")
        if not sep or not raw_key.strip():
            exit_with_error(f"expected KEY=VALUE, got {pair!r}")
        key = _canonical_key(raw_key, fields)
        if key in _ENV_ONLY:
            exit_with_error(
                f"{key} can only be set in the environment (the profile file lives inside it)"
            )
        updates[key] = _validate(key, fields[key], raw_value)
    profile = _read_profile()
    path = write_profile({**profile, **updates})
    for key, value in updates.items():
        console.print(Text(f"Set {key} = {value!r}"))
    console.print(Text(f"Profile: {path}", style="dim"))
    _note_env_overrides(list(updates))


@app.command("unset")
def unset(
    keys: Annotated[
        list[str], typer.Argument(help="Settings to remove from the profile.", show_default=False)
    ],
) -> None:
    """Remove settings from the profile file, so they fall back to their defaults."""
    from tideflow.settings import write_profile

    fields = _fields()
    canonical = list(dict.fromkeys(_canonical_key(raw, fields) for raw in keys))
    profile = _read_profile()
    removed = [key for key in canonical if key in profile]
    for key in canonical:
        if key in removed:
            console.print(Text(f"Unset {key}"))
        else:
            console.print(Text(f"{key} was not set in the profile; nothing to unset", style="dim"))
    if removed:
        path = write_profile({k: v for k, v in profile.items() if k not in removed})
        console.print(Text(f"Profile: {path}", style="dim"))
    _note_env_overrides(canonical)
