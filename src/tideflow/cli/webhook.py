"""`tideflow webhook`: inbound webhooks (create, ls, inspect, update, toggle, delete, rotate).

A webhook is an address, ``<api>/hooks/<slug>``, that other systems POST to; its template turns
each request into an event. A secret (for ``--verify token|hmac-sha256|github``) is printed once,
when made or rotated.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any
from uuid import UUID

import typer

from tideflow.cli._common import (
    console,
    echo,
    err_console,
    exit_with_error,
    format_time,
    open_client,
    print_json,
)
from tideflow.exceptions import ObjectNotFound, TideflowError

if TYPE_CHECKING:
    from tideflow.client import SyncClient
    from tideflow.schemas.webhooks import Webhook, WebhookCreated

__all__ = ["app"]

app = typer.Typer(
    help="Manage inbound webhooks (requests that become events).", no_args_is_help=True
)

NameArg = Annotated[str, typer.Argument(help="The webhook's name or id.")]
TemplateOpt = Annotated[
    str | None,
    typer.Option(
        "--template",
        help="The template: JSON ({'event': ..., 'resource': {...}, 'payload': {...}} whose "
        "strings are Jinja templates), one template string, or @FILE to read it from a file.",
    ),
]
VerifyOpt = Annotated[
    str | None,
    typer.Option("--verify", help="none, token, hmac-sha256 or github (X-Hub-Signature-256)."),
]
HeaderOpt = Annotated[
    str | None, typer.Option("--header", help="The header with the token or signature.")
]
MaxBodyOpt = Annotated[
    int | None, typer.Option("--max-body-bytes", help="Largest body taken (bytes).")
]
RateOpt = Annotated[int | None, typer.Option("--rate-limit", help="Requests a minute.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _template(text: str | None) -> Any:
    if text is None:
        return None
    if text.startswith("@"):
        try:
            text = Path(text[1:]).read_text()
        except OSError as exc:
            exit_with_error(f"cannot read the template file {text[1:]!r}: {exc.strerror}")
    try:
        value = json.loads(text)
    except ValueError:
        return text  # one template string rendering the event's JSON
    return value if isinstance(value, dict) else text


def _problem(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        first = errors()[0]
        msg = str(first.get("msg", "")).removeprefix("Value error, ")
        loc = ".".join(str(p) for p in first.get("loc", ()))
        return f"{loc}: {msg}" if loc else msg
    return str(exc)


def _url(client: SyncClient, webhook: Webhook) -> str:
    return f"{str(client.api_url).rstrip('/')}/hooks/{webhook.slug}"


def _resolve(client: SyncClient, ref: str) -> Webhook:
    from tideflow.client import _webhooks as calls
    from tideflow.schemas.webhooks import WebhookFilter

    try:
        webhook_id = UUID(ref)
    except ValueError:
        webhook_id = None
    if webhook_id is not None:
        try:
            return client.send(calls.read_webhook(webhook_id))
        except ObjectNotFound:
            exit_with_error(f"no webhook {ref!r}")
    found = client.send(calls.read_webhooks(WebhookFilter(name=ref, limit=1)))
    if not found:
        exit_with_error(f"no webhook named {ref!r} (see `tideflow webhook ls`)")
    return found[0]


def _report(client: SyncClient, made: WebhookCreated, verb: str, as_json: bool) -> None:
    if as_json:
        print_json({**made.model_dump(mode="json"), "url": _url(client, made)})
        return
    console.print(f"{verb} webhook {made.name!r} ({made.id})", markup=False)
    console.print(f"URL: {_url(client, made)}", markup=False)
    if made.secret is not None:
        err_console.print(
            f"Secret ({made.verification}, header {made.header}); shown once, store it now:"
        )
        print(made.secret, flush=True)


@app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="A name: lowercase letters, digits, '_' and '-'.")],
    template: TemplateOpt = None,
    verify: VerifyOpt = None,
    header: HeaderOpt = None,
    slug: Annotated[
        str | None, typer.Option("--slug", help="The address's last part (default: random).")
    ] = None,
    description: Annotated[str, typer.Option("--description")] = "",
    max_body_bytes: MaxBodyOpt = None,
    rate_limit: RateOpt = None,
    disabled: Annotated[bool, typer.Option("--disabled", help="Create it disabled.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Create a webhook and print its URL (and its secret, once)."""
    from pydantic import ValidationError

    from tideflow.client import _webhooks as calls
    from tideflow.schemas.webhooks import WebhookCreate

    fields: dict[str, Any] = {"name": name, "description": description, "enabled": not disabled}
    for key, value in (("template", _template(template)), ("verification", verify),
                       ("signature_header", header), ("slug", slug),
                       ("max_body_bytes", max_body_bytes), ("rate_limit", rate_limit)):  # fmt: skip
        if value is not None:
            fields[key] = value
    try:
        body = WebhookCreate(**fields)
    except ValidationError as exc:
        exit_with_error(_problem(exc))
    try:
        with open_client() as client:
            made = client.send(calls.create_webhook(body))
            _report(client, made, "Created", as_json)
    except TideflowError as exc:
        exit_with_error(str(exc))


