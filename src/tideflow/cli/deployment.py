"""`tideflow deployment`: list, inspect, run, pause, resume and delete deployments, and
`tideflow deployment schedule ls|pause|resume` for their schedules.

A deployment is addressed as ``flow-name/deployment-name`` or by its id.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from tideflow.cli._common import (
    console,
    echo,
    exit_with_error,
    format_time,
    open_client,
    print_json,
)
from tideflow.cli._durations import parse_human_duration
from tideflow.cli._watch import watch_run

if TYPE_CHECKING:
    from rich.text import Text

    from tideflow.client import SyncClient
    from tideflow.schemas.deployments import Deployment

__all__ = ["app", "parse_duration", "parse_param"]

app = typer.Typer(help="Run and manage deployments.", no_args_is_help=True)
schedule_app = typer.Typer(
    help="Manage a deployment's schedules: create, ls, pause, resume, delete, clear "
    "(the same commands as `tideflow schedule`).",
    no_args_is_help=True,
)
app.add_typer(schedule_app, name="schedule")


NameArg = Annotated[
    str, typer.Argument(metavar="NAME", help="flow-name/deployment-name, or the deployment's id.")
]


# --- helpers ---------------------------------------------------------------------------------------
def parse_param(text: str) -> tuple[str, Any]:
    """``key=value`` → (key, value): the value as JSON when it parses as JSON, else the string."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        exit_with_error(f"--param {text!r} must be given as key=value")
    try:
        value = json.loads(raw)
    except ValueError:
        value = raw
    return key.strip(), value


def parse_duration(text: str) -> dt.timedelta:
    """``30s``, ``1h30m``, ``2 hours``, ``in 10 minutes`` or plain seconds → a timedelta (one error
    line if not); see cli/_durations.py."""
    try:
        return parse_human_duration(text)
    except ValueError as exc:
        exit_with_error(f"--start-in {exc}")


def _parse_start_at(text: str) -> dt.datetime:
    try:
        when = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        exit_with_error(
            f"--start-at {text!r} is not an ISO 8601 time (e.g. 2030-01-31T02:00:00+00:00)"
        )
    return when if when.tzinfo is not None else when.astimezone()  # naive: local time


def resolve_deployment(client: SyncClient, ref: str) -> Deployment:
    """The deployment named ``flow/name`` or with id ``ref``."""
    from uuid import UUID

    try:
        deployment_id = UUID(ref.strip())
    except ValueError:
        if ref.count("/") != 1 or ref.startswith("/") or ref.endswith("/"):
            exit_with_error(
                f"{ref!r} is not a deployment: give 'flow-name/deployment-name' or a deployment id"
            )
        return client.read_deployment_by_name(ref)
    return client.read_deployment(deployment_id)


def _schedules_text(deployment: Deployment) -> str:
    from tideflow.schemas.schedules import schedule_summary

    if not deployment.schedules:
        return "-"
    parts = []
    for item in deployment.schedules:
        text = schedule_summary(item.schedule)
        parts.append(text if item.active else f"{text} (paused)")
    return "; ".join(parts)


def _field(label: str, value: object) -> None:
    from rich.text import Text

    console.print(
        Text.assemble((f"{label:<16}", "bold"), value if isinstance(value, Text) else str(value))
    )


def _status_text(deployment: Deployment) -> Text:
    from rich.text import Text

    status = str(deployment.status.value)
    return Text(status, style="green" if status == "READY" else "dim")


# --- deployments -----------------------------------------------------------------------------------
@app.command("ls")
def ls(
    as_json: Annotated[
        bool, typer.Option("--json", help="Print a JSON list of deployments.")
    ] = False,
) -> None:
    """List deployments: name, status, paused, schedules, triggers."""
    from rich.table import Table
    from rich.text import Text

    from tideflow.schemas.deployments import DeploymentFilter

    deployments: list[Deployment] = []
    with open_client() as client:
        offset = 0
        while True:
            page = client.read_deployments(DeploymentFilter(limit=1000, offset=offset))
            deployments.extend(page)
            if len(page) < 1000:
                break
            offset += 1000
    deployments.sort(key=lambda d: d.full_name)
    if as_json:
        print_json(deployments)
        return
    if not deployments:
        console.print("No deployments.")
        return
    table = Table()
    table.add_column("Name")
    table.add_column("Status", no_wrap=True)
    table.add_column("Paused", no_wrap=True)
    table.add_column("Schedules")
    table.add_column("Triggers", justify="right")
    for d in deployments:
        table.add_row(
            Text(d.full_name),
            _status_text(d),
            "yes" if d.paused else "no",
            Text(_schedules_text(d)),
            str(len(d.triggers)),
        )
    console.print(table)


