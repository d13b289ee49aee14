"""``tideflow.yaml``: read a project's deployments and register each as ``flow.deploy()`` does.

The file is parsed with PyYAML's safe loader (bounded in size), ``{{ $ENV_VAR }}`` and
``{{ tideflow.variables.name }}`` placeholders are replaced, and the result is validated by
``tideflow.schemas.project.ProjectFile``. Every problem becomes one ``ProjectError`` line naming the
file and the key path (``tideflow.yaml: deployments[1].work_pool.name: field required``).

Entrypoints are relative to the folder holding the file; the flow is loaded from there to build
its parameter schema. The code reaches workers through the file's ``pull:`` steps (a deployment's
own ``pull:`` wins), or, with none, by ``set_working_directory`` to that folder.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from uuid import UUID

from pydantic import ValidationError

from tideflow.deployments._child import load_entrypoint
from tideflow.deployments._source import SourceInfo, deploy_flow
from tideflow.exceptions import TideflowError
from tideflow.schemas.project import ProjectDeployment, ProjectFile
from tideflow.settings import Settings

__all__ = [
    "PROJECT_FILE",
    "DeployedProject",
    "ProjectError",
    "deploy_project",
    "example_project_file",
    "load_project",
]

PROJECT_FILE = "tideflow.yaml"
MAX_PROJECT_FILE_BYTES = 1_000_000  # a project file is hand written; bound what parsing may cost

_PLACEHOLDER = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")
_ENV = re.compile(r"^\$([A-Za-z_][A-Za-z0-9_]*)$")
_VARIABLE = re.compile(r"^(?:tideflow|prefect)\.variables\.([A-Za-z0-9_-]+)$")


class ProjectError(TideflowError):
    """A problem in a project file; the message is one line naming the file and the key."""


@dataclass(frozen=True)
class DeployedProject:
    """One deployment registered from the file."""

    full_name: str
    id: UUID
    work_pool_name: str


def _path(loc: Sequence[Any]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _substitute(value: Any, loc: list[Any], lookup: Callable[[str, list[Any]], Any]) -> Any:
    if isinstance(value, dict):
        return {k: _substitute(v, [*loc, k], lookup) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, [*loc, i], lookup) for i, v in enumerate(value)]
    if not isinstance(value, str) or "{{" not in value:
        return value
    whole = _PLACEHOLDER.fullmatch(value.strip())
    if whole:  # the value is one placeholder: keep the variable's JSON type (a list stays a list)
        return lookup(whole.group(1), loc)

    def one(match: re.Match[str]) -> str:
        found = lookup(match.group(1), loc)
        return found if isinstance(found, str) else _json(found)

    return _PLACEHOLDER.sub(one, value)


def _json(value: Any) -> str:
    import json

    return json.dumps(value)


class _Lookup:
    """Resolves placeholders; variables are read from the server once each."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.variables: dict[str, Any] = {}

    def __call__(self, expr: str, loc: list[Any]) -> Any:
        where = f"{self.file}: {_path(loc)}"
        env = _ENV.match(expr)
        if env:
            name = env.group(1)
            if name not in os.environ:
                raise ProjectError(f"{where}: environment variable {name} is not set")
            return os.environ[name]
        var = _VARIABLE.match(expr)
        if var:
            name = var.group(1)
            if name not in self.variables:
                from tideflow.variables import Variable

                missing = object()
                got = Variable.get(name, default=missing)
                if got is missing:
                    raise ProjectError(f"{where}: variable {name!r} does not exist on the server")
                self.variables[name] = got
            return self.variables[name]
        raise ProjectError(
            f"{where}: unknown placeholder {{{{ {expr} }}}} "
            "(use {{ $ENV_VAR }} or {{ tideflow.variables.name }})"
        )


def _short_step_names(steps: Any) -> Any:
    # Prefect's files name steps by their import path (prefect.deployments.steps.git_clone).
    if not isinstance(steps, list):
        return steps
    out = []
    for step in steps:
        if isinstance(step, dict) and len(step) == 1:
            ((name, args),) = step.items()
            step = {str(name).rpartition(".")[2]: args}
        out.append(step)
    return out


def _first_error(file: str, exc: ValidationError) -> str:
    err = exc.errors(include_url=False)[0]
    msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
    if err.get("type") == "missing":
        msg = "field required"
    elif err.get("type") == "extra_forbidden":
        msg = "unknown key"
    loc = _path(err.get("loc", ()))
    return f"{file}: {loc}: {msg}" if loc else f"{file}: {msg}"


