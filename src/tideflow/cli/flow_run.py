"""`tideflow flow-run`: list, inspect, follow the logs of, watch, retry, cancel and delete flow runs.

A run is addressed by its full UUID or a unique prefix of at least 6 hex characters.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
import time
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
    resolve_flow_run,
    state_text,
)

if TYPE_CHECKING:
    from tideflow.client import SyncClient
    from tideflow.schemas import FlowRun, FlowRunFilter, Log

__all__ = ["app"]

NARROW_TERMINAL = 120  # columns below which `ls` shows id prefixes

app = typer.Typer(help="Inspect and manage flow runs.", no_args_is_help=True)

# Named states the SDK and server create, by lower-cased name (types are matched first).
_STATE_NAMES = ("Late", "AwaitingRetry", "AwaitingConcurrencySlot", "Retrying", "TimedOut")
_FOLLOW_INTERVAL = 0.5
_FOLLOW_LOOKBACK = dt.timedelta(seconds=10)
_LOG_PAGE = 10_000
_LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "WARN": 30, "ERROR": 40, "CRITICAL": 50}
_LEVEL_STYLES = {10: "dim", 20: "", 30: "yellow", 40: "red", 50: "bold red"}


def _state_filters(values: list[str], base: FlowRunFilter) -> list[FlowRunFilter]:
    """One filter per kind of --state value given (types, names); a filter's fields are AND-ed."""
    from tideflow.schemas import StateType

    types: list[StateType] = []
    names: list[str] = []
    known_names = {n.lower(): n for n in (*_STATE_NAMES, *(t.value.title() for t in StateType))}
    for value in values:
        key = value.strip()
        if key.upper() in StateType.__members__:
            types.append(StateType[key.upper()])
        elif key.lower() in known_names:
            names.append(known_names[key.lower()])
        else:
            exit_with_error(
                f"unknown state {value!r}; expected a state type ({', '.join(t.value for t in StateType)}) "
                f"or a state name ({', '.join(_STATE_NAMES)})"
            )
    filters = []
    if types:
        filters.append(base.model_copy(update={"state_type": types}))
    if names:
        filters.append(base.model_copy(update={"state_name": names}))
    return filters or [base]


def _read_runs(client: SyncClient, filters: list[FlowRunFilter], limit: int) -> list[FlowRun]:
    runs: dict[object, FlowRun] = {}
    for flt in filters:
        for run in client.read_flow_runs(flt):
            runs[run.id] = run
    return sorted(runs.values(), key=lambda r: r.created, reverse=True)[:limit]


@app.command("ls")
def ls(
    flow: Annotated[
        str | None, typer.Option("--flow", help="Only runs of this flow (by name).")
    ] = None,
    state: Annotated[
        list[str] | None, typer.Option("--state", help="State type or name; repeatable.")
    ] = None,
    tag: Annotated[
        list[str] | None,
        typer.Option("--tag", help="Runs carrying this tag; repeatable (all must match)."),
    ] = None,
    pool: Annotated[
        list[str] | None,
        typer.Option("--pool", "-p", help="Only runs in this work pool; repeatable (any)."),
    ] = None,
    queue: Annotated[
        list[str] | None,
        typer.Option("--queue", "-q", help="Only runs in this work queue; repeatable (any)."),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="Most runs to show.")] = 20,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print a JSON list of flow runs.")
    ] = False,
) -> None:
    """List flow runs, newest first."""
    from tideflow.schemas import FlowRunFilter, FlowRunSort

    base = FlowRunFilter(
        limit=limit,
        sort=FlowRunSort.CREATED_DESC,
        flow_name=[flow] if flow else None,
        tags_all=tag or None,
        work_pool_name=pool or None,
        work_queue_name=queue or None,
    )
    filters = _state_filters(state or [], base)
    with open_client() as client:
        runs = _read_runs(client, filters, limit)
    if as_json:
        print_json(runs)
        return
    if not runs:
        console.print("No flow runs.")
        return
    # In a narrow terminal the full UUID would squeeze names to nothing; an 8-character prefix is
    # enough for every command that takes an id (inspect, logs, cancel, delete), and --json has it all.
    short_ids = console.width < NARROW_TERMINAL
    table = Table()
    table.add_column("ID", no_wrap=True)
    table.add_column("Name", min_width=8)
    table.add_column("Flow", min_width=8)
    table.add_column("State", no_wrap=True)
    table.add_column("Start time", no_wrap=True)
    table.add_column("Duration", no_wrap=True, justify="right")
    for run in runs:
        start = (
            Text(format_time(run.start_time))
            if run.start_time
            else Text(format_time(run.expected_start_time), style="dim")
        )
        table.add_row(
            run.id.hex[:8] if short_ids else str(run.id),
            Text(run.name),
            Text(run.flow_name or str(run.flow_id)),
            state_text(run.state_type, run.state_name),
            start,
            format_duration(run.duration),
        )
    console.print(table)


