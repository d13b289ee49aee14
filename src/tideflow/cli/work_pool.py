"""`tideflow work-pool`: create, list, inspect, update, pause, resume and delete work pools — where
workers (`tideflow worker start --pool NAME`) take the runs of the deployments placed in them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from tideflow.cli._common import (
    console,
    exit_with_error,
    format_time,
    open_client,
    print_field,
    print_json,
)
from tideflow.exceptions import ObjectNotFound

__all__ = ["app", "load_template"]

app = typer.Typer(help="Manage work pools (where workers run flow runs).", no_args_is_help=True)

NameArg = Annotated[str, typer.Argument(metavar="NAME", help="The work pool's name.")]
_TYPES = "process, docker or kubernetes"


def load_template(path: Path) -> dict[str, Any]:
    """A base job template from a JSON file, or one error line."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        exit_with_error(f"cannot read {path}: {exc.strerror or exc}")
    except ValueError as exc:
        exit_with_error(f"{path} is not JSON: {exc}")
    if not isinstance(value, dict):
        exit_with_error(f"{path} must hold a JSON object (job_configuration and variables)")
    return value


def _call(call: Any, missing: str) -> Any:
    with open_client() as client:
        try:
            return client.send(call)
        except ObjectNotFound:
            exit_with_error(missing)


@app.command("create")
def create(
    name: NameArg,
    pool_type: Annotated[
        str, typer.Option("--type", "-t", help=f"Worker type: {_TYPES}.")
    ] = "process",
    concurrency_limit: Annotated[
        int | None, typer.Option("--concurrency-limit", min=0, help="Runs of the pool at once.")
    ] = None,
    description: Annotated[str | None, typer.Option(help="What the pool is for.")] = None,
    base_job_template: Annotated[
        Path | None,
        typer.Option(help="JSON file: job_configuration and variables (default: the type's)."),
    ] = None,
    paused: Annotated[bool, typer.Option("--paused", help="Create it paused.")] = False,
) -> None:
    """Create a work pool with its `default` queue."""
    from pydantic import ValidationError

    from tideflow.client import _work_pools as calls
    from tideflow.schemas.work_pools import WorkPoolCreate

    template = load_template(base_job_template) if base_job_template is not None else None
    try:
        body = WorkPoolCreate(
            name=name,
            type=pool_type,
            concurrency_limit=concurrency_limit,
            description=description,
            base_job_template=template,
            is_paused=paused,
        )
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "work pool"
        if where == "type":
            exit_with_error(f"unknown work pool type {pool_type!r} (use {_TYPES})")
        exit_with_error(f"{where}: {err['msg'].removeprefix('Value error, ')}")
    with open_client() as client:
        pool = client.send(calls.create_work_pool(body))
    console.print(
        f"Created work pool {pool.name!r} (type {pool.type.value}). "
        f"Start a worker with: tideflow worker start --pool '{pool.name}'"
    )


@app.command("ls")
def ls(as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False) -> None:
    """List the work pools."""
    from rich.table import Table

    from tideflow.client import _work_pools as calls

    with open_client() as client:
        pools = client.send(calls.read_work_pools())
    if as_json:
        print_json(pools)
        return
    if not pools:
        console.print("No work pools. Create one with: tideflow work-pool create NAME")
        return
    table = Table()
    for column in ("Name", "Type", "Concurrency", "Paused", "Created"):
        table.add_column(column)
    for pool in pools:
        limit = str(pool.concurrency_limit) if pool.concurrency_limit is not None else "-"
        paused = "yes" if pool.is_paused else "no"
        table.add_row(pool.name, pool.type.value, limit, paused, format_time(pool.created))
    console.print(table)