def load_project(path: str | os.PathLike[str]) -> ProjectFile:
    """The validated, substituted project file at ``path``; ProjectError (one line) if not."""
    import yaml

    file = Path(path)
    label = file.name
    try:
        if file.stat().st_size > MAX_PROJECT_FILE_BYTES:
            raise ProjectError(f"{label}: larger than {MAX_PROJECT_FILE_BYTES} bytes")
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ProjectError(
            f"{file} not found (create one with 'tideflow init', or pass --file)"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ProjectError(f"{label}: cannot be read: {exc}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ProjectError(f"{label}: {problem}{where}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ProjectError(f"{label}: the top level must be a mapping (deployments:, pull:)")
    raw = _substitute(raw, [], _Lookup(label))
    raw["pull"] = _short_step_names(raw.get("pull"))
    for d in raw.get("deployments") or [] if isinstance(raw.get("deployments"), list) else []:
        if isinstance(d, dict) and "pull" in d:
            d["pull"] = _short_step_names(d["pull"])
    try:
        return ProjectFile.model_validate(raw)
    except ValidationError as exc:
        raise ProjectError(_first_error(label, exc)) from None


def _select(project: ProjectFile, names: Sequence[str], label: str) -> list[ProjectDeployment]:
    if not names:
        return list(project.deployments)
    chosen: list[ProjectDeployment] = []
    for wanted in names:
        hits = [
            d
            for d in project.deployments
            if wanted in (d.name, f"{d.entrypoint.rpartition(':')[2]}/{d.name}")
        ]
        if not hits:
            known = ", ".join(d.name for d in project.deployments) or "none"
            raise ProjectError(f"{label}: no deployment named {wanted!r} (the file has: {known})")
        chosen.extend(d for d in hits if d not in chosen)
    return chosen


def _load_flow(folder: Path, entrypoint: str, where: str) -> Any:
    path, _, name = entrypoint.rpartition(":")
    if PurePosixPath(path).is_absolute() or ".." in PurePosixPath(path).parts:
        raise ProjectError(f"{where}.entrypoint: must be a path inside the project folder")
    try:
        flow = load_entrypoint(f"{folder / path}:{name}")
    except ValueError as exc:
        raise ProjectError(f"{where}.entrypoint: {exc}") from None
    except Exception as exc:  # the user's module failed to import: name it, no traceback
        raise ProjectError(
            f"{where}.entrypoint: importing {path} failed: {type(exc).__name__}: {exc}"
        ) from None
    if not hasattr(flow, "to_deployment") or not hasattr(flow, "fn"):
        raise ProjectError(f"{where}.entrypoint: {entrypoint} is not a flow (use @flow)")
    return flow.with_options()


def deploy_project(
    path: str | os.PathLike[str],
    names: Sequence[str] = (),
    *,
    settings: Settings | None = None,
    on_deployed: Callable[[DeployedProject], None] | None = None,
) -> list[DeployedProject]:
    """Register the file's deployments (all, or those in ``names``) as ``flow.deploy()`` does."""
    file = Path(path).resolve()
    label = Path(path).name
    project = load_project(file)
    if not project.deployments:
        raise ProjectError(f"{label}: deployments: the file declares no deployment")
    folder = file.parent
    default_steps = [{"set_working_directory": {"directory": str(folder)}}]
    done: list[DeployedProject] = []
    for d in _select(project, names, label):
        index = project.deployments.index(d)
        where = f"{label}: deployments[{index}]"
        flow = _load_flow(folder, d.entrypoint, where)
        steps = d.pull if d.pull is not None else project.pull
        flow._source = SourceInfo(pull_steps=list(steps or default_steps), entrypoint=d.entrypoint)
        try:
            deployment_id = deploy_flow(
                flow,
                d.name,
                work_pool_name=d.work_pool.name,
                work_queue_name=d.work_pool.work_queue_name,
                job_variables=d.work_pool.job_variables,
                print_next_steps=False,
                settings=settings,
                parameters=d.parameters,
                description=d.description,
                version=d.version,
                tags=d.tags,
                schedules=[s.as_schedule() for s in d.schedules],
                triggers=d.triggers,
                concurrency_limit=d.concurrency_limit,
                paused=d.paused,
            )
        except ValueError as exc:
            raise ProjectError(f"{where}: {exc}") from None
        item = DeployedProject(f"{flow.name}/{d.name}", deployment_id, d.work_pool.name)
        done.append(item)
        if on_deployed is not None:
            on_deployed(item)
    return done


def example_project_file() -> str:
    """The commented ``tideflow.yaml`` that ``tideflow init`` writes."""
    return _EXAMPLE


_EXAMPLE = """\
# tideflow.yaml: the deployments of this project. Register them with `tideflow deploy --all`
# (or `tideflow deploy NAME`). Entrypoints are relative to this file's folder.
#
# Placeholders: {{ $ENV_VAR }} is an environment variable of the machine running `tideflow deploy`;
# {{ tideflow.variables.name }} is a variable stored on the server (`tideflow variable set`).

# How a worker gets the code before each run. Without `pull:`, workers use this folder as it is
# on this machine (fine when they share its disk). Steps:
#   - git_clone: {repository: URL, branch: main, commit: SHA, subdirectory: path}
#   - set_working_directory: {directory: /path/on/the/worker}
#   - pull_from_remote_storage: {url: "s3://bucket/flows"}   # any fsspec URL (s3 needs s3fs)
#   - run_shell_script: {script: "pip install -r requirements.txt"}   # one command a line
# pull:
#   - git_clone:
#       repository: https://github.com/acme/flows.git
#       branch: main

deployments:
  - name: nightly
    entrypoint: flows.py:etl              # path/to/file.py:flow_function
    description: Nightly load
    tags: [etl]
    parameters: {}                        # default parameters of the runs
    # version: "1.0"
    # concurrency_limit: 1                # at most this many runs at once
    # paused: false
    schedules: []
    #   - cron: "0 2 * * *"
    #     timezone: Europe/Paris
    #   - interval: 3600                  # seconds
    #   - rrule: "FREQ=WEEKLY;BYDAY=MO"
    #     active: false
    # triggers:                           # run when events say so
    #   - type: event
    #     expect: ["orders.created"]
    work_pool:
      name: local                         # `tideflow work-pool create local --type process`
      # work_queue_name: default
      job_variables: {}
      #   env: {MODE: full}
"""
