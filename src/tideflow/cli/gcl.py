"""`tideflow gcl`: global concurrency and rate limits, taken with ``concurrency("name")`` and
``rate_limit("name")`` from any process (create, ls, inspect, update, delete, reset)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from tideflow.cli._common import console, exit_with_error, format_time, open_client, print_json
from tideflow.exceptions import ObjectNotFound, ServerError

__all__ = ["app"]

app = typer.Typer(help="Manage global concurrency and rate limits.", no_args_is_help=True)

NameArg = Annotated[str, typer.Argument(help="The limit's name.")]


def _check_name(name: str) -> None:
    import re

    from tideflow.schemas.global_concurrency import GCL_NAME_PATTERN

    if not re.match(GCL_NAME_PATTERN, name):
        exit_with_error(
            f"limit name {name[:60]!r}: use letters, digits, '_', '.', ':' and '-' (1 to 200)"
        )


@app.command("create")
def create(
    name: NameArg,
    limit: Annotated[int, typer.Option("--limit", min=0, help="Slots (required).")],
    slot_decay_per_second: Annotated[
        float, typer.Option(min=0, help="> 0 makes it a rate limit: slots drain at this rate.")
    ] = 0.0,
    disable: Annotated[bool, typer.Option("--disable", help="Create it inactive.")] = False,
) -> None:
    """Create a limit of LIMIT slots named NAME."""
    from tideflow.schemas.global_concurrency import GlobalConcurrencyLimitCreate

    _check_name(name)
    body = GlobalConcurrencyLimitCreate(
        name=name, limit=limit, active=not disable, slot_decay_per_second=slot_decay_per_second
    )
    with open_client() as client:
        try:
            made = client.create_global_concurrency_limit(body)
        except ServerError as exc:
            if exc.status_code != 409:
                raise
            exit_with_error(f"a limit named {name!r} exists already; change it with `gcl update`")
    kind = (
        f"rate limit ({made.slot_decay_per_second:g} slots/s)"
        if made.slot_decay_per_second
        else "limit"
    )
    console.print(f"Created {kind} {made.name!r}: {made.limit} slots", markup=False)


@app.command("ls")
def ls(as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False) -> None:
    """List the limits with the slots occupied now."""
    with open_client() as client:
        found = client.read_global_concurrency_limits()
    if as_json:
        print_json(found)
        return
    if not found:
        console.print("No global concurrency limits.")
        return
    table = Table()
    for column in ("Name", "Limit", "In use", "Decay/s", "Active", "Updated"):
        table.add_column(column, justify="right" if column in ("Limit", "In use") else "left")
    for gcl in found:
        table.add_row(
            gcl.name, str(gcl.limit), f"{gcl.active_slots:g}",
            f"{gcl.slot_decay_per_second:g}" if gcl.slot_decay_per_second else "-",
            "yes" if gcl.active else "no", format_time(gcl.updated),
        )  # fmt: skip
    console.print(table)


@app.command("inspect")
def inspect(name: NameArg) -> None:
    """Show a limit and its occupied slots (JSON)."""
    _check_name(name)
    with open_client() as client:
        try:
            print_json(client.read_global_concurrency_limit(name))
        except ObjectNotFound:
            exit_with_error(f"no global concurrency limit named {name!r}")


@app.command("update")
def update(
    name: NameArg,
    limit: Annotated[int | None, typer.Option("--limit", min=0, help="New slot count.")] = None,
    slot_decay_per_second: Annotated[float | None, typer.Option(min=0)] = None,
    enable: Annotated[
        bool | None, typer.Option("--enable/--disable", help="Make it active or inactive.")
    ] = None,
) -> None:
    """Change a limit's slots, decay or activity."""
    from tideflow.schemas.global_concurrency import GlobalConcurrencyLimitUpdate

    _check_name(name)
    fields = {"limit": limit, "slot_decay_per_second": slot_decay_per_second, "active": enable}
    body = GlobalConcurrencyLimitUpdate(**{k: v for k, v in fields.items() if v is not None})
    if not body.model_fields_set:
        exit_with_error(
            "nothing to change: give --limit, --slot-decay-per-second or --enable/--disable"
        )
    with open_client() as client:
        try:
            changed = client.update_global_concurrency_limit(name, body)
        except ObjectNotFound:
            exit_with_error(f"no global concurrency limit named {name!r}")
    state = "active" if changed.active else "inactive"
    console.print(f"Updated limit {name!r}: {changed.limit} slots, {state}", markup=False)


@app.command("delete")
def delete(name: NameArg) -> None:
    """Delete a limit (its holders keep running; new takers are no longer limited)."""
    _check_name(name)
    with open_client() as client:
        try:
            client.delete_global_concurrency_limit(name)
        except ObjectNotFound:
            exit_with_error(f"no global concurrency limit named {name!r}")
    console.print(f"Deleted limit {name!r}", markup=False)


@app.command("reset")
def reset(name: NameArg) -> None:
    """Free every slot of a limit (held by processes that will not release them)."""
    _check_name(name)
    with open_client() as client:
        try:
            client.reset_global_concurrency_limit(name)
        except ObjectNotFound:
            exit_with_error(f"no global concurrency limit named {name!r}")
    console.print(f"Freed every slot of limit {name!r}", markup=False)
