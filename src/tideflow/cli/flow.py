"""`tideflow flow`: list the flows the API knows."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from tideflow.cli._common import console, format_time, open_client, print_json

__all__ = ["app"]

app = typer.Typer(help="Inspect flows.", no_args_is_help=True)


@app.command("ls")
def ls(
    limit: Annotated[int, typer.Option(min=1, max=1000, help="Most flows to show.")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list of flows.")] = False,
) -> None:
    """List flows with their name, id and creation time."""
    from tideflow.schemas import FlowFilter

    with open_client() as client:
        flows = client.read_flows(FlowFilter(limit=limit))
    if as_json:
        print_json(flows)
        return
    if not flows:
        console.print("No flows.")
        return
    table = Table()
    table.add_column("Name")
    table.add_column("ID", no_wrap=True)
    table.add_column("Created", no_wrap=True)
    for item in flows:
        table.add_row(Text(item.name), str(item.id), format_time(item.created))
    console.print(table)
