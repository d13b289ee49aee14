"""``Flow.from_source`` and ``Flow.deploy``: deployments whose code a worker pulls before each run.

``from_source(source, entrypoint)`` loads the flow from a local folder, a git repository (a URL, a
bare repository path, or a ``GitRepository`` with a branch, commit or subdirectory) or a folder at
any fsspec URL (``file://``, ``memory://``, ``s3://`` with s3fs…), and remembers
where it came from. ``deploy(...)`` registers a deployment in a work pool with the pull steps that
get that code on a worker (``set_working_directory`` for a folder, ``git_clone`` for git,
``pull_from_remote_storage`` for an fsspec URL) and the
entrypoint relative to it. A flow defined in a local file deploys with that file's folder as its
source. Job variables are checked by the server against the pool's template (an error names the bad
variable).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any
from uuid import UUID

from tideflow.client import SyncClient
from tideflow.deployments._child import load_entrypoint
from tideflow.deployments._deployment import build_deployment
from tideflow.deployments._pull import PullError, run_pull_steps
from tideflow.exceptions import ServerError
from tideflow.settings import Settings, get_settings

__all__ = ["GitRepository", "SourceInfo", "deploy_flow", "load_from_source"]

_GIT_SCHEMES = ("https://", "http://", "ssh://", "git://", "file://", "git@")


@dataclass(frozen=True)
class GitRepository:
    """A git repository as a flow's source: ``url`` (or a local path), and which ``branch`` or
    ``commit`` (default: the default branch's head), optionally a ``subdirectory`` of it."""

    url: str
    branch: str | None = None
    commit: str | None = None
    subdirectory: str | None = None


@dataclass(frozen=True)
class SourceInfo:
    """Where a flow's code comes from: the pull steps and the entrypoint relative to them."""

    pull_steps: list[dict[str, Any]] = field(default_factory=list)
    entrypoint: str = ""


def _is_repository(path: Path) -> bool:
    bare = (path / "HEAD").is_file() and (path / "objects").is_dir()
    return bare or (path / ".git").exists()


def _is_git(source: str) -> bool:
    if source.startswith("file://"):  # a local repository, else a folder through fsspec
        return source.endswith(".git") or _is_repository(Path(source.removeprefix("file://")))
    if source.startswith(_GIT_SCHEMES) or source.endswith(".git"):
        return True
    path = Path(source)
    return (path / "HEAD").is_file() and (path / "objects").is_dir()  # a bare repository


def _is_storage_url(source: str) -> bool:
    """Any other ``protocol://`` URL: a folder in an fsspec filesystem."""
    scheme, sep, _ = source.partition("://")
    return bool(sep) and scheme.replace("+", "").replace("-", "").isalnum()


def _steps(source: str | os.PathLike[str] | GitRepository) -> list[dict[str, Any]]:
    if isinstance(source, GitRepository):
        args = {"repository": source.url, "branch": source.branch, "commit": source.commit,
                "subdirectory": source.subdirectory}  # fmt: skip
        return [{"git_clone": {k: v for k, v in args.items() if v}}]
    text = os.fspath(source)
    if _is_git(text):
        return [{"git_clone": {"repository": text}}]
    if _is_storage_url(text):
        return [{"pull_from_remote_storage": {"url": text}}]
    folder = Path(text).expanduser().resolve()
    if not folder.is_dir():
        raise ValueError(f"source {text!r} is neither a folder nor a git repository")
    return [{"set_working_directory": {"directory": str(folder)}}]


def _check_entrypoint(entrypoint: str) -> None:
    path, sep, name = entrypoint.rpartition(":")
    if not sep or not path or not name:
        raise ValueError(f"entrypoint {entrypoint!r} must be 'path/to/file.py:flow_function'")
    if PurePosixPath(path).is_absolute() or ".." in PurePosixPath(path).parts:
        raise ValueError(f"entrypoint {entrypoint!r} must be a path inside the source")


def load_from_source(
    source: str | os.PathLike[str] | GitRepository,
    entrypoint: str,
    settings: Settings | None = None,
) -> Any:
    """The flow at ``entrypoint`` in ``source`` (fetched for git), remembering its source."""
    _check_entrypoint(entrypoint)
    steps = _steps(source)
    home = (settings or get_settings()).home
    try:
        folder = run_pull_steps(steps, home)
    except PullError as exc:
        raise ValueError(f"cannot get the source: {exc}") from None
    assert folder is not None
    path, _, name = entrypoint.rpartition(":")
    flow = load_entrypoint(f"{folder / path}:{name}")
    if not hasattr(flow, "to_deployment") or not hasattr(flow, "fn"):
        raise ValueError(f"{entrypoint} is not a flow (decorate the function with @flow)")
    flow = flow.with_options()
    flow._source = SourceInfo(pull_steps=steps, entrypoint=entrypoint)
    return flow


def _local_source(flow: Any) -> SourceInfo:
    """A flow defined in a file: that file's folder as the source."""
    deployment = build_deployment(flow, "source")
    where = deployment.create.entrypoint
    if not where:
        raise ValueError(
            f"flow {flow.name!r} is not defined in a file a worker can load: use "
            "flow.from_source(folder_or_repository, entrypoint='file.py:function').deploy(...)"
        )
    path, _, name = where.rpartition(":")
    file = Path(path)
    return SourceInfo(
        pull_steps=[{"set_working_directory": {"directory": str(file.parent)}}],
        entrypoint=f"{file.name}:{name}",
    )


def deploy_flow(
    flow: Any,
    name: str,
    *,
    work_pool_name: str,
    work_queue_name: str | None = None,
    job_variables: dict[str, Any] | None = None,
    print_next_steps: bool = True,
    settings: Settings | None = None,
    **options: Any,
) -> UUID:
    """Register (create or update) the deployment ``name`` of ``flow`` in ``work_pool_name``; its
    id. ``options`` are ``to_deployment``'s (parameters, cron, interval, schedules, tags, triggers,
    concurrency_limit, description, version, paused...). ValueError names a problem."""
    if not isinstance(work_pool_name, str) or not work_pool_name:
        raise ValueError("deploy() needs work_pool_name: the work pool whose workers run it")
    source = getattr(flow, "_source", None) or _local_source(flow)
    built = build_deployment(flow, name, job_variables=job_variables, **options)
    body = built.create.model_copy(
        update={
            "entrypoint": source.entrypoint,
            "pull_steps": source.pull_steps,
            "work_pool_name": work_pool_name,
            "work_queue_name": work_queue_name,
        }
    )
    with SyncClient(settings=settings or get_settings()) as client:
        try:
            deployment = client.create_deployment(body)
        except ServerError as exc:
            if exc.status_code == 422:
                raise ValueError(f"deployment {name!r}: {exc.detail}") from None
            raise
    if print_next_steps:
        print(
            f"Deployment '{deployment.full_name}' is in work pool {work_pool_name!r}. Start a "
            f"worker with: tideflow worker start --pool '{work_pool_name}'; run it with: "
            f"tideflow deployment run '{deployment.full_name}'",
            flush=True,
        )
    return deployment.id
