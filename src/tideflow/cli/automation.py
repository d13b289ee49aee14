"""`tideflow automation`: list, inspect, create/update from YAML or JSON, pause/disable,
resume/enable, delete, explain why an automation fired (or not) on an event, and show its firing
history.

NAME is an automation's name or id; a name several automations share asks for the id.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from tideflow.cli._common import (
    console,
    err_console,
    exit_with_error,
    format_time,
    open_client,
    print_json,
)

if TYPE_CHECKING:
    from tideflow.client import SyncClient
    from tideflow.schemas.automations import Automation

__all__ = ["app"]

app = typer.Typer(
    help="Manage automations: triggers and the actions they run.", no_args_is_help=True
)

NameArg = Annotated[str, typer.Argument(help="The automation's name or id.")]
FileOpt = Annotated[Path, typer.Option("--file", "-f", help="A YAML (or JSON) file.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _resolve(client: SyncClient, ref: str) -> Automation:
    from uuid import UUID

    from tideflow.exceptions import ObjectNotFound

    try:
        return client.read_automation(UUID(ref))
    except ValueError:
        pass
    except ObjectNotFound:
        exit_with_error(f"no automation has id {ref}")
    try:
        return client.read_automation_by_name(ref)
    except ObjectNotFound:
        exit_with_error(f"no automation is called {ref!r} (see 'tideflow automation ls')")


def _load(path: Path) -> Any:
    import yaml

    try:
        text = path.read_text()
    except OSError as exc:
        exit_with_error(f"cannot read {path}: {exc.strerror or exc}")
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        exit_with_error(f"{path} is not valid YAML: {' '.join(str(exc).split())}")


def _documents(path: Path | str, document: Any = None) -> list[dict[str, Any]]:
    """The automations a file (or a given ``document``) holds: one, a list, or
    ``automations: [...]``, checked locally so every bad field is named before anything is sent."""
    from tideflow.schemas.automations import parse_automations

    if document is None:
        document = _load(Path(path))
    try:
        parse_automations(document)
    except ValueError as exc:
        exit_with_error(f"{path}: {' '.join(str(exc).split())}")
    if isinstance(document, dict) and "automations" in document:
        document = document["automations"]
    return list(document) if isinstance(document, list) else [document]


def _trigger_summary(automation: Automation) -> str:
    trigger = automation.trigger
    if trigger.type == "event":
        names = ", ".join(sorted(trigger.expect)) or "any event"
        return f"{trigger.posture} on {names}" + (
            f" x{trigger.threshold}" if trigger.threshold > 1 else ""
        )
    return f"{trigger.type} of {len(trigger.triggers)}"


def _print_warnings(automation: Automation) -> None:
    # Saved anyway: a warning is advice (e.g. an every-event trigger that runs a deployment).
    for warning in [*automation.warnings, *automation.event_warnings]:
        err_console.print(Text(f"Warning: automation {automation.name!r}: {warning}"))


@app.command("ls")
def ls(as_json: JsonOpt = False) -> None:
    """List automations: name, id, enabled, trigger, actions."""
    with open_client() as client:
        automations = client.read_automations()
    if as_json:
        print_json(automations)
        return
    if not automations:
        console.print("No automations.")
        return
    table = Table()
    for column in ("Name", "ID", "Enabled", "Trigger", "Actions", "Owner"):
        table.add_column(column)
    for a in automations:
        actions = ", ".join(x.type for x in a.firing_actions()) or "-"
        table.add_row(Text(a.name), str(a.id), "yes" if a.enabled else "no",
                      Text(_trigger_summary(a)), actions, a.owner_resource or "-")  # fmt: skip
    console.print(table)


@app.command("inspect")
def inspect(name: NameArg, as_json: JsonOpt = False) -> None:
    """Show one automation in full."""
    with open_client() as client:
        automation = _resolve(client, name)
    if as_json:
        print_json(automation)
        return
    import yaml

    console.print(f"[bold]{automation.name}[/bold] ({automation.id})")
    data = automation.model_dump(mode="json", exclude={"name", "id", "warnings", "event_warnings"})
    console.print(Text(yaml.safe_dump(data, sort_keys=False).rstrip()))
    _print_warnings(automation)


def _json_source(value: str) -> tuple[str, Any]:
    """``--from-json``: a file holding JSON, or the JSON text itself (as Prefect's option takes)."""
    import json

    path = Path(value)
    if not value.lstrip().startswith(("{", "[")) and path.is_file():
        try:
            value = path.read_text()
        except OSError as exc:
            exit_with_error(f"cannot read {path}: {exc.strerror or exc}")
        where = str(path)
    else:
        where = "--from-json"
    try:
        return where, json.loads(value)
    except ValueError as exc:
        exit_with_error(f"{where} is not valid JSON: {exc}")


@app.command("create")
def create(
    file: Annotated[
        Path | None,
        typer.Option("--file", "-f", "--from-file", help="A YAML (or JSON) file."),
    ] = None,
    from_json: Annotated[
        str | None,
        typer.Option("--from-json", "-j", help="A JSON file, or the JSON document itself."),
    ] = None,
    from_yaml: Annotated[
        Path | None, typer.Option("--from-yaml", help="A YAML file (same as --file).")
    ] = None,
) -> None:
    """Create the automation(s) described in a YAML or JSON file (or a JSON document)."""
    given = [x for x in (file, from_json, from_yaml) if x is not None]
    if len(given) != 1:
        exit_with_error("give exactly one of --file, --from-json, --from-yaml")
    if from_json is not None:
        documents = _documents(*_json_source(from_json))
    else:
        documents = _documents(file or from_yaml or Path())
    with open_client() as client:
        for data in documents:
            automation = client.create_automation(data)
            console.print(f"Created automation {automation.name!r} ({automation.id})")
            _print_warnings(automation)


@app.command("update")
def update(name: NameArg, file: FileOpt) -> None:
    """Replace an automation's definition with the one in a YAML file (the id is kept)."""
    documents = _documents(file)
    if len(documents) != 1:
        exit_with_error(f"{file} holds {len(documents)} automations; update takes exactly one")
    data = {k: v for k, v in documents[0].items() if k not in ("owner_resource", "owner_key")}
    with open_client() as client:
        current = _resolve(client, name)
        automation = client.update_automation(current.id, data)
    console.print(f"Updated automation {automation.name!r} ({automation.id})")
    _print_warnings(automation)


@app.command("pause")
def pause(name: NameArg) -> None:
    """Disable an automation (its trigger stops counting)."""
    with open_client() as client:
        automation = client.pause_automation(_resolve(client, name).id)
    console.print(f"Paused automation {automation.name!r}")


@app.command("resume")
def resume(name: NameArg) -> None:
    """Enable an automation again (its trigger starts counting afresh)."""
    with open_client() as client:
        automation = client.resume_automation(_resolve(client, name).id)
    console.print(f"Resumed automation {automation.name!r}")


@app.command("enable")
def enable(name: NameArg) -> None:
    """Enable an automation (Prefect's word for resume)."""
    resume(name)


@app.command("disable")
def disable(name: NameArg) -> None:
    """Disable an automation (Prefect's word for pause)."""
    pause(name)


@app.command("delete")
def delete(
    name: NameArg,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete an automation with its state and history."""
    with open_client() as client:
        automation = _resolve(client, name)
        if not yes and not typer.confirm(
            f"Delete automation {automation.name!r} ({automation.id})?"
        ):
            exit_with_error("not deleted")
        client.delete_automation(automation.id)
    console.print(f"Deleted automation {automation.name!r}")


@app.command("explain")
def explain(
    name: NameArg,
    event: Annotated[str, typer.Option("--event", help="The id of a stored event.")],
    as_json: JsonOpt = False,
) -> None:
    """Why an automation fired, or did not, on one event: each criterion with the values compared."""
    from uuid import UUID

    try:
        event_id = UUID(event)
    except ValueError:
        exit_with_error(f"--event {event!r} is not an event id (a UUID)")
    with open_client() as client:
        automation = _resolve(client, name)
        result = client.explain_automation(automation.id, event_id)
    if as_json:
        print_json(result)
        return
    console.print(f"[bold]{automation.name}[/bold] on event {event_id}:")
    for line in result["lines"]:
        console.print(Text(line))


def _window_start(text: str) -> Any:
    """``--since``: an ISO 8601 time, or a duration back from now ("7 days", 24h)."""
    import datetime as dt

    from tideflow.cli._durations import parse_human_duration

    try:
        when = dt.datetime.fromisoformat(text.strip())
        return when if when.tzinfo is not None else when.astimezone()
    except ValueError:
        pass
    try:
        return dt.datetime.now(dt.UTC) - parse_human_duration(text.removesuffix(" ago"))
    except ValueError as exc:
        exit_with_error(f"--since {exc}")


@app.command("replay")
def replay(
    name: Annotated[
        str | None, typer.Argument(help="The automation's name or id (or give --file).")
    ] = None,
    since: Annotated[
        str, typer.Option("--since", help="Window start: ISO time, or how long ago ('7 days').")
    ] = "7 days",
    until: Annotated[
        str | None, typer.Option("--until", help="Window end (default now): ISO time or 'N ago'.")
    ] = None,
    file: Annotated[
        Path | None, typer.Option("--file", "-f", help="Try an unsaved automation from a file.")
    ] = None,
    backfill: Annotated[
        bool,
        typer.Option(
            "--backfill",
            help="Also fire the firings found that never fired (their actions run now); "
            "running it again fires nothing twice.",
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Dry-run an automation over stored events: how often it would have fired, with what values
    (with --backfill, fire the ones that were missed)."""
    import json

    if (name is None) == (file is None):
        exit_with_error("give an automation NAME or --file, not both")
    if backfill and file is not None:
        exit_with_error("--backfill needs a saved automation NAME, not --file")
    start = _window_start(since)
    end = _window_start(until) if until is not None else None
    with open_client() as client:
        if file is not None:
            documents = _documents(file)
            if len(documents) != 1:
                exit_with_error(f"{file} holds {len(documents)} automations; replay takes one")
            result = client.replay_automation(None, start, end, documents[0])
            label = str(documents[0].get("name", file))
        else:
            automation = _resolve(client, name or "")
            result = client.replay_automation(automation.id, start, end, backfill=backfill)
            label = automation.name
    if as_json:
        print_json(result)
        return
    console.print(Text(f"{label}: {result['summary']}"))
    if not result["firings"]:
        return
    table = Table()
    for column in ("Would fire at", "Triggering event", "Action", "Values"):
        table.add_column(column)
    for f in result["firings"]:
        for a in f["actions"] or [{"type": "-", "values": None, "error": None}]:
            shown = a["error"] or (json.dumps(a["values"]) if a["values"] else "-")
            table.add_row(f["occurred"], str(f["triggering_event_id"] or "(deadline)"),
                          a["type"], Text(shown))  # fmt: skip
    console.print(table)
    if result["firings_truncated"]:
        console.print(f"(showing the first {len(result['firings'])} firings)")


@app.command("history")
def history(
    name: NameArg,
    limit: Annotated[int, typer.Option(min=1, max=500, help="Most firings to show.")] = 20,
    as_json: JsonOpt = False,
) -> None:
    """Recent firings: when, the triggering event, each action's outcome and the runs created."""
    with open_client() as client:
        automation = _resolve(client, name)
        firings = client.automation_history(automation.id, limit)
    if as_json:
        print_json(firings)
        return
    if not firings:
        console.print(f"Automation {automation.name!r} has not fired yet.")
        return
    table = Table()
    for column in ("Fired", "Kind", "Triggering event", "Action", "Outcome", "Flow run"):
        table.add_column(column)
    for f in firings:
        if f.kind == "paused":  # the engine paused it: the reason is the outcome
            table.add_row(format_time(f.fired_at), f.kind, "(paused by the engine)", "-",
                          Text(f.detail or ""), "-")  # fmt: skip
            continue
        event = str(f.triggering_event_id) if f.triggering_event_id else "(deadline)"
        rows = f.actions or []
        if not rows:
            table.add_row(format_time(f.fired_at), f.kind, event, "-", "-", "-")
        for a in rows:
            table.add_row(format_time(f.fired_at), f.kind, event, a.action_type,
                          Text(f"{a.status}: {a.detail}" if a.detail else a.status),
                          str(a.flow_run_id) if a.flow_run_id else "-")  # fmt: skip
    console.print(table)