@app.command("inspect")
def inspect(
    run_id: Annotated[
        str, typer.Argument(metavar="ID", help="Full id or unique prefix (6+ hex chars).")
    ],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the run and its state history as JSON.")
    ] = False,
) -> None:
    """Show a flow run: parameters, tags, state, state history, timings."""
    with open_client() as client:
        run = resolve_flow_run(client, run_id)
        history = client.read_flow_run_states(run.id)
    if as_json:
        print_json({**run.model_dump(mode="json"), "state_history": history})
        return
    state = run.state
    print_field("Flow run", Text.assemble((run.name, "bold"), f"  {run.id}"))
    print_field("Flow", f"{run.flow_name or '-'}  {run.flow_id}")
    if run.deployment_id:
        print_field("Deployment", f"{run.deployment_name or '-'}  {run.deployment_id}")
    state_line = state_text(run.state_type, run.state_name)
    if state is not None and state.message:
        state_line.append(f"  {state.message}")
    print_field("State", state_line)
    print_field("Parameters", json.dumps(run.parameters, default=str) if run.parameters else "{}")
    print_field("Tags", ", ".join(run.tags) if run.tags else "-")
    print_field("Run count", run.run_count)
    print_field("Parent run", run.parent_flow_run_id or "-")
    if run.created_by is not None:
        print_field(
            "Created by", f"{run.created_by.type} {run.created_by.name or run.created_by.id}"
        )
    print_field("Created", format_time(run.created))
    print_field("Expected start", format_time(run.expected_start_time))
    print_field("Started", format_time(run.start_time))
    print_field("Ended", format_time(run.end_time))
    print_field("Duration", format_duration(run.duration))
    print_field("Run time", format_duration(run.total_run_time) if run.total_run_time else "-")
    table = Table(title="State history", title_justify="left")
    table.add_column("Time", no_wrap=True)
    table.add_column("State", no_wrap=True)
    table.add_column("Type", no_wrap=True)
    table.add_column("Message")
    for item in sorted(history, key=lambda s: s.timestamp):
        table.add_row(
            item.timestamp.astimezone().strftime("%Y-%m-%d %H:%M:%S.%f")[:-3],
            Text(item.name, style=STATE_COLOURS.get(item.type.value, "")),
            item.type.value,
            Text(item.message or ""),
        )
    console.print(table)


def _parse_level(value: str | None) -> int | None:
    if value is None:
        return None
    if value.strip().isdigit():
        return int(value)
    level = _LEVELS.get(value.strip().upper())
    if level is None:
        exit_with_error(
            f"unknown log level {value!r}; use DEBUG, INFO, WARNING, ERROR, CRITICAL or a number"
        )
    return level


def _print_log(log: Log) -> None:
    stamp = log.timestamp.astimezone().strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    name = logging.getLevelName(log.level)
    console.print(
        Text.assemble(
            stamp, " ", (f"{name:<8}", _LEVEL_STYLES.get(log.level, "")), " ", log.message
        )
    )


