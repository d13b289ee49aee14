"""`tideflow task-run`: list task runs, inspect one (states, inputs, result), read its logs, cancel a
background one.

A task run is addressed by its full UUID or a unique prefix of at least 6 hex characters.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table
from rich.text import Text

from tideflow.cli._common import (
    STATE_COLOURS,
    console,
    exit_with_error,
    format_duration,
    format_time,
    open_client,
    print_field,
    print_json,
    resolve_by_id,
    resolve_flow_run,
    state_text,
)

if TYPE_CHECKING:
    from tideflow.client import SyncClient
    from tideflow.schemas.task_runs import TaskRun

__all__ = ["app"]

app = typer.Typer(help="Inspect task runs.", no_args_is_help=True)

NARROW_TERMINAL = 120
_LOG_PAGE = 10_000


def _resolve(client: SyncClient, ref: str) -> TaskRun:
    from tideflow.schemas.task_runs import TaskRunFilter

    return resolve_by_id(
        ref,
        "task run",
        client.read_task_run,
        lambda limit, offset: client.read_task_runs(TaskRunFilter(limit=limit, offset=offset)),
    )


@app.command("ls")
def ls(
    flow_run: Annotated[
        str | None, typer.Option("--flow-run", help="Only task runs of this flow run (id/prefix).")
    ] = None,
    task: Annotated[str | None, typer.Option("--task", help="Only runs of this task.")] = None,
    state: Annotated[
        list[str] | None, typer.Option("--state", help="State type (e.g. FAILED); repeatable.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="Most task runs to show.")] = 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False,
) -> None:
    """List task runs, newest first."""
    from tideflow.schemas import StateType
    from tideflow.schemas.task_runs import TaskRunFilter

    types = []
    for value in state or []:
        if value.strip().upper() not in StateType.__members__:
            exit_with_error(
                f"unknown state type {value!r}; expected one of "
                f"{', '.join(t.value for t in StateType)}"
            )
        types.append(StateType[value.strip().upper()])
    with open_client() as client:
        flow_run_ids = [resolve_flow_run(client, flow_run).id] if flow_run else None
        runs = client.read_task_runs(
            TaskRunFilter(
                limit=limit,
                flow_run_id=flow_run_ids,
                task_name=[task] if task else None,
                state_type=types or None,
            )
        )
    if as_json:
        print_json(runs)
        return
    if not runs:
        console.print("No task runs.")
        return
    short_ids = console.width < NARROW_TERMINAL  # as `flow-run ls`: prefixes work as ids
    table = Table()
    table.add_column("ID", no_wrap=True)
    table.add_column("Name", min_width=8)
    table.add_column("Task", min_width=6)
    table.add_column("State", no_wrap=True)
    table.add_column("Start time", no_wrap=True)
    table.add_column("Duration", no_wrap=True, justify="right")
    for run in runs:
        table.add_row(
            run.id.hex[:8] if short_ids else str(run.id),
            Text(run.name),
            Text(run.task_name),
            state_text(run.state_type, run.state_name),
            format_time(run.start_time),
            format_duration(run.duration),
        )
    console.print(table)


@app.command("inspect")
def inspect(
    run_id: Annotated[str, typer.Argument(metavar="ID", help="Full id or unique prefix.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the task run as JSON.")] = False,
) -> None:
    """Show a task run: its flow run, parameters, upstream inputs, states and result location."""
    with open_client() as client:
        run = _resolve(client, run_id)
    if as_json:
        print_json(run)
        return
    print_field("Task run", Text.assemble((run.name, "bold"), f"  {run.id}"))
    print_field("Task", run.task_name)
    print_field("Flow run", run.flow_run_id or "-")
    if run.flow_run_id is None and run.deliveries:  # a background run (Task.delay)
        worker = f", task worker {run.worker_id}" if run.worker_id else ""
        print_field("Deliveries", f"{run.deliveries}{worker}")
    line = state_text(run.state_type, run.state_name)
    if run.state is not None and run.state.message:
        line.append(f"  {run.state.message}")
    print_field("State", line)
    print_field("Parameters", json.dumps(run.parameters, default=str) if run.parameters else "{}")
    inputs = {k: [str(u) for u in v] for k, v in run.task_inputs.items()}
    print_field("Upstream", json.dumps(inputs) if inputs else "-")
    print_field("Tags", ", ".join(run.tags) if run.tags else "-")
    print_field("Run count", run.run_count)
    print_field("Result", run.result_location or "-")
    print_field("Started", format_time(run.start_time))
    print_field("Ended", format_time(run.end_time))
    print_field("Duration", format_duration(run.duration))
    table = Table(title="State history", title_justify="left")
    table.add_column("Time", no_wrap=True)
    table.add_column("State", no_wrap=True)
    table.add_column("Message")
    for item in run.state_history:
        table.add_row(
            item.timestamp.astimezone().strftime("%Y-%m-%d %H:%M:%S.%f")[:-3],
            Text(item.name, style=STATE_COLOURS.get(item.type.value, "")),
            Text(item.message or ""),
        )
    console.print(table)


@app.command("logs")
def logs(
    run_id: Annotated[str, typer.Argument(metavar="ID", help="Full id or unique prefix.")],
) -> None:
    """Print the log records of a task run, oldest first."""
    from tideflow.schemas import LogFilter

    with open_client() as client:
        run = _resolve(client, run_id)
        # A background run's records belong to the task run alone (no flow run).
        flow_runs = [run.flow_run_id] if run.flow_run_id is not None else None
        records = client.read_logs(
            LogFilter(flow_run_id=flow_runs, task_run_id=[run.id], limit=_LOG_PAGE)
        )
    if not records:
        console.print("No logs.")
        return
    for log in records:
        stamp = log.timestamp.astimezone().strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
        console.print(
            Text.assemble(stamp, " ", f"{logging.getLevelName(log.level):<8}", " ", log.message)
        )


@app.command("cancel")
def cancel(
    run_id: Annotated[
        str, typer.Argument(metavar="ID", help="Full id or unique prefix (6+ hex chars).")
    ],
) -> None:
    """Cancel a background task run (``.delay()``): one no worker took yet never starts; one a
    worker runs is Cancelling until the worker stops it."""
    from tideflow.exceptions import ServerError

    with open_client() as client:
        run = _resolve(client, run_id)
        try:
            after = client.cancel_task_run(run.id)
        except ServerError as exc:
            exit_with_error(exc.detail)
    assert after.state is not None
    line = Text.assemble(
        f"Task run {after.name} ({after.id}) is now ",
        state_text(after.state.type, after.state.name),
    )
    if after.state.type.value == "CANCELLING":
        line.append("; its task worker will stop it")
    console.print(line)
