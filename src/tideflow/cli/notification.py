"""`tideflow notification`: notification destinations (create, ls, inspect, test, delete).

A destination's credentials are secrets named here (``--webhook-url-secret``, ``--password-secret``,
``--header-secret``), set beforehand with ``tideflow secret set``; the server reads them when it sends.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table

from tideflow.cli._common import (
    console,
    exit_with_error,
    format_time,
    open_client,
    print_field,
    print_json,
)
from tideflow.exceptions import ObjectNotFound, ServerError

__all__ = ["app"]

app = typer.Typer(
    help="Manage notification destinations (Slack, Teams, email, webhook).", no_args_is_help=True
)

NameArg = Annotated[str, typer.Argument(help="The destination's name.")]


def _check_name(name: str) -> None:
    from tideflow.schemas.variables import check_variable_name

    try:
        check_variable_name(name, "notification destination")
    except ValueError as exc:
        exit_with_error(str(exc))


def _pairs(values: list[str], option: str) -> dict[str, str]:
    out = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            exit_with_error(f"{option} takes NAME=VALUE, got {item!r}")
        out[key.strip()] = value.strip()
    return out


def _config(kind: str, options: dict[str, Any]) -> dict[str, Any]:
    fields = {
        "slack": ("webhook_url_secret", "timeout"),
        "teams": ("webhook_url_secret", "timeout"),
        "email": ("host", "port", "security", "username", "password_secret", "from_address", "to",
                  "timeout"),
        "webhook": ("url", "method", "headers", "header_secrets", "body", "timeout"),
    }  # fmt: skip
    if kind not in fields:
        exit_with_error(f"--type must be one of {', '.join(fields)}, got {kind!r}")
    given = {k: v for k, v in options.items() if v not in (None, [], {})}
    stray = sorted(set(given) - set(fields[kind]))
    if stray:
        flags = ", ".join("--" + s.replace("_", "-").replace("from-address", "from") for s in stray)
        exit_with_error(f"a {kind} destination takes no {flags}")
    return {"type": kind, **given}


@app.command("create")
def create(
    name: NameArg,
    kind: Annotated[str, typer.Option("--type", help="slack, teams, email or webhook.")],
    webhook_url_secret: Annotated[
        str | None, typer.Option(help="slack/teams: the secret holding the incoming webhook URL.")
    ] = None,
    host: Annotated[str | None, typer.Option(help="email: the SMTP host.")] = None,
    port: Annotated[int | None, typer.Option(help="email: the SMTP port (587).")] = None,
    security: Annotated[
        str | None, typer.Option(help="email: starttls (default), ssl or none.")
    ] = None,
    username: Annotated[str | None, typer.Option(help="email: the SMTP user.")] = None,
    password_secret: Annotated[
        str | None, typer.Option(help="email: the secret holding the SMTP password.")
    ] = None,
    from_address: Annotated[str | None, typer.Option("--from", help="email: the sender.")] = None,
    to: Annotated[
        list[str] | None, typer.Option("--to", help="email: a recipient (repeat).")
    ] = None,
    url: Annotated[str | None, typer.Option(help="webhook: the URL.")] = None,
    method: Annotated[
        str | None, typer.Option(help="webhook: POST (default), PUT or PATCH.")
    ] = None,
    header: Annotated[
        list[str] | None, typer.Option("--header", help="webhook: NAME=VALUE (repeat).")
    ] = None,
    header_secret: Annotated[
        list[str] | None,
        typer.Option("--header-secret", help="webhook: NAME=SECRET, a header from a secret."),
    ] = None,
    body: Annotated[
        str | None,
        typer.Option(help="webhook: a JSON body template ({{ subject }}, {{ body }})."),
    ] = None,
    timeout: Annotated[float | None, typer.Option(help="Seconds per send (10).")] = None,
    description: Annotated[str, typer.Option(help="What it is for.")] = "",
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace a destination of that name.")
    ] = False,
) -> None:
    """Create a notification destination."""
    from pydantic import ValidationError

    from tideflow.schemas.notifications import NotificationDestinationCreate

    _check_name(name)
    parsed_body: Any = None
    if body is not None:
        try:
            parsed_body = json.loads(body)
        except ValueError as exc:
            exit_with_error(f"--body is not JSON: {exc}")
    options = {
        "webhook_url_secret": webhook_url_secret, "host": host, "port": port,
        "security": security, "username": username, "password_secret": password_secret,
        "from_address": from_address, "to": to or [], "url": url,
        "method": method.upper() if method else None, "headers": _pairs(header or [], "--header"),
        "header_secrets": _pairs(header_secret or [], "--header-secret"), "body": parsed_body,
        "timeout": timeout,
    }  # fmt: skip
    try:
        request = NotificationDestinationCreate(
            name=name, description=description, config=_config(kind, options),
            overwrite=overwrite,
        )  # fmt: skip
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"][1:] if not str(p) == kind) or "config"
        exit_with_error(f"{where}: {error['msg']}")
    with open_client() as client:
        try:
            client.create_notification_destination(request)
        except ServerError as exc:
            if exc.status_code != 409:
                raise
            exit_with_error(f"notification destination {name!r} exists already; pass --overwrite")
    console.print(f"Created notification destination {name!r} ({kind})", markup=False)


@app.command("ls")
def ls(as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False) -> None:
    """List notification destinations."""
    with open_client() as client:
        found = client.read_notification_destinations()
    if as_json:
        print_json(found)
        return
    if not found:
        console.print("No notification destinations.")
        return
    table = Table()
    for column in ("Name", "Type", "Target", "Updated"):
        table.add_column(column)
    for dest in found:
        table.add_row(dest.name, dest.type, _target(dest.config), format_time(dest.updated))
    console.print(table)


def _target(config: Any) -> str:
    """Where it sends, without a credential: secrets are named, never read."""
    if config.type in ("slack", "teams"):
        return f"URL in secret {config.webhook_url_secret!r}"
    if config.type == "email":
        return f"{', '.join(config.to)} via {config.host}:{config.port}"
    return f"{config.method} {config.url}"


@app.command("inspect")
def inspect(
    name: NameArg,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show a destination's configuration (secret names, never their values)."""
    _check_name(name)
    with open_client() as client:
        try:
            dest = client.read_notification_destination(name)
        except ObjectNotFound:
            exit_with_error(f"no notification destination named {name!r}")
    if as_json:
        print_json(dest)
        return
    print_field("Name", dest.name)
    print_field("Type", dest.type)
    if dest.description:
        print_field("Description", dest.description)
    for key, value in dest.config.model_dump(mode="json", exclude={"type"}).items():
        print_field(key.replace("_", " ").capitalize(), json.dumps(value) if isinstance(
            value, dict | list) else value)  # fmt: skip
    print_field("Created", format_time(dest.created))
    print_field("Updated", format_time(dest.updated))


@app.command("test")
def test(name: NameArg) -> None:
    """Send a test message to NAME; exit 1 with the reason when it is not delivered."""
    _check_name(name)
    with open_client() as client:
        try:
            result = client.test_notification_destination(name)
        except ObjectNotFound:
            exit_with_error(f"no notification destination named {name!r}")
    if not result.sent:
        exit_with_error(result.detail)
    console.print(result.detail, markup=False)


@app.command("delete")
def delete(name: NameArg) -> None:
    """Delete NAME."""
    _check_name(name)
    with open_client() as client:
        try:
            client.delete_notification_destination(name)
        except ObjectNotFound:
            exit_with_error(f"no notification destination named {name!r}")
    console.print(f"Deleted notification destination {name!r}", markup=False)
