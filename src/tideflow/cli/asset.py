"""`tideflow asset`: the asset catalogue: ls (with lineage counts), inspect (latest materialization,
upstreams, downstreams, recent history), delete."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from tideflow.cli._common import (
    console,
    exit_with_error,
    format_time,
    open_client,
    print_json,
    resolve_flow_run,
)
from tideflow.exceptions import ObjectNotFound

if TYPE_CHECKING:
    from tideflow.schemas.assets import AssetRecord

__all__ = ["app"]

app = typer.Typer(help="List, inspect and delete assets.", no_args_is_help=True)

KeyArg = Annotated[str, typer.Argument(help="The asset key, a URI such as s3://bucket/raw.csv.")]


def _check_key(key: str) -> None:
    from tideflow.schemas.assets import asset_key_problem

    problem = asset_key_problem(key)
    if problem:
        exit_with_error(problem)


def _status(asset: AssetRecord) -> str:
    if asset.last_status is None:
        return "never materialized"
    return asset.last_status


@app.command("ls")
def ls(
    prefix: Annotated[
        str | None, typer.Option("--prefix", help="Only keys starting with this.")
    ] = None,
    status: Annotated[
        str | None,
        typer.Option(
            "--status", help="Only assets whose last materialization did this: succeeded or failed."
        ),
    ] = None,
    flow_run: Annotated[
        str | None,
        typer.Option(
            "--flow-run", help="Only assets last materialized by this flow run (id or prefix)."
        ),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many.")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False,
) -> None:
    """List catalogued assets by key, with their last materialization."""
    from tideflow.schemas.assets import AssetFilter

    if status is not None and status not in ("succeeded", "failed"):
        exit_with_error(f"--status is succeeded or failed, got {status!r}")
    with open_client() as client:
        run_id = resolve_flow_run(client, flow_run).id if flow_run else None
        found = client.read_assets(
            AssetFilter(key_prefix=prefix, status=status, flow_run_id=run_id, limit=limit)
        )
    if as_json:
        print_json(found)
        return
    if not found:
        console.print("No assets.")
        return
    table = Table()
    table.add_column("Key", overflow="fold")
    table.add_column("Name")
    table.add_column("Last materialized", no_wrap=True)
    table.add_column("Status", no_wrap=True)
    table.add_column("Upstream", justify="right")
    table.add_column("Downstream", justify="right")
    for asset in found:
        table.add_row(
            asset.key,
            asset.properties.name or "-",
            format_time(asset.last_materialized) if asset.last_materialized else "-",
            _status(asset),
            str(len(asset.upstream)),
            str(len(asset.downstream)),
        )
    console.print(table)


@app.command("inspect")
def inspect(
    key: KeyArg,
    history: Annotated[
        int, typer.Option(min=0, max=200, help="Recent materializations shown (0: none).")
    ] = 10,
) -> None:
    """Show an asset (JSON): properties, latest materialization, upstreams, downstreams and its
    recent materializations."""
    _check_key(key)
    with open_client() as client:
        try:
            asset = client.read_asset(key)
        except ObjectNotFound:
            exit_with_error(f"no asset with key {key!r}")
        events = client.read_asset_materializations(key, history) if history else []
    data = asset.model_dump(mode="json")
    data["history"] = [
        {
            "event": e.event.rsplit(".", 1)[-1],
            "occurred": e.occurred.isoformat(),
            "event_id": str(e.id),
            "flow_run_id": e.payload.get("flow_run_id"),
            "metadata": e.payload.get("metadata") or {},
        }
        for e in events
    ]
    print_json(data)


@app.command("delete")
def delete(key: KeyArg) -> None:
    """Forget an asset and its lineage edges (its events stay; a new materialization brings it back)."""
    _check_key(key)
    with open_client() as client:
        try:
            client.delete_asset(key)
        except ObjectNotFound:
            exit_with_error(f"no asset with key {key!r}")
    console.print(f"Deleted asset {key!r}", markup=False)