@app.command("ls")
def ls(as_json: JsonOpt = False) -> None:
    """List the webhooks (never their secrets)."""
    from rich.table import Table

    from tideflow.client import _webhooks as calls

    try:
        with open_client() as client:
            hooks = client.send(calls.read_webhooks())
            urls = {h.id: _url(client, h) for h in hooks}
    except TideflowError as exc:
        exit_with_error(str(exc))
    if as_json:
        print_json([{**h.model_dump(mode="json"), "url": urls[h.id]} for h in hooks])
        return
    if not hooks:
        console.print("No webhooks.")
        return
    table = Table()
    for column in ("Name", "Enabled", "Verification", "URL", "Updated"):
        table.add_column(column, no_wrap=column != "URL")
    for hook in hooks:
        table.add_row(hook.name, "yes" if hook.enabled else "no", hook.verification,
                      urls[hook.id], format_time(hook.updated))  # fmt: skip
    console.print(table)


@app.command("inspect")
def inspect(
    ref: NameArg,
    failures: Annotated[
        int, typer.Option("--failures", help="How many recent failures to show.")
    ] = 10,
) -> None:
    """Show the webhook (JSON), its URL and the latest requests it refused, with why."""
    from tideflow.schemas.events import EventFilter

    try:
        with open_client() as client:
            hook = _resolve(client, ref)
            page = client.read_events(
                EventFilter(
                    event_names=["tideflow.webhook.failed"],
                    resource_ids=[f"tideflow.webhook.{hook.id}"],
                    limit=max(1, min(failures, 100)),
                )
            )
            out = {
                **hook.model_dump(mode="json"),
                "url": _url(client, hook),
                "recent_failures": [
                    {"occurred": e.occurred.isoformat(), **e.payload} for e in page.events
                ],
            }
    except TideflowError as exc:
        exit_with_error(str(exc))
    print_json(out)


@app.command("update")
def update(
    ref: NameArg,
    template: TemplateOpt = None,
    verify: VerifyOpt = None,
    header: HeaderOpt = None,
    description: Annotated[str | None, typer.Option("--description")] = None,
    max_body_bytes: MaxBodyOpt = None,
    rate_limit: RateOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Change the options given; the rest stay."""
    from pydantic import ValidationError

    from tideflow.client import _webhooks as calls
    from tideflow.schemas.webhooks import WebhookUpdate

    fields = {k: v for k, v in (("template", _template(template)), ("verification", verify),
              ("signature_header", header), ("description", description),
              ("max_body_bytes", max_body_bytes), ("rate_limit", rate_limit)) if v is not None}  # fmt: skip
    if not fields:
        exit_with_error("nothing to change: give at least one option (see --help)")
    try:
        body = WebhookUpdate(**fields)
    except ValidationError as exc:
        exit_with_error(_problem(exc))
    try:
        with open_client() as client:
            hook = _resolve(client, ref)
            made = client.send(calls.update_webhook(hook.id, body))
            _report(client, made, "Updated", as_json)
    except TideflowError as exc:
        exit_with_error(str(exc))


@app.command("toggle")
def toggle(ref: NameArg) -> None:
    """Disable an enabled webhook, or enable a disabled one (a disabled one answers 404)."""
    from tideflow.client import _webhooks as calls
    from tideflow.schemas.webhooks import WebhookUpdate

    try:
        with open_client() as client:
            hook = _resolve(client, ref)
            made = client.send(
                calls.update_webhook(hook.id, WebhookUpdate(enabled=not hook.enabled))
            )
    except TideflowError as exc:
        exit_with_error(str(exc))
    echo(f"Webhook {made.name!r} is now {'enabled' if made.enabled else 'disabled'}")


@app.command("rotate")
def rotate(
    ref: NameArg,
    secret: Annotated[bool, typer.Option("--secret", help="Also make a new secret.")] = False,
    keep_slug: Annotated[
        bool, typer.Option("--keep-slug", help="Keep the URL (with --secret: the secret only).")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Give the webhook a new random URL (the old one answers 404 at once) and/or secret."""
    from tideflow.client import _webhooks as calls
    from tideflow.schemas.webhooks import WebhookRotate

    if keep_slug and not secret:
        exit_with_error("nothing to rotate: --keep-slug without --secret")
    try:
        with open_client() as client:
            hook = _resolve(client, ref)
            made = client.send(
                calls.rotate_webhook(hook.id, WebhookRotate(slug=not keep_slug, secret=secret))
            )
            _report(client, made, "Rotated", as_json)
    except TideflowError as exc:
        exit_with_error(str(exc))


@app.command("delete")
def delete(ref: NameArg) -> None:
    """Delete the webhook: its URL answers 404 from now on."""
    from tideflow.client import _webhooks as calls

    try:
        with open_client() as client:
            hook = _resolve(client, ref)
            client.send(calls.delete_webhook(hook.id))
    except TideflowError as exc:
        exit_with_error(str(exc))
    echo(f"Deleted webhook {hook.name!r}")
