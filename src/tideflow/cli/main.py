"""The ``tideflow`` command: one Typer app with a sub-app per command group (one module each).

Command groups load lazily: a group's module is imported only when its name is on the command line
(or when help lists the groups), so ``tideflow deployment run`` does not pay for the server, automation
or event commands' imports (issue 6: a CLI command ≤ 300 ms).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator, MutableMapping
from typing import Any

import typer
from typer.core import TyperGroup
from typer.main import get_group_from_info
from typer.models import TyperInfo

try:  # recent Typer releases vendor Click; older ones use the click package
    from typer._click.exceptions import ClickException, NoArgsIsHelpError, UsageError
except ImportError:  # pragma: no cover - depends on the installed Typer
    from click.exceptions import ClickException, NoArgsIsHelpError, UsageError  # type: ignore[assignment]

from tideflow.cli._common import echo
from tideflow.exceptions import TideflowError

__all__ = ["GROUPS", "app", "main"]

# Command group name -> the module whose ``app`` (a Typer) implements it, in help order.
GROUPS: dict[str, str] = {
    "config": "tideflow.cli.config",
    "server": "tideflow.cli.server",
    "flow": "tideflow.cli.flow",
    "flow-run": "tideflow.cli.flow_run",
    "task": "tideflow.cli.task",
    "task-run": "tideflow.cli.task_run",
    "concurrency-limit": "tideflow.cli.concurrency_limit",
    "deployment": "tideflow.cli.deployment",
    "automation": "tideflow.cli.automation",
    "events": "tideflow.cli.events",
    "event": "tideflow.cli.event",
    "api-key": "tideflow.cli.api_key",
    "user": "tideflow.cli.user",
    "profile": "tideflow.cli.profile",
    "schedule": "tideflow.cli.schedule",
    "work-pool": "tideflow.cli.work_pool",
    "work-queue": "tideflow.cli.work_queue",
    "worker": "tideflow.cli.worker",
    "variable": "tideflow.cli.variable",
    "secret": "tideflow.cli.secret",
    "artifact": "tideflow.cli.artifact",
    "asset": "tideflow.cli.asset",
    "gcl": "tideflow.cli.gcl",
    "webhook": "tideflow.cli.webhook",
    "notification": "tideflow.cli.notification",
}


class _LazyCommands(MutableMapping[str, Any]):
    """The top-level commands by name: the app's own, then every group, built on first lookup.

    Typer and Click read this mapping for lookup, listing, help and "did you mean" suggestions, so
    every group name is always present while only the groups actually looked up are imported.
    """

    def __init__(self, own: MutableMapping[str, Any]) -> None:
        self._built: dict[str, Any] = dict(own)

    def _build(self, name: str) -> Any:
        sub_app = importlib.import_module(GROUPS[name]).app
        # The same conversion Typer applies to an add_typer(sub_app, name=...) group.
        group = get_group_from_info(
            TyperInfo(sub_app, name=name),
            pretty_exceptions_short=app.pretty_exceptions_short,
            rich_markup_mode=app.rich_markup_mode,
            suggest_commands=app.suggest_commands,
        )
        self._built[name] = group
        return group

    def __getitem__(self, name: str) -> Any:
        if name in self._built:
            return self._built[name]
        if name in GROUPS:
            return self._build(name)
        raise KeyError(name)

    def __setitem__(self, name: str, command: Any) -> None:
        self._built[name] = command

    def __delitem__(self, name: str) -> None:
        del self._built[name]

    def __iter__(self) -> Iterator[str]:
        yield from self._built
        yield from (name for name in GROUPS if name not in self._built)

    def __len__(self) -> int:
        return len(self._built) + sum(1 for name in GROUPS if name not in self._built)


class _LazyGroups(TyperGroup):
    """The top-level group, whose command groups load lazily (``_LazyCommands``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.commands = _LazyCommands(self.commands)


app = typer.Typer(
    name="tideflow",
    cls=_LazyGroups,
    help="tideflow: run Python flows on schedules, on demand, or when events say so.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    # A callback makes Typer build the app as a group even though its command groups are not
    # registered up front (they come from _LazyGroups).
    pass


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


# `tideflow deploy` and `tideflow init` are top-level commands, as in Prefect (issue 11).
from tideflow.cli.deploy import deploy as _deploy  # noqa: E402
from tideflow.cli.deploy import init as _init  # noqa: E402
from tideflow.cli.mcp import mcp as _mcp  # noqa: E402

app.command("deploy")(_deploy)
app.command("init")(_init)
app.command("mcp")(_mcp)


def main() -> None:
    """Entry point. Errors become one line on stderr: tideflow errors exit 1, usage errors exit 2."""
    try:
        code = app(standalone_mode=False)
    except TideflowError as exc:
        echo(f"Error: {exc}", err=True)
        sys.exit(1)
    except NoArgsIsHelpError as exc:
        if exc.ctx is not None:
            typer.echo(exc.ctx.get_help())
        sys.exit(0)
    except UsageError as exc:
        hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
        echo(f"Error: {exc.format_message()}{hint}", err=True)
        sys.exit(2)
    except ClickException as exc:
        echo(f"Error: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code or 1)
    except (KeyboardInterrupt, typer.Abort):
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)
