"""`tideflow deploy` and `tideflow init`: deployments from a project's ``tideflow.yaml``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tideflow.cli._common import echo, exit_with_error, load_settings

__all__ = ["deploy", "init"]


def deploy(
    names: Annotated[
        list[str] | None,
        typer.Argument(help="Deployments to register (NAME or FLOW/NAME); all with --all."),
    ] = None,
    all_: Annotated[
        bool, typer.Option("--all", help="Register every deployment in the file.")
    ] = False,
    file: Annotated[Path, typer.Option("--file", "-f", help="The project file to read.")] = Path(
        "tideflow.yaml"
    ),
) -> None:
    """Create or update the deployments declared in ./tideflow.yaml (as flow.deploy() does)."""
    from tideflow.deployments._project import DeployedProject, ProjectError, deploy_project
    from tideflow.exceptions import ServerError, TideflowError

    chosen = list(names or [])
    if all_ and chosen:
        exit_with_error("pass deployment names or --all, not both")

    def done(item: DeployedProject) -> None:
        echo(f"Deployed '{item.full_name}' to work pool '{item.work_pool_name}' (id {item.id})")

    settings = load_settings()
    try:
        if not chosen and not all_:
            # Prefect asks interactively; a file of one deployment needs no choice.
            from tideflow.deployments._project import load_project

            count = len(load_project(file).deployments)
            if count > 1:
                exit_with_error(
                    f"{file.name} declares {count} deployments: name the ones to register "
                    "or pass --all"
                )
        items = deploy_project(file, chosen, settings=settings, on_deployed=done)
    except ProjectError as exc:
        exit_with_error(str(exc))
    except ServerError as exc:
        exit_with_error(f"the server refused: {exc}")
    except TideflowError as exc:
        exit_with_error(" ".join(str(exc).split()))
    pools = sorted({i.work_pool_name for i in items})
    echo(
        f"{len(items)} deployment(s) registered. Start a worker with: tideflow worker start "
        f"--pool '{pools[0]}'; run one with: tideflow deployment run '{items[0].full_name}'"
    )


def init(
    force: Annotated[
        bool, typer.Option("--force", help="Overwrite an existing tideflow.yaml.")
    ] = False,
    file: Annotated[Path, typer.Option("--file", "-f", help="Where to write the file.")] = Path(
        "tideflow.yaml"
    ),
) -> None:
    """Write a commented example tideflow.yaml in this folder."""
    from tideflow.deployments._project import example_project_file

    if file.exists() and not force:
        exit_with_error(f"{file} already exists (pass --force to overwrite it)")
    try:
        file.write_text(example_project_file(), encoding="utf-8")
    except OSError as exc:
        exit_with_error(f"cannot write {file}: {exc.strerror or exc}")
    echo(f"Wrote {file}: edit its deployments, then run 'tideflow deploy --all'")
