"""`tideflow event emit`: store one event now (synchronously, so a refusal is reported)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from tideflow.cli._common import exit_with_error, open_client

__all__ = ["app", "parse_labels"]

app = typer.Typer(help="Emit events.", no_args_is_help=True)


def parse_labels(values: list[str]) -> dict[str, str]:
    """``k=v`` pairs as a dict; raises ValueError naming a malformed one."""
    out = {}
    for value in values:
        key, sep, val = value.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--label {value!r}: expected KEY=VALUE")
        out[key.strip()] = val
    return out


@app.command("emit")
def emit(
    name: Annotated[str, typer.Argument(help="Event name, e.g. 'acme.table.loaded'.")],
    resource_id: Annotated[str, typer.Option("--resource-id", help="The resource's id.")],
    label: Annotated[
        list[str] | None, typer.Option("--label", help="Resource label KEY=VALUE; repeatable.")
    ] = None,
    related_id: Annotated[
        list[str] | None,
        typer.Option("--related-id", help="Related resource id; repeatable, each with a --role."),
    ] = None,
    role: Annotated[
        list[str] | None,
        typer.Option("--role", help="Role of the related resource at the same place."),
    ] = None,
    payload: Annotated[str | None, typer.Option("--payload", help="A JSON object.")] = None,
) -> None:
    """Emit one event and print its id."""
    from pydantic import ValidationError

    from tideflow.schemas.events import Event

    related_id, role = related_id or [], role or []
    if len(related_id) != len(role):
        exit_with_error(
            f"give one --role per --related-id ({len(related_id)} --related-id, {len(role)} --role)"
        )
    try:
        labels = parse_labels(label or [])
        body = json.loads(payload) if payload is not None else {}
    except ValueError as exc:
        exit_with_error(
            f"--payload is not JSON: {exc}" if isinstance(exc, json.JSONDecodeError) else str(exc)
        )
    try:
        event = Event(
            event=name,
            resource={**labels, "tideflow.resource.id": resource_id},
            related=[
                {"tideflow.resource.id": r, "tideflow.resource.role": ro}
                for r, ro in zip(related_id, role, strict=True)
            ],
            payload=body,
        )
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        exit_with_error(f"{where}: {str(err['msg']).removeprefix('Value error, ')}")
    with open_client() as client:
        answer = client.emit_events([event])
    if answer["refused"]:
        exit_with_error(f"the server refused the event: {answer['refused'][0]['reason']}")
    typer.echo(str(event.id))
