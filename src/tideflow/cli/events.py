"""`tideflow events`: list stored events (``ls``), follow them live (``stream``), and send now the
events earlier processes saved in the spool while the server was unreachable (``flush-spool``).

``--event`` takes an exact name, a prefix ending in ``.`` (``tideflow.flow-run.``) or a ``*``
pattern (``tideflow.*.Failed``). ``--since`` takes a duration back from now (``90s``, ``10m``,
``2h``, ``7d``) or an ISO time (local time when it has no offset).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import sys
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table
from rich.text import Text

from tideflow.cli._common import (
    console,
    echo,
    exit_with_error,
    format_time,
    load_settings,
    open_client,
    print_json,
)

if TYPE_CHECKING:
    from tideflow.schemas.events import Event, EventFilter

__all__ = ["app", "event_filter", "parse_since", "related_summary"]

app = typer.Typer(help="List and follow events.", no_args_is_help=True)

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PAGE = 500


def parse_since(value: str, now: dt.datetime | None = None) -> dt.datetime:
    """``10m`` (back from ``now``) or an ISO time; raises ValueError naming the accepted forms."""
    match = _DURATION.match(value)
    if match:
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
        return (now or dt.datetime.now(dt.UTC)) - dt.timedelta(seconds=seconds)
    try:
        when = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(
            f"--since {value!r}: expected a duration like 90s, 10m, 2h, 7d or an ISO time"
        ) from None
    return when.astimezone(dt.UTC) if when.tzinfo is None else when


def event_filter(
    events: list[str] | None = None,
    resources: list[str] | None = None,
    related: list[str] | None = None,
    since: dt.datetime | None = None,
) -> EventFilter:
    """The feed filter for the CLI's options (see the module docstring for ``--event``)."""
    from tideflow.schemas.events import EventFilter

    names = [e for e in events or [] if "*" not in e and not e.endswith(".")]
    prefixes = [e for e in events or [] if "*" not in e and e.endswith(".")]
    patterns = [e for e in events or [] if "*" in e]
    return EventFilter(
        event_names=names or None if events else None,
        event_prefixes=prefixes or None if events else None,
        event_patterns=patterns or None if events else None,
        resource_ids=resources or None,
        related_ids=related or None,
        occurred_after=since,
    )


def related_summary(event: Event) -> str:
    """``role:name`` for each related resource (the id when it has no name)."""
    return ", ".join(f"{r.role}:{r.name or r.id}" for r in event.related)


def _resource_text(event: Event) -> str:
    name = event.resource.name
    return f"{event.resource.id} ({name})" if name else event.resource.id


EventOpt = Annotated[
    list[str] | None,
    typer.Option("--event", help="Exact name, prefix ending in '.', or '*' pattern; repeatable."),
]
ResourceOpt = Annotated[
    list[str] | None, typer.Option("--resource", help="Resource id; repeatable.")
]


@app.command("ls")
def ls(
    event: EventOpt = None,
    resource: ResourceOpt = None,
    related: Annotated[
        list[str] | None, typer.Option("--related", help="Related resource id; repeatable.")
    ] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="10m, 2h, 7d… back from now, or an ISO time.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="Most events to show.")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list of events.")] = False,
) -> None:
    """List stored events, newest first."""
    try:
        after = parse_since(since) if since else None
    except ValueError as exc:
        exit_with_error(str(exc))
    flt = event_filter(event, resource, related, after).model_copy(
        update={"limit": min(limit, _PAGE)}
    )
    out: list[Event] = []
    with open_client() as client:
        while len(out) < limit:
            page = client.read_events(flt)
            out += page.events[: limit - len(out)]
            if page.next_cursor is None:
                break
            flt = flt.model_copy(update={"cursor": page.next_cursor})
    if as_json:
        print_json([e.model_dump(mode="json") for e in out])
        return
    if not out:
        console.print("No events.")
        return
    table = Table()
    table.add_column("Occurred", no_wrap=True)
    # The event name is what people scan for: never cut it; resource and related wrap instead.
    table.add_column("Event", no_wrap=True, min_width=20)
    table.add_column("Resource", overflow="fold", min_width=12)
    table.add_column("Related", overflow="fold", min_width=12)
    for e in out:
        table.add_row(
            format_time(e.occurred),
            Text(e.event),
            Text(_resource_text(e)),
            Text(related_summary(e)),
        )
    console.print(table)


def _line(event: Event) -> str:
    related = related_summary(event)
    return "  ".join(
        part
        for part in (format_time(event.occurred), event.event, _resource_text(event), related)
        if part
    )


@app.command("stream")
def stream(
    event: EventOpt = None,
    resource: ResourceOpt = None,
    backfill: Annotated[
        float, typer.Option("--backfill", min=0, help="Also show the last N minutes first.")
    ] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """Follow events live, one line each, until Ctrl-C."""
    from tideflow.client._events import stream_events
    from tideflow.schemas.events import ReceivedEvent

    flt = event_filter(event, resource)
    with open_client() as client:
        api_url = client.api_url
    try:
        for frame in stream_events(api_url, flt, backfill_minutes=backfill):
            if frame.get("type") == "dropped":
                print(f"({frame['count']} events dropped: the stream fell behind)", file=sys.stderr)
                continue
            if as_json:
                print(json.dumps(frame["event"]), flush=True)
            else:
                print(_line(ReceivedEvent.model_validate(frame["event"])), flush=True)
    except KeyboardInterrupt:
        return
    except ValueError as exc:
        exit_with_error(str(exc))
    exit_with_error("the server closed the event stream")


@app.command("flush-spool")
def flush_spool() -> None:
    """Send now the events earlier processes saved in $TIDEFLOW_HOME/spool (any process that
    sends events also does this in the background)."""
    from tideflow.client._events import spool_for, ws_url

    spool = spool_for(load_settings())
    with open_client() as client:
        api_url = client.api_url
    result = spool.deliver(api_url, ws_url(api_url, "/events/in"))
    if result.refused:
        first = result.refusals[0] if result.refusals else {}
        echo(f"{result.refused} spooled event(s) refused; first: {first.get('reason')}", err=True)
    if result.other_servers:
        echo(
            f"{result.other_servers} spool file(s) in {spool.directory} are for another server "
            "and were left there",
            err=True,
        )
    if result.error is not None:
        exit_with_error(
            f"could not send the spooled events to {api_url} ({result.error}); "
            f"{result.events} sent, the rest stays in {spool.directory}"
        )
    echo(f"Sent {result.events} spooled event(s) from {result.files} file(s) to {api_url}")
