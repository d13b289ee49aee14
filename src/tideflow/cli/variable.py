"""`tideflow variable`: named JSON values kept by the server (set, get, ls, inspect, unset)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table

from tideflow.cli._common import console, exit_with_error, format_time, open_client, print_json
from tideflow.exceptions import ObjectNotFound, ServerError

__all__ = ["app"]

app = typer.Typer(help="Manage variables (named JSON values).", no_args_is_help=True)

NameArg = Annotated[str, typer.Argument(help="The variable's name.")]


def _parse_value(text: str, as_string: bool) -> Any:
    if as_string:
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text  # not JSON: the text itself, as Prefect's CLI does


def _problem(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):  # a pydantic ValidationError: name the field and say what is wrong
        first = errors()[0]
        msg = str(first.get("msg", "")).removeprefix("Value error, ")
        loc = ".".join(str(p) for p in first.get("loc", ()))
        return f"{loc}: {msg}" if loc else msg
    return str(exc)


def _check_name(name: str) -> None:
    from tideflow.schemas.variables import check_variable_name

    try:
        check_variable_name(name)
    except ValueError as exc:
        exit_with_error(str(exc))


def _shown(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


@app.command("set")
def set_(
    name: NameArg,
    value: Annotated[str, typer.Argument(help="The value: JSON (42, [1, 2], {...}) or text.")],
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Change the variable when it exists.")
    ] = False,
    tag: Annotated[list[str] | None, typer.Option("--tag", help="A tag (repeatable).")] = None,
    as_string: Annotated[
        bool, typer.Option("--string", help="Store VALUE as text even when it parses as JSON.")
    ] = False,
) -> None:
    """Store VALUE under NAME (with --overwrite, change an existing variable)."""
    from pydantic import ValidationError

    from tideflow.schemas.variables import VariableCreate, VariableUpdate

    try:
        body = VariableCreate(name=name, value=_parse_value(value, as_string), tags=tag or [])
    except ValidationError as exc:
        exit_with_error(_problem(exc))
    with open_client() as client:
        try:
            made = client.create_variable(body)
            verb = "Set"
        except ServerError as exc:
            if exc.status_code != 409:
                raise
            if not overwrite:
                exit_with_error(f"variable {name!r} exists already; pass --overwrite to change it")
            update = VariableUpdate(value=body.value, **({"tags": body.tags} if tag else {}))
            made = client.update_variable(name, update)
            verb = "Changed"
    console.print(f"{verb} variable {made.name!r} = {_shown(made.value)}", markup=False)


@app.command("get")
def get(name: NameArg) -> None:
    """Print the value of NAME (text as is, anything else as JSON)."""
    _check_name(name)
    with open_client() as client:
        try:
            found = client.read_variable_by_name(name)
        except ObjectNotFound:
            exit_with_error(f"no variable named {name!r}")
    typer.echo(_shown(found.value))


@app.command("inspect")
def inspect(name: NameArg) -> None:
    """Show NAME with its tags and times (JSON)."""
    _check_name(name)
    with open_client() as client:
        try:
            found = client.read_variable_by_name(name)
        except ObjectNotFound:
            exit_with_error(f"no variable named {name!r}")
    print_json(found)


@app.command("ls")
def ls(
    name_like: Annotated[
        str | None, typer.Option("--name-like", help="Only names containing this.")
    ] = None,
    tag: Annotated[
        list[str] | None, typer.Option("--tag", help="Only variables with this tag (repeatable).")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many.")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False,
) -> None:
    """List variables sorted by name."""
    from tideflow.schemas.variables import VariableFilter

    flt = VariableFilter(name_like=name_like, tags_all=tag, limit=limit)
    with open_client() as client:
        found = client.read_variables(flt)
    if as_json:
        print_json(found)
        return
    if not found:
        console.print("No variables.")
        return
    table = Table()
    table.add_column("Name")
    table.add_column("Value", overflow="ellipsis", max_width=60, no_wrap=True)
    table.add_column("Tags")
    table.add_column("Updated", no_wrap=True)
    for var in found:
        table.add_row(var.name, _shown(var.value), ", ".join(var.tags), format_time(var.updated))
    console.print(table)


@app.command("unset")
def unset(name: NameArg) -> None:
    """Delete NAME."""
    _check_name(name)
    with open_client() as client:
        try:
            client.delete_variable_by_name(name)
        except ObjectNotFound:
            exit_with_error(f"no variable named {name!r}")
    console.print(f"Unset variable {name!r}", markup=False)
