"""`tideflow user`: create, list and delete the people who log in to the UI with a name and a
password, and change their passwords (needs an admin key in TIDEFLOW_API_KEY). A password is asked
for twice on a terminal, or read from stdin with ``--password-stdin``; it never goes on the command
line, where other users of the machine could read it."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.table import Table

from tideflow.cli._common import console, exit_with_error, format_time, open_client, print_json
from tideflow.client import _users as calls
from tideflow.exceptions import ObjectNotFound, TideflowError
from tideflow.schemas.api_keys import SCOPES, Scope
from tideflow.schemas.users import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH, User

__all__ = ["app"]

app = typer.Typer(help="Manage UI users (needs an admin key).", no_args_is_help=True)

_STDIN = typer.Option(
    "--password-stdin", help="Read the password from stdin (its first line) instead of asking."
)


def _password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline(MAX_PASSWORD_LENGTH + 2).rstrip("\r\n")
    elif not sys.stdin.isatty():
        exit_with_error("stdin is not a terminal: pass --password-stdin and pipe the password in")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    if len(password) < MIN_PASSWORD_LENGTH:
        exit_with_error(f"the password is too short: use at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        exit_with_error(f"the password is longer than {MAX_PASSWORD_LENGTH} characters")
    return password


def _find(users: list[User], name: str) -> User:
    for user in users:
        if user.name == name:
            return user
    exit_with_error(f"no user {name!r} (see `tideflow user ls`)")


@app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="The login name.")],
    scope: Annotated[
        list[str],
        typer.Option("--scope", help=f"A scope ({', '.join(SCOPES)}); repeat for several."),
    ],
    password_stdin: Annotated[bool, _STDIN] = False,
) -> None:
    """Create a user who logs in to the UI with a name and a password."""
    unknown = [s for s in scope if s not in SCOPES]
    if unknown:
        exit_with_error(f"unknown scope {unknown[0]!r}: use {', '.join(SCOPES)}")
    scopes: list[Scope] = [s for s in SCOPES if s in scope]
    password = _password(password_stdin)
    try:
        call = calls.create_user(name, password, scopes)
    except ValidationError as exc:
        first = exc.errors()[0]
        exit_with_error(f"invalid user {'.'.join(map(str, first['loc']))}: {first['msg']}")
    try:
        with open_client() as client:
            user = client.send(call)
    except TideflowError as exc:
        exit_with_error(str(exc))
    console.print(f"Created user {user.name!r} (scopes {', '.join(user.scopes)})")


@app.command("ls")
def ls(as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False) -> None:
    """List the users (never their passwords)."""
    try:
        with open_client() as client:
            users = client.send(calls.read_users())
    except TideflowError as exc:
        exit_with_error(str(exc))
    if as_json:
        print_json(users)
        return
    if not users:
        console.print("No users.")
        return
    table = Table()
    for column in ("Name", "Scopes", "Created", "Password changed"):
        table.add_column(column, no_wrap=column != "Scopes")
    for user in users:
        table.add_row(
            user.name,
            ", ".join(user.scopes),
            format_time(user.created),
            format_time(user.password_changed),
        )
    console.print(table)


@app.command("delete")
def delete(name: Annotated[str, typer.Argument(help="The user's login name.")]) -> None:
    """Delete a user: their UI sessions end at once."""
    try:
        with open_client() as client:
            user = _find(client.send(calls.read_users()), name)
            client.send(calls.delete_user(user.id))
    except ObjectNotFound:
        exit_with_error(f"no user {name!r}")
    except TideflowError as exc:
        exit_with_error(str(exc))
    console.print(f"Deleted user {name!r}")


@app.command("set-password")
def set_password(
    name: Annotated[str, typer.Argument(help="The user's login name.")],
    password_stdin: Annotated[bool, _STDIN] = False,
) -> None:
    """Change a user's password: their UI sessions end."""
    password = _password(password_stdin)
    try:
        with open_client() as client:
            user = _find(client.send(calls.read_users()), name)
            client.send(calls.set_password(user.id, password))
    except ObjectNotFound:
        exit_with_error(f"no user {name!r}")
    except TideflowError as exc:
        exit_with_error(str(exc))
    console.print(f"Changed the password of user {name!r}")
