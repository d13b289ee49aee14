"""The ``tideflow`` command: one Typer app with a sub-app per command group (one module each)."""

from __future__ import annotations

import sys

import typer

from tideflow.cli import config, flow, flow_run, server
from tideflow.cli._common import err_console
from tideflow.exceptions import TideflowError

__all__ = ["app", "main"]

app = typer.Typer(
    name="tideflow",
    help="tideflow: run Python flows on schedules, on demand, or when events say so.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(config.app, name="config")
app.add_typer(server.app, name="server")
app.add_typer(flow.app, name="flow")
app.add_typer(flow_run.app, name="flow-run")


@app.command()
def version() -> None:
    """Print tideflow's version, Python's, and the API the CLI would talk to."""
    import platform

    from tideflow import __version__
    from tideflow.settings import get_settings

    settings = get_settings()
    typer.echo(f"tideflow {__version__}")
    typer.echo(f"python   {platform.python_version()}")
    typer.echo(f"api      {settings.api_url or settings.local_api_url + ' (local server)'}")


def main() -> None:
    """Entry point: run the app; tideflow errors become one red line and exit code 1."""
    try:
        app()
    except TideflowError as exc:
        err_console.print(f"[red]Error:[/red] {exc}")
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
