"""`tideflow worker start --pool NAME`: run the flow runs of a work pool's deployments on this
machine, each in its own process (``--type process``), docker container (``--type docker``, the
``tideflow[docker]`` extra) or Kubernetes job (``--type kubernetes``, ``tideflow[kubernetes]``), until
stopped (Ctrl-C or SIGTERM: running runs get the cancel
grace to finish; a second signal cancels them)."""

from __future__ import annotations

import importlib
from typing import Annotated, Any

import typer

from tideflow.cli._common import exit_with_error, load_settings, one_line

__all__ = ["app"]

# worker type -> (the third-party package its extra installs, (module, class))
_EXTRAS = {
    "docker": ("docker", ("tideflow.deployments._docker", "DockerWorker")),
    "kubernetes": ("kubernetes", ("tideflow.deployments._kubernetes", "KubernetesWorker")),
}

app = typer.Typer(help="Start workers that run a work pool's flow runs.", no_args_is_help=True)


@app.command("start")
def start(
    pool: Annotated[str, typer.Option("--pool", "-p", help="The work pool to take runs from.")],
    limit: Annotated[
        int | None, typer.Option("--limit", "-l", min=1, help="Flow runs at once (default: any).")
    ] = None,
    name: Annotated[
        str | None, typer.Option("--name", "-n", help="Worker name (default: host:pid).")
    ] = None,
    worker_type: Annotated[
        str | None,
        typer.Option(
            "--type",
            "-t",
            help="Worker type: process (default), docker or kubernetes; creates the pool with "
            "it when it does not exist.",
        ),
    ] = None,
    cold: Annotated[
        bool,
        typer.Option(
            "--cold",
            help="Process worker: start every run in a new interpreter (by default one with "
            "tideflow already imported waits for the next run).",
        ),
    ] = False,
) -> None:
    """Take the runs of POOL's deployments (pushed by the server) and run each in a process, a
    docker container or a Kubernetes job, per the worker type."""
    import asyncio

    from tideflow.client import resolve_api_url
    from tideflow.deployments._worker import ProcessWorker, run_worker
    from tideflow.exceptions import TideflowError

    kind = worker_type or "process"
    worker_class: Any = ProcessWorker
    if kind not in _EXTRAS and kind != "process":
        exit_with_error(f"unknown worker type {kind!r}: one of process, docker, kubernetes")
    if kind in _EXTRAS:
        package, module = _EXTRAS[kind]
        try:
            importlib.import_module(package)
        except ImportError:
            exit_with_error(
                f"the {kind} worker needs the {package!r} package: pip install 'tideflow[{kind}]'"
            )
        worker_class = getattr(importlib.import_module(module[0]), module[1])
    settings = load_settings()
    try:
        settings = settings.model_copy(update={"api_url": resolve_api_url(settings)})
    except TideflowError as exc:
        exit_with_error(one_line(exc))
    options: dict[str, Any] = {"warm": not cold} if kind == "process" else {}
    worker = worker_class(
        pool, settings=settings, limit=limit, name=name, create_pool=worker_type is not None,
        **options,
    )  # fmt: skip
    try:
        asyncio.run(run_worker(worker))
    except (TideflowError, ValueError) as exc:
        exit_with_error(one_line(exc))
    if worker.error:
        exit_with_error(worker.error)