@app.command("inspect")
def inspect(
    name: NameArg,
    as_json: Annotated[bool, typer.Option("--json", help="Print the deployment as JSON.")] = False,
) -> None:
    """Show a deployment: parameters and their schema, schedules, triggers, status."""
    from rich.text import Text

    with open_client() as client:
        d = resolve_deployment(client, name)
    if as_json:
        print_json(d)
        return
    _field("Deployment", Text.assemble((d.full_name, "bold"), f"  {d.id}"))
    _field("Status", _status_text(d))
    _field("Paused", "yes" if d.paused else "no")
    _field("Description", d.description or "-")
    _field("Version", d.version or "-")
    _field("Tags", ", ".join(d.tags) if d.tags else "-")
    _field("Parameters", json.dumps(d.parameters, default=str) if d.parameters else "{}")
    props = d.parameter_openapi_schema.get("properties", {})
    required = set(d.parameter_openapi_schema.get("required", []))
    for pname, spec in props.items():
        kind = spec.get("type") or spec.get("title") or "any"
        need = "required" if pname in required else f"default {json.dumps(spec.get('default'))}"
        _field("", f"  {pname}: {kind} ({need})")
    strategy = d.concurrency_options.collision_strategy if d.concurrency_options else "ENQUEUE"
    _field(
        "Concurrency",
        f"{d.concurrency_limit} (collision strategy {strategy})"
        if d.concurrency_limit is not None
        else "no limit",
    )
    _field("Schedules", _schedules_text(d))
    _field("Triggers", len(d.triggers))
    _field("Entrypoint", d.entrypoint or "-")
    pool = f"{d.work_pool_name} (queue {d.work_queue_name})" if d.work_pool_name else "- (serve())"
    _field("Work pool", pool)
    _field("Job variables", json.dumps(d.job_variables) if d.job_variables else "{}")
    _field("Last polled", format_time(d.last_polled))
    _field("Created", format_time(d.created))
    _field("Updated", format_time(d.updated))


@app.command("run")
def run(
    name: NameArg,
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param", "-p", help="key=value (value read as JSON when it parses); repeatable."
        ),
    ] = None,
    params: Annotated[
        str | None, typer.Option("--params", help="All parameters as a JSON object.")
    ] = None,
    start_in: Annotated[
        str | None, typer.Option("--start-in", help="Start after this long: 30s, 10m, 1h, 1h30m.")
    ] = None,
    start_at: Annotated[
        str | None,
        typer.Option("--start-at", help="Start at this ISO 8601 time (naive: local time)."),
    ] = None,
    tag: Annotated[
        list[str] | None, typer.Option("--tag", help="Add a tag to the run; repeatable.")
    ] = None,
    idempotency_key: Annotated[
        str | None, typer.Option("--idempotency-key", help="The same key gives back the same run.")
    ] = None,
    watch: Annotated[
        bool, typer.Option("--watch", help="Stream states and logs; exit 0 on Completed, else 1.")
    ] = False,
    job_variable: Annotated[
        list[str] | None,
        typer.Option(
            "--job-variable",
            "-jv",
            help='key=JSON job variable for the work pool\'s job (env=\'{"A": "1"}\'); repeatable.',
        ),
    ] = None,
    flow_run_name: Annotated[
        str | None, typer.Option("--flow-run-name", help="Name of the new run.")
    ] = None,
) -> None:
    """Create a run of a deployment (parameters and job variables override its defaults)."""
    from tideflow.identity import user_creator
    from tideflow.schemas.deployments import DeploymentFlowRunCreate

    values: dict[str, Any] = {}
    if params is not None:
        try:
            loaded = json.loads(params)
        except ValueError as exc:
            exit_with_error(f"--params is not valid JSON: {exc}")
        if not isinstance(loaded, dict):
            exit_with_error("--params must be a JSON object such as '{\"limit\": 5}'")
        values.update(loaded)
    for item in param or []:
        key, value = parse_param(item)
        values[key] = value
    variables: dict[str, Any] = {}
    for item in job_variable or []:
        key, sep, _ = item.partition("=")
        if not sep or not key.strip():
            exit_with_error(f"--job-variable {item!r} must be KEY=VALUE")
        variables[key.strip()] = parse_param(item)[1]
    if start_in is not None and start_at is not None:
        exit_with_error("give --start-in or --start-at, not both")
    when: dt.datetime | None = None
    if start_in is not None:
        when = dt.datetime.now(dt.UTC) + parse_duration(start_in)
    elif start_at is not None:
        when = _parse_start_at(start_at)
    try:
        body = DeploymentFlowRunCreate(
            parameters=values,
            tags=list(tag or []),
            scheduled_time=when,
            idempotency_key=idempotency_key,
            created_by=user_creator(),
            job_variables=variables,
            name=flow_run_name,
        )
    except ValueError as exc:
        exit_with_error(" ".join(str(exc).split()))
    with open_client() as client:
        deployment = resolve_deployment(client, name)
        flow_run = client.create_flow_run_from_deployment(deployment.id, body)
        start = flow_run.expected_start_time
        start_text = f", scheduled for {format_time(start)}" if when is not None else ""
        echo(
            f"Created flow run {flow_run.name} ({flow_run.id}) of '{deployment.full_name}'{start_text}"
        )
        if watch:
            raise typer.Exit(watch_run(client, flow_run))


