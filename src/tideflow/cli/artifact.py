"""`tideflow artifact`: what runs published (markdown, tables, links, progress): ls, inspect, delete."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any
from uuid import UUID

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
    from tideflow.schemas.artifacts import Artifact

__all__ = ["app"]

app = typer.Typer(help="List, inspect and delete artifacts.", no_args_is_help=True)

RefArg = Annotated[str, typer.Argument(help="An artifact id, or a key (all its versions).")]


def _as_id(ref: str) -> UUID | None:
    try:
        return UUID(ref)
    except ValueError:
        return None


def _check_key(key: str) -> None:
    from tideflow.schemas.artifacts import check_artifact_key

    try:
        check_artifact_key(key)
    except ValueError as exc:
        exit_with_error(str(exc))


def _summary(artifact: Artifact) -> str:
    data: Any = artifact.data
    if artifact.type == "progress":
        return f"{data:g}%"
    if artifact.type == "link":
        return str(data.get("link_text") or data.get("link"))
    if artifact.type == "table":
        rows = len(data) if isinstance(data, list) else max(map(len, data.values()), default=0)
        return f"{rows} rows"
    text = " ".join(str(data).split())
    return text if len(text) <= 60 else text[:57] + "..."


@app.command("ls")
def ls(
    key: Annotated[str | None, typer.Option("--key", help="Only versions of this key.")] = None,
    flow_run: Annotated[
        str | None,
        typer.Option("--flow-run", help="Only this flow run's (id or unique id prefix)."),
    ] = None,
    all_versions: Annotated[
        bool, typer.Option("--all-versions", help="Every version of each key, not only the latest.")
    ] = False,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many.")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False,
) -> None:
    """List artifacts, newest first (the latest version of each key unless --all-versions)."""
    from tideflow.schemas.artifacts import ArtifactFilter

    if key is not None:
        _check_key(key)
    with open_client() as client:
        run_ids = [resolve_flow_run(client, flow_run).id] if flow_run else None
        flt = ArtifactFilter(
            key=[key] if key else None,
            flow_run_id=run_ids,
            latest_only=not all_versions and key is None,
            limit=limit,
        )
        found = client.read_artifacts(flt)
    if as_json:
        print_json(found)
        return
    if not found:
        console.print("No artifacts.")
        return
    table = Table()
    table.add_column("Id", no_wrap=True)
    table.add_column("Key")
    table.add_column("Type")
    table.add_column("Data", overflow="ellipsis", max_width=60, no_wrap=True)
    table.add_column("Flow run", no_wrap=True)
    table.add_column("Created", no_wrap=True)
    for artifact in found:
        table.add_row(
            str(artifact.id),
            artifact.key or "-",
            artifact.type.value,
            _summary(artifact),
            str(artifact.flow_run_id or "-"),
            format_time(artifact.created),
        )
    console.print(table)


@app.command("inspect")
def inspect(
    ref: RefArg,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="Versions of a key shown.")] = 10,
) -> None:
    """Show an artifact by id, or the versions of a key, newest first (JSON)."""
    from tideflow.schemas.artifacts import ArtifactFilter

    artifact_id = _as_id(ref)
    if artifact_id is None:
        _check_key(ref)
    with open_client() as client:
        if artifact_id is not None:
            try:
                print_json(client.read_artifact(artifact_id))
            except ObjectNotFound:
                exit_with_error(f"no artifact with id {ref}")
            return
        versions = client.read_artifacts(ArtifactFilter(key=[ref], limit=limit))
    if not versions:
        exit_with_error(f"no artifact with key {ref!r}")
    print_json(versions)


@app.command("delete")
def delete(ref: RefArg) -> None:
    """Delete an artifact by id, or every version of a key."""
    artifact_id = _as_id(ref)
    if artifact_id is None:
        _check_key(ref)
    with open_client() as client:
        try:
            if artifact_id is not None:
                client.delete_artifact(artifact_id)
                console.print(f"Deleted artifact {artifact_id}")
                return
            answer = client.delete_artifacts_by_key(ref)
        except ObjectNotFound:
            what = f"id {ref}" if artifact_id is not None else f"key {ref!r}"
            exit_with_error(f"no artifact with {what}")
    count = answer.get("deleted", 0)
    console.print(f"Deleted {count} version(s) of artifact {ref!r}", markup=False)
