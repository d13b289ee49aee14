"""`tideflow schedule`: a deployment's schedules: create, ls, pause, resume, delete, clear.

The commands Prefect has under ``prefect deployment schedule``; ``ls``, ``pause`` and ``resume`` are
also ``tideflow deployment schedule ...``. ``pause --all`` / ``resume --all`` act on every
deployment's schedules. NAME is ``flow-name/deployment-name`` or a deployment id.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from tideflow.cli._common import echo, exit_with_error, open_client
from tideflow.cli._durations import parse_human_duration
from tideflow.cli.deployment import _set_active, resolve_deployment, schedule_app, schedule_ls

if TYPE_CHECKING:
    from tideflow.client import SyncClient
    from tideflow.schemas.deployments import Deployment
    from tideflow.schemas.schedules import DeploymentSchedule

__all__ = ["app"]

app = typer.Typer(
    help="Manage a deployment's schedules: create, ls, pause, resume, delete, clear.",
    no_args_is_help=True,
)

NameArg = Annotated[
    str,
    typer.Argument(help="The deployment: flow-name/deployment-name or its id.", show_default=False),
]
OptionalNameArg = Annotated[
    str | None,
    typer.Argument(help="The deployment: flow-name/deployment-name or its id.", show_default=False),
]
IdArg = Annotated[
    str | None,
    typer.Argument(metavar="[SCHEDULE_ID]", help="One schedule (id or prefix); default all."),
]
AllOpt = Annotated[bool, typer.Option("--all", help="Every schedule of every deployment.")]
YesOpt = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]

app.command("ls", help="List a deployment's schedules: id, schedule, active.")(schedule_ls)


@app.command("create")
def create(
    name: NameArg,
    cron: Annotated[str | None, typer.Option("--cron", help="A cron expression.")] = None,
    interval: Annotated[
        str | None,
        typer.Option("--interval", help="Seconds or a duration: 300, 10m, '2 hours'."),
    ] = None,
    rrule: Annotated[str | None, typer.Option("--rrule", help="An RFC 5545 RRULE.")] = None,
    anchor_date: Annotated[
        str | None, typer.Option("--anchor-date", help="ISO 8601 start of an interval schedule.")
    ] = None,
    timezone: Annotated[
        str, typer.Option("--timezone", help="IANA timezone of the schedule's wall clock.")
    ] = "UTC",
    active: Annotated[
        bool, typer.Option("--active/--inactive", help="Start active (default) or paused.")
    ] = True,
    replace: Annotated[
        bool, typer.Option("--replace", help="Delete the deployment's other schedules first.")
    ] = False,
) -> None:
    """Add a schedule to a deployment (exactly one of --cron, --interval, --rrule)."""
    from pydantic import TypeAdapter, ValidationError

    from tideflow.schemas.schedules import DeploymentScheduleCreate, Schedule

    given = [x for x in (cron, interval, rrule) if x is not None]
    if len(given) != 1:
        exit_with_error("give exactly one of --cron, --interval, --rrule")
    data: dict[str, object] = {"timezone": timezone}
    if cron is not None:
        data.update(type="cron", cron=cron)
    elif interval is not None:
        try:
            seconds = parse_human_duration(interval).total_seconds()
        except ValueError as exc:
            exit_with_error(f"--interval {exc}")
        data.update(type="interval", interval=seconds)
        if anchor_date is not None:
            data["anchor_date"] = anchor_date
    else:
        data.update(type="rrule", rrule=rrule)
    if anchor_date is not None and interval is None:
        exit_with_error("--anchor-date goes with --interval")
    try:
        schedule = TypeAdapter(Schedule).validate_python(data)
    except (ValidationError, ValueError) as exc:
        errors = exc.errors() if isinstance(exc, ValidationError) else [{"msg": str(exc)}]
        exit_with_error(f"invalid schedule: {'; '.join(str(e['msg']) for e in errors)}")
    with open_client() as client:
        d = resolve_deployment(client, name)
        if replace:
            for item in client.read_deployment_schedules(d.id):
                client.delete_deployment_schedule(d.id, item.id)
        [created] = client.create_deployment_schedules(
            d.id, [DeploymentScheduleCreate(schedule=schedule, active=active)]
        )
    state = "" if active else " (inactive)"
    echo(f"Created schedule {created.id} for deployment '{d.full_name}'{state}")


def _all_deployments_set_active(active: bool) -> None:
    from tideflow.schemas.schedules import DeploymentScheduleUpdate

    verb = "Resumed" if active else "Paused"
    changed = deployments = 0
    with open_client() as client:
        for d in client.read_deployments():
            items = [s for s in client.read_deployment_schedules(d.id) if s.active != active]
            for item in items:
                client.update_deployment_schedule(
                    d.id, item.id, DeploymentScheduleUpdate(active=active)
                )
            changed += len(items)
            deployments += bool(items)
    echo(f"{verb} {changed} schedule(s) of {deployments} deployment(s)")


def _one_or_all(name: str | None, all_: bool) -> str | None:
    if all_ and name is not None:
        exit_with_error("give a deployment or --all, not both")
    if not all_ and name is None:
        exit_with_error("give a deployment (flow-name/deployment-name) or --all")
    return name


@app.command("pause")
def pause(name: OptionalNameArg = None, schedule_id: IdArg = None, all_: AllOpt = False) -> None:
    """Pause a deployment's schedules (or one, or --all of every deployment)."""
    if _one_or_all(name, all_) is None:
        _all_deployments_set_active(False)
        return
    _set_active(name or "", schedule_id, False)