@app.command("inspect")
def inspect(
    name: NameArg,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print pool, queues, workers as JSON.")
    ] = False,
) -> None:
    """Show a pool: its template's job variables, its queues and its workers (online/offline)."""
    from tideflow.client import _work_pools as calls

    missing = f"work pool {name!r} not found"
    with open_client() as client:
        try:
            pool = client.send(calls.read_work_pool(name))
            queues = client.send(calls.read_work_queues(name))
            workers = client.send(calls.read_workers(name))
        except ObjectNotFound:
            exit_with_error(missing)
    if as_json:
        print_json({"work_pool": pool, "queues": queues, "workers": workers})
        return
    print_field("Work pool", f"{pool.name}  {pool.id}")
    print_field("Type", pool.type.value)
    print_field("Paused", "yes" if pool.is_paused else "no")
    limit = pool.concurrency_limit
    print_field("Concurrency", limit if limit is not None else "no limit")
    print_field("Description", pool.description or "-")
    props = (pool.base_job_template.get("variables") or {}).get("properties") or {}
    print_field("Job variables", ", ".join(sorted(props)) or "-")
    for vname in sorted(props):
        spec = props[vname]
        default = f" (default {json.dumps(spec['default'])})" if "default" in spec else ""
        print_field("", f"  {vname}: {spec.get('type', 'any')}{default}")
    print_field("Queues", len(queues))
    for q in queues:
        qlimit = q.concurrency_limit if q.concurrency_limit is not None else "-"
        state = "  paused" if q.is_paused else ""
        print_field("", f"  {q.name}: priority {q.priority}, limit {qlimit}{state}")
    print_field("Workers", len(workers) or "none")
    for w in workers:
        print_field(
            "", f"  {w.name}: {w.status.value}, last heartbeat {format_time(w.last_heartbeat)}"
        )
    print_field("Created", format_time(pool.created))


@app.command("update")
def update(
    name: NameArg,
    concurrency_limit: Annotated[
        int | None, typer.Option("--concurrency-limit", min=0, help="Runs of the pool at once.")
    ] = None,
    no_limit: Annotated[
        bool, typer.Option("--no-concurrency-limit", help="Remove the pool's limit.")
    ] = False,
    description: Annotated[str | None, typer.Option(help="What the pool is for.")] = None,
    base_job_template: Annotated[
        Path | None, typer.Option(help="JSON file: the new base job template.")
    ] = None,
) -> None:
    """Change a pool's limit, description or base job template."""
    from pydantic import ValidationError

    from tideflow.client import _work_pools as calls
    from tideflow.schemas.work_pools import WorkPoolUpdate

    if no_limit and concurrency_limit is not None:
        exit_with_error("give --concurrency-limit or --no-concurrency-limit, not both")
    fields: dict[str, Any] = {}
    if concurrency_limit is not None or no_limit:
        fields["concurrency_limit"] = concurrency_limit
    if description is not None:
        fields["description"] = description
    if base_job_template is not None:
        fields["base_job_template"] = load_template(base_job_template)
    if not fields:
        exit_with_error("nothing to change (see --help)")
    try:
        body = WorkPoolUpdate(**fields)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        exit_with_error(f"{where}: {err['msg'].removeprefix('Value error, ')}")
    _call(calls.update_work_pool(name, body), f"work pool {name!r} not found")
    console.print(f"Updated work pool {name!r}")


def _set_paused(name: str, paused: bool) -> None:
    from tideflow.client import _work_pools as calls
    from tideflow.schemas.work_pools import WorkPoolUpdate

    _call(
        calls.update_work_pool(name, WorkPoolUpdate(is_paused=paused)),
        f"work pool {name!r} not found",
    )
    console.print(f"{'Paused' if paused else 'Resumed'} work pool {name!r}")


@app.command("pause")
def pause(name: NameArg) -> None:
    """Stop offering the pool's runs to workers (running runs go on)."""
    _set_paused(name, True)


@app.command("resume")
def resume(name: NameArg) -> None:
    _set_paused(name, False)


@app.command("delete")
def delete(name: NameArg) -> None:
    """Delete the pool with its queues; its deployments are detached from it."""
    from tideflow.client import _work_pools as calls

    _call(calls.delete_work_pool(name), f"work pool {name!r} not found")
    console.print(f"Deleted work pool {name!r}")
