"""What the docker and kubernetes workers share: the environment and command of a run's container,
its name and labels, and the table of the jobs a worker started.

A run's container learns its run from ``TIDEFLOW_FLOW_RUN_ID`` and reaches the API with
``TIDEFLOW_API_URL`` / ``TIDEFLOW_API_KEY`` (the worker's, unless the job's ``env`` sets them); its
default command, ``python -m tideflow.deployments._execute``, pulls the deployment's code inside
the container and runs the flow (so the image needs tideflow and git when the code is in git).
The runner core knows a run's job by an int (a pid for the process worker); ``JobTable`` hands out
such ints for containers and jobs.
"""

from __future__ import annotations

import itertools
import re
import shlex
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from uuid import UUID

from tideflow.deployments._execute import RUN_ID_ENV

__all__ = [
    "DEFAULT_COMMAND",
    "JobTable",
    "RunInfo",
    "job_command",
    "job_env",
    "job_labels",
    "job_name",
]

DEFAULT_COMMAND = ["python", "-m", "tideflow.deployments._execute"]
_NAME_CHARS = re.compile(r"[^a-z0-9-]+")

T = TypeVar("T")


@dataclass(frozen=True)
class RunInfo:
    """What a worker knows of the run whose job it builds."""

    id: UUID
    name: str
    deployment_id: UUID | None
    flow_name: str | None
    pool: str
    api_url: str
    api_key: str | None


def job_env(job: Mapping[str, Any], run: RunInfo, api_url: str | None = None) -> dict[str, str]:
    """The container's environment: the API address and key < the job's ``env`` < the run id."""
    env: dict[str, str] = {"TIDEFLOW_API_URL": api_url or run.api_url}
    if run.api_key:
        env["TIDEFLOW_API_KEY"] = run.api_key
    extra = job.get("env") or {}
    if not isinstance(extra, Mapping):
        raise ValueError("job variable env must be an object of strings")
    env.update({str(k): str(v) for k, v in extra.items() if v is not None})
    env[RUN_ID_ENV] = str(run.id)
    return env


def job_command(job: Mapping[str, Any]) -> list[str]:
    """The job's ``command`` split as a shell would, else tideflow's in-container entry."""
    command = job.get("command")
    if isinstance(command, str) and command.strip():
        return shlex.split(command)
    if isinstance(command, list) and command:
        return [str(part) for part in command]
    return list(DEFAULT_COMMAND)


def job_name(job: Mapping[str, Any], run: RunInfo, max_length: int = 63) -> str:
    """A DNS-label-safe, unique name: the job's ``name`` (else the run's) and the run id's start."""
    base = str(job.get("name") or run.name or "flow-run").lower()
    slug = _NAME_CHARS.sub("-", base).strip("-") or "flow-run"
    suffix = run.id.hex[:8]
    return f"{slug[: max_length - len(suffix) - 1].rstrip('-')}-{suffix}"


def job_labels(job: Mapping[str, Any], run: RunInfo, prefix: str) -> dict[str, str]:
    """The job's ``labels`` and tideflow's own (``<prefix>flow-run-id`` …), which win."""
    labels = {str(k): str(v) for k, v in (job.get("labels") or {}).items()}
    labels[f"{prefix}flow-run-id"] = str(run.id)
    labels[f"{prefix}work-pool"] = run.pool
    if run.deployment_id is not None:
        labels[f"{prefix}deployment-id"] = str(run.deployment_id)
    return labels


class JobTable(Generic[T]):
    """Jobs a worker started, by the int the runner core knows them by (thread-safe)."""

    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self._jobs: dict[int, tuple[UUID, T]] = {}
        self._lock = threading.Lock()

    def add(self, run_id: UUID, job: T) -> int:
        with self._lock:
            handle = next(self._ids)
            self._jobs[handle] = (run_id, job)
            return handle

    def get(self, handle: int) -> T | None:
        with self._lock:
            found = self._jobs.get(handle)
            return None if found is None else found[1]

    def pop(self, handle: int) -> T | None:
        with self._lock:
            found = self._jobs.pop(handle, None)
            return None if found is None else found[1]

    def items(self) -> list[tuple[int, UUID, T]]:
        with self._lock:
            return [(h, run_id, job) for h, (run_id, job) in self._jobs.items()]
