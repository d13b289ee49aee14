"""`tideflow secret`: named strings the server keeps encrypted (set, get, ls, delete)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.table import Table

from tideflow.cli._common import console, exit_with_error, format_time, open_client, print_json
from tideflow.exceptions import ObjectNotFound, ServerError

__all__ = ["app"]

app = typer.Typer(help="Manage secrets (stored encrypted, never listed).", no_args_is_help=True)

NameArg = Annotated[str, typer.Argument(help="The secret's name.")]


def _check_name(name: str) -> None:
    from tideflow.schemas.variables import check_variable_name

    try:
        check_variable_name(name, "secret")
    except ValueError as exc:
        exit_with_error(str(exc))


@app.command("set")
def set_(
    name: NameArg,
    value: Annotated[
        str | None,
        typer.Argument(help="The value; leave it out to read it from stdin (kept out of history)."),
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace the value when the secret exists.")
    ] = False,
) -> None:
    """Store a secret, encrypted on the server (VALUE, or stdin without VALUE)."""
    from tideflow.schemas.secrets import SecretCreate, check_secret_value

    _check_name(name)
    if value is None:
        value = sys.stdin.read().removesuffix("\n")
    try:
        check_secret_value(value)
    except ValueError as exc:
        exit_with_error(str(exc))
    with open_client() as client:
        try:
            client.set_secret(SecretCreate(name=name, value=value, overwrite=overwrite))
        except ServerError as exc:
            if exc.status_code != 409:
                raise
            exit_with_error(f"secret {name!r} exists already; pass --overwrite to replace it")
    console.print(f"Set secret {name!r}", markup=False)


@app.command("get")
def get(name: NameArg) -> None:
    """Print the value of NAME (needs a key with the runner scope or more)."""
    _check_name(name)
    with open_client() as client:
        try:
            found = client.read_secret_value(name)
        except ObjectNotFound:
            exit_with_error(f"no secret named {name!r}")
    typer.echo(found.value)


@app.command("ls")
def ls(
    name_like: Annotated[
        str | None, typer.Option("--name-like", help="Only names containing this.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False,
) -> None:
    """List secrets: names and times, values masked."""
    from tideflow.schemas.secrets import SecretFilter

    with open_client() as client:
        found = client.read_secrets(SecretFilter(name_like=name_like))
    if as_json:
        print_json(found)
        return
    if not found:
        console.print("No secrets.")
        return
    table = Table()
    table.add_column("Name")
    table.add_column("Value")
    table.add_column("Updated", no_wrap=True)
    for secret in found:
        table.add_row(secret.name, secret.value, format_time(secret.updated))
    console.print(table)


@app.command("delete")
def delete(name: NameArg) -> None:
    """Delete NAME."""
    _check_name(name)
    with open_client() as client:
        try:
            client.delete_secret(name)
        except ObjectNotFound:
            exit_with_error(f"no secret named {name!r}")
    console.print(f"Deleted secret {name!r}", markup=False)
