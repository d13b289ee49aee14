"""`tideflow task serve ENTRY...`: run a task worker for background task runs (``Task.delay``)."""

from __future__ import annotations

from typing import Annotated

import typer

from tideflow.cli._common import exit_with_error, one_line

__all__ = ["app"]

app = typer.Typer(help="Run task workers for background tasks.", no_args_is_help=True)


@app.command()
def serve(
    entrypoints: Annotated[
        list[str],
        typer.Argument(
            metavar="TASK",
            help="Tasks to serve: 'path/to/file.py:name' or 'package.module:name'.",
        ),
    ],
    limit: Annotated[
        int, typer.Option("--limit", min=1, help="Task runs executed at once (threads).")
    ] = 10,
) -> None:
    """Run the background runs of these tasks (made by task.delay(...)) until Ctrl-C.

    First Ctrl-C: the runs in hand finish. Second: exit now (the server re-offers those runs).
    """
    from tideflow.task_worker import load_task
    from tideflow.task_worker import serve as serve_tasks

    tasks = []
    for entry in entrypoints:
        try:
            tasks.append(load_task(entry))
        except ValueError as exc:
            exit_with_error(str(exc))
        except Exception as exc:  # the user's module failed to import: say so, no traceback
            exit_with_error(f"cannot load {entry}: {type(exc).__name__}: {one_line(exc)}")
    try:
        serve_tasks(*tasks, limit=limit)
    except ValueError as exc:
        exit_with_error(str(exc))
