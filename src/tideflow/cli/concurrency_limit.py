"""`tideflow concurrency-limit`: tag-based task concurrency limits — at most N task runs carrying a
tag run at once, across every flow run; the rest wait in AwaitingConcurrencySlot."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from tideflow.cli._common import console, exit_with_error, format_time, open_client, print_json
from tideflow.exceptions import ObjectNotFound

__all__ = ["app"]

app = typer.Typer(help="Manage tag-based task concurrency limits.", no_args_is_help=True)


@app.command("create")
def create(
    tag: Annotated[str, typer.Argument(help="The task tag to limit.")],
    limit: Annotated[int, typer.Argument(min=0, help="Task runs with the tag allowed at once.")],
) -> None:
    """Limit the task runs carrying TAG to LIMIT at once (changes the limit when TAG has one)."""
    with open_client() as client:
        made = client.upsert_concurrency_limit(tag, limit)
    console.print(f"Concurrency limit for tag {made.tag!r}: {made.concurrency_limit} at once")


@app.command("ls")
def ls(
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False,
) -> None:
    """List the limits with the task runs holding their slots."""
    with open_client() as client:
        limits = client.read_concurrency_limits()
    if as_json:
        print_json(limits)
        return
    if not limits:
        console.print("No concurrency limits.")
        return
    table = Table()
    table.add_column("Tag")
    table.add_column("Limit", justify="right")
    table.add_column("In use", justify="right")
    table.add_column("Updated", no_wrap=True)
    for limit in limits:
        table.add_row(
            limit.tag,
            str(limit.concurrency_limit),
            str(len(limit.active_slots)),
            format_time(limit.updated),
        )
    console.print(table)


def _one(tag: str, action: str) -> None:
    with open_client() as client:
        try:
            if action == "delete":
                client.delete_concurrency_limit(tag)
                console.print(f"Deleted the concurrency limit for tag {tag!r}")
                return
            limit = (
                client.reset_concurrency_limit(tag)
                if action == "reset"
                else client.read_concurrency_limit(tag)
            )
        except ObjectNotFound:
            exit_with_error(f"no concurrency limit for tag {tag!r}")
    if action == "reset":
        console.print(f"Freed every slot of the concurrency limit for tag {tag!r}")
        return
    print_json(limit)


@app.command("inspect")
def inspect(tag: Annotated[str, typer.Argument(help="The limited tag.")]) -> None:
    """Show a limit and the task runs holding its slots (JSON)."""
    _one(tag, "inspect")


@app.command("delete")
def delete(tag: Annotated[str, typer.Argument(help="The limited tag.")]) -> None:
    """Remove the limit: task runs with the tag no longer wait."""
    _one(tag, "delete")


@app.command("reset")
def reset(tag: Annotated[str, typer.Argument(help="The limited tag.")]) -> None:
    """Free every slot of the limit (held by runs that will not release them)."""
    _one(tag, "reset")