@app.command("resume")
def resume(name: OptionalNameArg = None, schedule_id: IdArg = None, all_: AllOpt = False) -> None:
    """Resume a deployment's schedules (or one, or --all of every deployment)."""
    if _one_or_all(name, all_) is None:
        _all_deployments_set_active(True)
        return
    _set_active(name or "", schedule_id, True)


def _matching(
    client: SyncClient, name: str, schedule_id: str
) -> tuple[Deployment, DeploymentSchedule]:
    d = resolve_deployment(client, name)
    text = schedule_id.strip().lower()
    chosen = [
        s
        for s in client.read_deployment_schedules(d.id)
        if str(s.id) == text or (len(text) >= 6 and str(s.id).startswith(text))
    ]
    if len(chosen) != 1:
        problem = "has no schedule" if not chosen else "has several schedules matching"
        exit_with_error(f"deployment '{d.full_name}' {problem} {schedule_id!r}")
    return d, chosen[0]


@app.command("delete")
def delete(
    name: NameArg,
    schedule_id: Annotated[str, typer.Argument(help="The schedule's id (or a prefix).")],
    yes: YesOpt = False,
) -> None:
    """Delete one schedule of a deployment."""
    with open_client() as client:
        d, item = _matching(client, name, schedule_id)
        if not yes and not typer.confirm(f"Delete schedule {item.id} of '{d.full_name}'?"):
            exit_with_error("not deleted")
        client.delete_deployment_schedule(d.id, item.id)
    echo(f"Deleted schedule {item.id} of deployment '{d.full_name}'")


@app.command("clear")
def clear(name: NameArg, yes: YesOpt = False) -> None:
    """Delete every schedule of a deployment (its scheduled runs go with them)."""
    with open_client() as client:
        d = resolve_deployment(client, name)
        items = client.read_deployment_schedules(d.id)
        if not items:
            echo(f"Deployment '{d.full_name}' has no schedules")
            return
        if not yes and not typer.confirm(
            f"Delete all {len(items)} schedule(s) of '{d.full_name}'?"
        ):
            exit_with_error("not cleared")
        for item in items:
            client.delete_deployment_schedule(d.id, item.id)
    echo(f"Deleted {len(items)} schedule(s) of deployment '{d.full_name}'")


# Prefect's paths: `deployment schedule create|delete|clear` are these same commands (ls, pause and
# resume are defined there already). Registered here, where the commands live; deployment.py
# imports this module at its end so the group is complete whichever module loads first.
schedule_app.command("create")(create)
schedule_app.command("delete")(delete)
schedule_app.command("clear")(clear)