def _log_key(log: Log) -> object:
    return log.id if log.id is not None else (log.timestamp, log.name, log.level, log.message)


def _fetch_logs(
    client: SyncClient, run: FlowRun, level: int | None, after: dt.datetime | None
) -> list[Log]:
    """All logs of ``run`` at ``level`` or above from ``after`` on (inclusive), oldest first."""
    from tideflow.schemas import LogFilter

    out: list[Log] = []
    offset = 0
    while True:
        flt = LogFilter(
            flow_run_id=[run.id],
            level_ge=level,
            timestamp_after=after,
            limit=_LOG_PAGE,
            offset=offset,
        )
        page = client.read_logs(flt)
        out.extend(page)
        if len(page) < _LOG_PAGE:
            return sorted(out, key=lambda lg: lg.timestamp)
        offset += _LOG_PAGE


@app.command("logs")
def logs(
    run_id: Annotated[
        str, typer.Argument(metavar="ID", help="Full id or unique prefix (6+ hex chars).")
    ],
    level: Annotated[
        str | None, typer.Option("--level", help="Only records at this level or above.")
    ] = None,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new logs until the run ends.")
    ] = False,
    limit: Annotated[
        int | None, typer.Option(min=1, max=10000, help="Only the last N records.")
    ] = None,
) -> None:
    """Print a run's logs in time order: time, level, message."""
    from tideflow.schemas import LogFilter

    min_level = _parse_level(level)
    with open_client() as client:
        run = resolve_flow_run(client, run_id)
        if limit is not None:
            flt = LogFilter(flow_run_id=[run.id], level_ge=min_level, limit=limit, sort_desc=True)
            shown = sorted(client.read_logs(flt), key=lambda lg: lg.timestamp)
        else:
            shown = _fetch_logs(client, run, min_level, None)
        seen = {_log_key(lg) for lg in shown}
        for log in shown:
            _print_log(log)
        last = shown[-1].timestamp if shown else None
        while follow:
            current = client.read_flow_run(run.id).state
            finished = current is not None and current.is_final
            # Records share timestamps and batches arrive out of order: re-read a window, drop what was printed.
            since = last - _FOLLOW_LOOKBACK if last else None
            for log in _fetch_logs(client, run, min_level, since):
                if _log_key(log) not in seen:
                    seen.add(_log_key(log))
                    _print_log(log)
                    last = max(last, log.timestamp) if last else log.timestamp
            if finished:
                return
            sys.stdout.flush()
            time.sleep(_FOLLOW_INTERVAL)


@app.command("cancel")
def cancel(
    run_id: Annotated[
        str, typer.Argument(metavar="ID", help="Full id or unique prefix (6+ hex chars).")
    ],
) -> None:
    """Cancel a run: a deployment's run goes to Cancelling (its runner stops it), others to Cancelled."""
    from tideflow.schemas.states import Cancelled, Cancelling

    with open_client() as client:
        run = resolve_flow_run(client, run_id)
        if run.state is not None and run.state.is_final:
            exit_with_error(
                f"flow run {run.name} ({run.id}) is already {run.state.name}; nothing to cancel"
            )
        proposed = (
            Cancelling("cancelled by user") if run.deployment_id else Cancelled("cancelled by user")
        )
        result = client.set_flow_run_state(run.id, proposed)
    line = Text.assemble(
        f"Flow run {run.name} ({run.id}) is now ", state_text(result.state.type, result.state.name)
    )
    if result.state.type.value == "CANCELLING":
        line.append("; its runner will stop it")
    console.print(line)


@app.command("watch")
def watch(
    run_id: Annotated[
        str, typer.Argument(metavar="ID", help="Full id or unique prefix (6+ hex chars).")
    ],
) -> None:
    """Stream a run's state changes and logs until it ends; exit 0 on Completed, else 1."""
    from tideflow.cli._watch import watch_run  # the same view as `deployment run --watch`

    with open_client() as client:
        run = resolve_flow_run(client, run_id)
        raise typer.Exit(watch_run(client, run))


