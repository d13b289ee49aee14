"""`tideflow api-key`: create, list and revoke the server's API keys (needs an admin key in
TIDEFLOW_API_KEY). A key's secret is printed once, by ``create``; the server keeps only its hash."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

import typer
from rich.table import Table

from tideflow.cli._common import (
    console,
    err_console,
    exit_with_error,
    format_time,
    open_client,
    print_json,
)
from tideflow.client import _api_keys as calls
from tideflow.exceptions import ObjectNotFound, TideflowError
from tideflow.schemas.api_keys import SCOPES, ApiKey, Scope

__all__ = ["app"]

app = typer.Typer(help="Manage API keys (needs an admin key).", no_args_is_help=True)


@app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="Who or what will use the key.")],
    scope: Annotated[
        list[str],
        typer.Option("--scope", help=f"A scope ({', '.join(SCOPES)}); repeat for several."),
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print the key as JSON.")] = False,
) -> None:
    """Create a key and print it (shown only now)."""
    unknown = [s for s in scope if s not in SCOPES]
    if unknown:
        exit_with_error(f"unknown scope {unknown[0]!r}: use {', '.join(SCOPES)}")
    scopes: list[Scope] = [s for s in SCOPES if s in scope]
    try:
        with open_client() as client:
            made = client.send(calls.create_api_key(name, scopes))
    except TideflowError as exc:
        exit_with_error(str(exc))
    if as_json:
        print_json(made)
        return
    err_console.print(
        f"API key {made.name!r} ({made.key_id}, scopes {', '.join(made.scopes)}); "
        "shown once, store it now:"
    )
    print(made.key, flush=True)


@app.command("ls")
def ls(
    include_revoked: Annotated[bool, typer.Option("--all", help="Include revoked keys.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False,
) -> None:
    """List the keys (never their secrets)."""
    try:
        with open_client() as client:
            keys = client.send(calls.read_api_keys(include_revoked=include_revoked))
    except TideflowError as exc:
        exit_with_error(str(exc))
    if as_json:
        print_json(keys)
        return
    if not keys:
        console.print("No API keys.")
        return
    table = Table()
    for column in ("Id", "Key id", "Name", "Scopes", "Created", "Revoked"):
        table.add_column(column, no_wrap=column in ("Id", "Created", "Revoked"))
    for key in keys:
        table.add_row(
            str(key.id),
            key.key_id,
            key.name,
            ", ".join(key.scopes),
            format_time(key.created),
            format_time(key.revoked) if key.revoked else "",
        )
    console.print(table)


@app.command("revoke")
def revoke(
    key: Annotated[str, typer.Argument(help="The key's id (from `ls`) or its key id.")],
) -> None:
    """Revoke a key: the server refuses it from now on."""
    try:
        with open_client() as client:
            target = _resolve(client.send(calls.read_api_keys(include_revoked=True)), key)
            revoked = client.send(calls.revoke_api_key(target))
    except ObjectNotFound:
        exit_with_error(f"no API key {key!r}")
    except TideflowError as exc:
        exit_with_error(str(exc))
    console.print(f"Revoked API key {revoked.name!r} ({revoked.key_id})")


def _resolve(keys: list[ApiKey], ref: str) -> UUID:
    ref = ref.strip().lower()
    for key in keys:
        if str(key.id) == ref or key.key_id == ref:
            return key.id
    exit_with_error(f"no API key {ref!r} (see `tideflow api-key ls --all`)")
