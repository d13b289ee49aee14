"""`tideflow work-queue`: the queues of a work pool — deployments send their runs to one; workers
take runs from higher-priority (lower number) queues first, within each queue's concurrency limit."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from tideflow.cli._common import console, exit_with_error, open_client, print_json
from tideflow.exceptions import ObjectNotFound

__all__ = ["app"]

app = typer.Typer(help="Manage the work queues of a work pool.", no_args_is_help=True)

NameArg = Annotated[str, typer.Argument(metavar="NAME", help="The queue's name.")]
PoolOpt = Annotated[str, typer.Option("--pool", "-p", help="The work pool holding the queue.")]
LimitOpt = Annotated[
    int | None, typer.Option("--concurrency-limit", "--limit", min=0, help="Runs at once.")
]
PriorityOpt = Annotated[
    int | None, typer.Option("--priority", min=1, help="1 is the highest priority.")
]


def _send(call: Any, missing: str) -> Any:
    with open_client() as client:
        try:
            return client.send(call)
        except ObjectNotFound as exc:
            exit_with_error(str(exc.detail) if getattr(exc, "detail", None) else missing)


def _body(model: Any, **fields: Any) -> Any:
    from pydantic import ValidationError

    try:
        return model(**fields)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        exit_with_error(f"{where}: {err['msg'].removeprefix('Value error, ')}")


@app.command("create")
def create(
    name: NameArg,
    pool: PoolOpt,
    priority: PriorityOpt = None,
    concurrency_limit: LimitOpt = None,
    description: Annotated[str | None, typer.Option(help="What the queue is for.")] = None,
) -> None:
    """Add a queue to a pool (priority default: after its other queues)."""
    from tideflow.client import _work_pools as calls
    from tideflow.schemas.work_pools import WorkQueueCreate

    body = _body(
        WorkQueueCreate,
        name=name,
        priority=priority,
        concurrency_limit=concurrency_limit,
        description=description,
    )
    queue = _send(calls.create_work_queue(pool, body), f"work pool {pool!r} not found")
    console.print(f"Created work queue {queue.name!r} in pool {pool!r} (priority {queue.priority})")


@app.command("ls")
def ls(
    pool: PoolOpt,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False,
) -> None:
    """List a pool's queues, highest priority first."""
    from rich.table import Table

    from tideflow.client import _work_pools as calls

    queues = _send(calls.read_work_queues(pool), f"work pool {pool!r} not found")
    if as_json:
        print_json(queues)
        return
    table = Table()
    for column in ("Name", "Priority", "Concurrency", "Paused"):
        table.add_column(column)
    for q in queues:
        limit = str(q.concurrency_limit) if q.concurrency_limit is not None else "-"
        table.add_row(q.name, str(q.priority), limit, "yes" if q.is_paused else "no")
    console.print(table)


@app.command("inspect")
def inspect(name: NameArg, pool: PoolOpt) -> None:
    """Show a queue (JSON)."""
    from tideflow.client import _work_pools as calls

    print_json(_send(calls.read_work_queue(pool, name), f"no queue {name!r} in pool {pool!r}"))


@app.command("update")
def update(
    name: NameArg,
    pool: PoolOpt,
    priority: PriorityOpt = None,
    concurrency_limit: LimitOpt = None,
    no_limit: Annotated[
        bool, typer.Option("--no-concurrency-limit", help="Remove the queue's limit.")
    ] = False,
    new_name: Annotated[str | None, typer.Option("--name", help="Rename the queue.")] = None,
    description: Annotated[str | None, typer.Option(help="What the queue is for.")] = None,
) -> None:
    """Change a queue's priority, limit, name or description."""
    from tideflow.client import _work_pools as calls
    from tideflow.schemas.work_pools import WorkQueueUpdate

    if no_limit and concurrency_limit is not None:
        exit_with_error("give --concurrency-limit or --no-concurrency-limit, not both")
    fields: dict[str, Any] = {}
    if priority is not None:
        fields["priority"] = priority
    if concurrency_limit is not None or no_limit:
        fields["concurrency_limit"] = concurrency_limit
    if new_name is not None:
        fields["name"] = new_name
    if description is not None:
        fields["description"] = description
    if not fields:
        exit_with_error("nothing to change (see --help)")
    body = _body(WorkQueueUpdate, **fields)
    _send(calls.update_work_queue(pool, name, body), f"no queue {name!r} in pool {pool!r}")
    console.print(f"Updated work queue {name!r} of pool {pool!r}")


def _set_paused(name: str, pool: str, paused: bool) -> None:
    from tideflow.client import _work_pools as calls
    from tideflow.schemas.work_pools import WorkQueueUpdate

    call = calls.update_work_queue(pool, name, WorkQueueUpdate(is_paused=paused))
    _send(call, f"no queue {name!r} in pool {pool!r}")
    console.print(f"{'Paused' if paused else 'Resumed'} work queue {name!r} of pool {pool!r}")


@app.command("pause")
def pause(name: NameArg, pool: PoolOpt) -> None:
    """Stop offering the queue's runs to workers."""
    _set_paused(name, pool, True)


@app.command("resume")
def resume(name: NameArg, pool: PoolOpt) -> None:
    _set_paused(name, pool, False)


@app.command("delete")
def delete(name: NameArg, pool: PoolOpt) -> None:
    """Delete a queue (not the pool's default); its deployments move to the default queue."""
    from tideflow.client import _work_pools as calls

    _send(calls.delete_work_queue(pool, name), f"no queue {name!r} in pool {pool!r}")
    console.print(f"Deleted work queue {name!r} of pool {pool!r}")