@app.command("retry")
def retry(
    run_id: Annotated[
        str, typer.Argument(metavar="ID", help="Full id or unique prefix (6+ hex chars).")
    ],
    watch_run: Annotated[
        bool, typer.Option("--watch", help="Then stream it; exit 0 on Completed, else 1.")
    ] = False,
) -> None:
    """Run a finished deployment run again: it is Scheduled now and its runner or worker takes it.

    Failed and Crashed runs go back as a retry; Completed and Cancelled ones need the operator
    override the server records as forced."""
    from tideflow.cli._watch import watch_run as follow
    from tideflow.schemas.states import Scheduled, StateType

    with open_client() as client:
        run = resolve_flow_run(client, run_id)
        state = run.state
        if state is None or not state.is_final:
            now = state.name if state is not None else "without a state"
            exit_with_error(
                f"flow run {run.name} ({run.id}) is {now}, not finished; only a finished run "
                "can be retried"
            )
        if run.deployment_id is None:
            exit_with_error(
                f"flow run {run.name} ({run.id}) is not a deployment's run: nothing would start it "
                "again; call the flow again instead"
            )
        retry_only = state.type in (StateType.FAILED, StateType.CRASHED)
        result = client.set_flow_run_state(
            run.id, Scheduled(message="retried by user"), force=not retry_only
        )
        if result.status.value != "ACCEPT":
            exit_with_error(
                f"flow run {run.name} ({run.id}) was not rescheduled: {result.reason or 'refused'}"
            )
        console.print(
            Text.assemble(
                f"Flow run {run.name} ({run.id}) is ",
                state_text(result.state.type, result.state.name),
                " again; its runner or worker will start it",
            )
        )
        if watch_run:
            raise typer.Exit(follow(client, run))


@app.command("delete")
def delete(
    run_id: Annotated[
        str, typer.Argument(metavar="ID", help="Full id or unique prefix (6+ hex chars).")
    ],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete a flow run with its states and logs."""
    with open_client() as client:
        run = resolve_flow_run(client, run_id)
        if not yes:
            if not sys.stdin.isatty():
                exit_with_error(
                    f"not deleting flow run {run.id} without confirmation: stdin is not a terminal; pass --yes"
                )
            if not typer.confirm(f"Delete flow run {run.name} ({run.id})?", default=False):
                exit_with_error("not deleted")
        client.delete_flow_run(run.id)
    console.print(Text(f"Deleted flow run {run.name} ({run.id})"))


@app.command("resume")
def resume(
    run_id: Annotated[
        str, typer.Argument(metavar="ID", help="Full id or unique prefix (6+ hex chars).")
    ],
    run_input: Annotated[
        str | None,
        typer.Option(
            "--input", help="The input the paused run waits for, a JSON object: '{\"ok\": true}'."
        ),
    ] = None,
) -> None:
    """Resume a paused or suspended run; the server checks --input against what the run waits for."""
    from tideflow.exceptions import ServerError

    value = None
    if run_input is not None:
        try:
            value = json.loads(run_input)
        except json.JSONDecodeError as exc:
            exit_with_error(f"--input is not valid JSON: {exc}")
        if not isinstance(value, dict):
            exit_with_error(f"--input must be a JSON object, not {type(value).__name__}")
    with open_client() as client:
        run = resolve_flow_run(client, run_id)
        try:
            after = client.resume_flow_run(run.id, value)
        except ServerError as exc:
            exit_with_error(f"cannot resume flow run {run.name} ({run.id}): {exc.detail}")
    line = Text.assemble(
        f"Flow run {run.name} ({run.id}) is now ", state_text(after.state_type, after.state_name)
    )
    if after.state_type is not None and after.state_type.value == "SCHEDULED":
        line.append("; its runner or worker starts it again")
    console.print(line)
