"""What every command shares: the console, one-line errors, JSON output, settings and client access,
flow-run id resolution, and id/duration/state formatting helpers.

The settings, client and schemas are imported inside the helpers that need them (they run only from
command bodies), so ``tideflow --help`` and ``tideflow config`` do not pay for httpx and the schemas.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar, cast
from uuid import UUID

import typer

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

    from tideflow.client import SyncClient
    from tideflow.schemas import FlowRun
    from tideflow.settings import Settings

T = TypeVar("T")

__all__ = [
    "STATE_COLOURS",
    "console",
    "echo",
    "err_console",
    "exit_with_error",
    "format_duration",
    "format_time",
    "load_settings",
    "one_line",
    "open_client",
    "print_field",
    "print_json",
    "resolve_by_id",
    "resolve_flow_run",
    "state_text",
]


class _LazyConsole:
    """A rich Console made on first use: rich costs ~20 ms to import, and a command that prints
    only plain lines (``echo``, ``exit_with_error``) never loads it (issue 6: a command ≤ 300 ms)."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._console: Console | None = None

    def __getattr__(self, name: str) -> Any:
        if self._console is None:
            from rich.console import Console

            self._console = Console(**self._options)
        return getattr(self._console, name)


console = cast("Console", _LazyConsole(highlight=False, soft_wrap=True))
err_console = cast("Console", _LazyConsole(stderr=True, highlight=False, soft_wrap=True))


def echo(line: str, *, err: bool = False) -> None:
    """Print one plain line (no markup, no wrapping) to stdout, or stderr with ``err``."""
    typer.echo(line, err=err)


# Rich style per state type: green done, red broken, yellow waiting, blue moving, dim stopped.
STATE_COLOURS: dict[str, str] = {
    "SCHEDULED": "yellow",
    "PENDING": "grey62",
    "RUNNING": "blue",
    "COMPLETED": "green",
    "FAILED": "red",
    "CRASHED": "bright_red",
    "CANCELLING": "magenta",
    "CANCELLED": "grey50",
    "PAUSED": "cyan",
}

_MIN_PREFIX = 6
_PREFIX_PAGE = 1000


def exit_with_error(message: str, code: int = 1) -> NoReturn:
    """Print one readable line to stderr and exit non-zero (never a traceback)."""
    # Click drops the colour when stderr is not a terminal, as rich did.
    typer.echo(f"{typer.style('Error:', fg='red')} {message}", err=True)
    raise typer.Exit(code)


def one_line(exc: BaseException) -> str:
    """An exception as one readable line; pydantic errors name the ``TIDEFLOW_*`` setting at fault."""
    errors = getattr(exc, "errors", None)
    if callable(errors) and type(exc).__name__ == "ValidationError":
        parts = []
        for err in errors():
            loc = ".".join(str(p) for p in err.get("loc", ()))
            key = f"TIDEFLOW_{loc.upper()}" if loc else "settings"
            parts.append(f"{key}: {err.get('msg')} (got {err.get('input')!r})")
        return "; ".join(parts)
    return " ".join(str(exc).split())


def load_settings() -> Settings:
    """The current settings, or one error line naming the bad setting or profile file."""
    from tideflow.settings import get_settings

    try:
        return get_settings()
    except ValueError as exc:  # pydantic's ValidationError and a broken profile file
        exit_with_error(f"invalid tideflow settings: {one_line(exc)}")


def open_client() -> SyncClient:
    """A SyncClient for the configured API (settings errors become one line)."""
    from tideflow.client import SyncClient

    return SyncClient(settings=load_settings())


def resolve_by_id(
    ref: str,
    kind: str,
    read_one: Callable[[UUID], T],
    read_page: Callable[[int, int], list[T]],
) -> T:
    """The ``kind`` (e.g. "flow run") whose id is ``ref``: a full UUID, or a unique prefix of at least
    6 hex characters found by paging with ``read_page(limit, offset)``; one error line otherwise."""
    text = ref.strip().lower()
    try:
        return read_one(UUID(text))
    except ValueError:
        pass
    prefix = text.replace("-", "")
    if not re.fullmatch(r"[0-9a-f-]+", text) or len(prefix) < _MIN_PREFIX:
        exit_with_error(
            f"{ref!r} is not a {kind} id: give the full UUID or at least {_MIN_PREFIX} of its "
            "leading hex characters"
        )
    matches: list[T] = []
    offset = 0
    while True:
        page = read_page(_PREFIX_PAGE, offset)
        matches.extend(item for item in page if item.id.hex.startswith(prefix))  # type: ignore[attr-defined]
        if len(page) < _PREFIX_PAGE:
            break
        offset += _PREFIX_PAGE
    if not matches:
        exit_with_error(f"no {kind} id starts with {ref!r}")
    if len(matches) > 1:
        shown = ", ".join(str(item.id) for item in matches[:5])  # type: ignore[attr-defined]
        more = f" and {len(matches) - 5} more" if len(matches) > 5 else ""
        exit_with_error(
            f"{ref!r} is ambiguous: it matches {len(matches)} {kind}s ({shown}{more}); "
            "give more characters"
        )
    return matches[0]


def resolve_flow_run(client: SyncClient, ref: str) -> FlowRun:
    """The run whose id is ``ref``: a full UUID or a unique prefix of at least 6 hex characters."""
    from tideflow.schemas import FlowRunFilter

    return resolve_by_id(
        ref,
        "flow run",
        client.read_flow_run,
        lambda limit, offset: client.read_flow_runs(FlowRunFilter(limit=limit, offset=offset)),
    )


def state_text(state_type: str | None, state_name: str | None) -> Text:
    """A run's state name coloured by its type (``-`` when it has none)."""
    from rich.text import Text

    if state_type is None:
        return Text("-")
    return Text(state_name or str(state_type).title(), style=STATE_COLOURS.get(str(state_type), ""))


def _jsonable(value: Any) -> Any:
    if hasattr(value, "model_dump"):  # a pydantic model (not imported here: --help stays light)
        return value.model_dump(mode="json")
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


def print_field(label: str, value: object) -> None:
    """One ``label  value`` line of an ``inspect`` view (label bold, padded to 16)."""
    from rich.text import Text

    line = Text.assemble((f"{label:<16}", "bold"), value if isinstance(value, Text) else str(value))
    console.print(line)


def print_json(value: Any) -> None:
    """Machine-readable output for ``--json``: plain JSON on stdout, no colours."""
    sys.stdout.write(json.dumps(_jsonable(value), indent=2, default=str) + "\n")


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def format_time(value: dt.datetime | None) -> str:
    if value is None:
        return "-"
    return value.astimezone().strftime("%Y-%m-%d %H:%M:%S")