@app.command("pause")
def pause(name: NameArg) -> None:
    """Pause a deployment: its schedules (and triggers) stop creating runs."""
    with open_client() as client:
        d = client.pause_deployment(resolve_deployment(client, name).id)
    echo(f"Paused deployment '{d.full_name}'")


@app.command("resume")
def resume(name: NameArg) -> None:
    """Resume a paused deployment."""
    with open_client() as client:
        d = client.resume_deployment(resolve_deployment(client, name).id)
    echo(f"Resumed deployment '{d.full_name}'")


@app.command("delete")
def delete(
    name: NameArg,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete a deployment with its schedules (its past runs are kept)."""
    with open_client() as client:
        d = resolve_deployment(client, name)
        if not yes:
            if not sys.stdin.isatty():
                exit_with_error(
                    f"not deleting deployment '{d.full_name}' without confirmation: stdin is not a terminal; pass --yes"
                )
            if not typer.confirm(f"Delete deployment '{d.full_name}'?", default=False):
                exit_with_error("not deleted")
        client.delete_deployment(d.id)
    echo(f"Deleted deployment '{d.full_name}'")


# --- schedules -------------------------------------------------------------------------------------
@schedule_app.command("ls")
def schedule_ls(
    name: NameArg,
    as_json: Annotated[bool, typer.Option("--json", help="Print the schedules as JSON.")] = False,
) -> None:
    """List a deployment's schedules: id, schedule, active."""
    from rich.table import Table
    from rich.text import Text

    from tideflow.schemas.schedules import schedule_summary

    with open_client() as client:
        d = resolve_deployment(client, name)
        items = client.read_deployment_schedules(d.id)
    if as_json:
        print_json(items)
        return
    if not items:
        console.print(f"Deployment '{d.full_name}' has no schedules.")
        return
    table = Table()
    table.add_column("ID", no_wrap=True)
    table.add_column("Schedule")
    table.add_column("Active", no_wrap=True)
    for item in items:
        table.add_row(
            str(item.id), Text(schedule_summary(item.schedule)), "yes" if item.active else "no"
        )
    console.print(table)


def _set_active(name: str, schedule_id: str | None, active: bool) -> None:
    from uuid import UUID

    from tideflow.schemas.schedules import DeploymentScheduleUpdate

    verb = "Resumed" if active else "Paused"
    with open_client() as client:
        d = resolve_deployment(client, name)
        items = client.read_deployment_schedules(d.id)
        if schedule_id is not None:
            text = schedule_id.strip().lower()
            chosen = [
                s
                for s in items
                if str(s.id) == text or (len(text) >= 6 and str(s.id).startswith(text))
            ]
            if not chosen:
                exit_with_error(f"deployment '{d.full_name}' has no schedule {schedule_id!r}")
            if len(chosen) > 1:
                exit_with_error(
                    f"{schedule_id!r} matches {len(chosen)} schedules; give more characters"
                )
            items = chosen
        elif not items:
            exit_with_error(f"deployment '{d.full_name}' has no schedules")
        for item in items:
            client.update_deployment_schedule(
                d.id, UUID(str(item.id)), DeploymentScheduleUpdate(active=active)
            )
    which = f"schedule {items[0].id}" if schedule_id is not None else f"{len(items)} schedule(s)"
    echo(f"{verb} {which} of deployment '{d.full_name}'")


@schedule_app.command("pause")
def schedule_pause(
    name: NameArg,
    schedule_id: Annotated[
        str | None,
        typer.Argument(metavar="[SCHEDULE_ID]", help="One schedule (id or prefix); default all."),
    ] = None,
) -> None:
    """Pause a deployment's schedules (or one): their future runs are removed."""
    _set_active(name, schedule_id, False)


@schedule_app.command("resume")
def schedule_resume(
    name: NameArg,
    schedule_id: Annotated[
        str | None,
        typer.Argument(metavar="[SCHEDULE_ID]", help="One schedule (id or prefix); default all."),
    ] = None,
) -> None:
    """Resume a deployment's schedules (or one)."""
    _set_active(name, schedule_id, True)


# `deployment schedule create|delete|clear` (Prefect's paths) are tideflow.cli.schedule's commands,
# added to schedule_app by that module; importing it here completes the group.
from tideflow.cli import schedule as _schedule  # noqa: E402, F401
