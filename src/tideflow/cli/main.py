"""The ``tideflow`` command: one Typer app with a sub-app per command group (one module each)."""

from __future__ import annotations

import sys

import typer

try:  # recent Typer releases vendor Click; older ones use the click package
    from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError
except ImportError:  # pragma: no cover - depends on the installed Typer
    from click.exceptions import ClickException, NoArgsIsHelpError, UsageError  # type: ignore[assignment]

from tideflow.cli import automation, config, deployment, event, events, flow, flow_run, server
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
app.add_typer(deployment.app, name="deployment")
app.add_typer(automation.app, name="automation")
app.add_typer(events.app, name="events")
app.add_typer(event.app, name="event")


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
    """Entry point. Errors become one line on stderr: tideflow errors exit 1, usage errors exit 2."""
    try:
        code = app(standalone_mode=False)
    except TideflowError as exc:
        err_console.print(f"Error: {exc}", markup=False)
        sys.exit(1)
    except NoArgsIsHelpError as exc:
        if exc.ctx is not None:
            typer.echo(exc.ctx.get_help())
        sys.exit(0)
    except UsageError as exc:
        hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
        err_console.print(f"Error: {exc.format_message()}{hint}", markup=False)
        sys.exit(2)
    except ClickException as exc:
        err_console.print(f"Error: {exc.format_message()}", markup=False)
        sys.exit(exc.exit_code or 1)
    except (KeyboardInterrupt, typer.Abort):
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)
