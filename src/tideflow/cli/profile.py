"""`tideflow profile`: named sets of settings, one active at a time (as Prefect's profiles).

The ``default`` profile is ``$TIDEFLOW_HOME/profile.toml``; another profile NAME is
``$TIDEFLOW_HOME/profiles/NAME.toml``. ``tideflow config set`` writes to the active profile, chosen
by ``tideflow profile use NAME`` or, for one process, ``TIDEFLOW_PROFILE=NAME``.
"""

from __future__ import annotations

import os
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from tideflow.cli._common import console, echo, exit_with_error, one_line, print_json

__all__ = ["app"]

app = typer.Typer(
    help="Manage settings profiles: create, use, ls, inspect, delete.", no_args_is_help=True
)

NameArg = Annotated[str, typer.Argument(help="The profile's name.", show_default=False)]


def _checked(name: str) -> str:
    from tideflow.settings import profile_path

    try:
        profile_path(name)
    except ValueError as exc:
        exit_with_error(one_line(exc))
    return name


def _active() -> str:
    from tideflow.settings import active_profile

    try:
        return active_profile()
    except ValueError as exc:
        exit_with_error(f"the active profile is invalid: {one_line(exc)}")


def _exists(name: str) -> bool:
    from tideflow.settings import DEFAULT_PROFILE, profile_names

    return name == DEFAULT_PROFILE or name in profile_names()


@app.command("ls")
def ls(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """List the profiles; the active one is marked with *."""
    from tideflow.settings import profile_names, profile_path

    active = _active()
    names = profile_names()
    if active not in names:
        names.append(active)
    if as_json:
        print_json(
            [{"name": n, "active": n == active, "path": str(profile_path(n))} for n in names]
        )
        return
    for name in names:
        echo(f"{'*' if name == active else ' '} {name}")


@app.command("create")
def create(
    name: NameArg,
    from_: Annotated[
        str | None, typer.Option("--from", help="Copy the settings of this profile.")
    ] = None,
) -> None:
    """Create an empty profile (or a copy of another with --from)."""
    from tideflow.settings import profile_path, read_profile, write_profile

    _checked(name)
    if _exists(name) and (name != "default" or profile_path(name).exists()):
        exit_with_error(f"profile {name!r} already exists")
    values = {}
    if from_ is not None:
        _checked(from_)
        if not _exists(from_):
            exit_with_error(f"no profile is called {from_!r} (see 'tideflow profile ls')")
        try:
            values = read_profile(from_)
        except ValueError as exc:
            exit_with_error(one_line(exc))
    path = profile_path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    active = os.environ.pop("TIDEFLOW_PROFILE", None)
    try:
        os.environ["TIDEFLOW_PROFILE"] = name  # write_profile writes the active profile's file
        write_profile(values)
    finally:
        os.environ.pop("TIDEFLOW_PROFILE", None)
        if active is not None:
            os.environ["TIDEFLOW_PROFILE"] = active
    echo(f"Created profile {name!r} ({path})")
    echo(f"Switch to it with: tideflow profile use {name}")


@app.command("use")
def use(name: NameArg) -> None:
    """Make NAME the active profile for every later command and process."""
    from tideflow.settings import set_active_profile

    _checked(name)
    if not _exists(name):
        exit_with_error(
            f"no profile is called {name!r}; create it with 'tideflow profile create {name}'"
        )
    set_active_profile(name)
    echo(f"Now using profile {name!r}")
    if os.environ.get("TIDEFLOW_PROFILE", "").strip() not in ("", name):
        echo(
            f"Note: TIDEFLOW_PROFILE={os.environ['TIDEFLOW_PROFILE']} is set in this environment and "
            "overrides it here",
            err=True,
        )


@app.command("inspect")
def inspect(
    name: Annotated[str | None, typer.Argument(help="Default: the active profile.")] = None,
) -> None:
    """Show the settings a profile holds."""
    from tideflow.settings import profile_path, read_profile

    name = _checked(name) if name is not None else _active()
    if not _exists(name):
        exit_with_error(f"no profile is called {name!r} (see 'tideflow profile ls')")
    try:
        values = read_profile(name)
    except ValueError as exc:
        exit_with_error(one_line(exc))
    table = Table(title=f"profile {name}: {profile_path(name)}", title_justify="left")
    table.add_column("Setting", no_wrap=True)
    table.add_column("Value", overflow="fold")
    for key in sorted(values):
        shown = "******** (set)" if key.endswith("_KEY") and values[key] else str(values[key])
        table.add_row(key, Text(shown))
    if values:
        console.print(table)
    else:
        echo(f"Profile {name!r} sets nothing (every setting has its default)")


@app.command("delete")
def delete(
    name: NameArg,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete a profile's file (not the default profile, nor the active one)."""
    from tideflow.settings import DEFAULT_PROFILE, profile_path

    _checked(name)
    if name == DEFAULT_PROFILE:
        exit_with_error("the default profile cannot be deleted (unset its settings instead)")
    if not _exists(name):
        exit_with_error(f"no profile is called {name!r} (see 'tideflow profile ls')")
    if name == _active():
        exit_with_error(f"profile {name!r} is active; 'tideflow profile use' another one first")
    if not yes and not typer.confirm(f"Delete profile {name!r}?"):
        exit_with_error("not deleted")
    profile_path(name).unlink(missing_ok=True)
    echo(f"Deleted profile {name!r}")
