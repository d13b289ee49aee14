"""The docker worker (``tideflow worker start --pool P --type docker``): each flow run in its own
container, through the Docker Engine API (the ``docker`` package: ``pip install 'tideflow[docker]'``).

The pool's job template gives the container (``container_spec``, pure): image (pulled per
``image_pull_policy``: ``Always``; ``Never``; ``IfNotPresent``, the default), command (default: the
in-container entry that pulls the code and runs the flow, see ``_execute``), env, labels, volumes
(``"host:container[:mode]"``), networks (the first at create, the others connected before start),
``mem_limit`` and ``cpus``. The container's environment carries the run id and the worker's API URL
and key; a loopback API URL (``127.0.0.1``, ``localhost``) is rewritten to ``host.docker.internal``,
mapped to the host's gateway, so the container reaches a server on the worker's machine.

A thread per container waits for its exit (and copies its output to the worker's when
``stream_output``); an exit without a final state is reported Crashed with the exit code (and
``OOMKilled`` when Docker says so). Cancelling stops the container (SIGTERM, then Docker's SIGKILL
after the cancel grace). With ``auto_remove`` the worker removes the container once its exit code
is read (never before: Docker's own auto-remove can lose it); a container created but not started
is always removed. A worker that dies leaves its containers running; the server marks their runs
Crashed after the disconnect grace, and they cannot report a final state after that.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit
from uuid import UUID

from tideflow.deployments._launchers import ExitCallback
from tideflow.deployments._remote import (
    JobTable,
    RunInfo,
    job_command,
    job_env,
    job_labels,
    job_name,
)
from tideflow.deployments._worker import PoolWorker
from tideflow.schemas import FlowRun
from tideflow.schemas.work_pools import WorkPoolType
from tideflow.settings import Settings

__all__ = ["DockerJob", "DockerWorker", "container_api_url", "container_spec"]

LABEL_PREFIX = "io.tideflow."
_LOOPBACK = {"localhost", "127.0.0.1", "0.0.0.0", "::1"}
_HOST_ALIAS = "host.docker.internal"
_PULL_POLICIES = ("IfNotPresent", "Always", "Never")
_WAIT_SLICE = 30.0  # seconds per wait request, so a closing worker's threads notice it
_LOST_CODE = 255  # the exit code reported when the container's end could not be read


def container_api_url(url: str) -> str | None:
    """``url`` with a loopback host replaced by ``host.docker.internal``; None if not loopback."""
    parts = urlsplit(url)
    if parts.hostname not in _LOOPBACK:
        return None
    netloc = _HOST_ALIAS + (f":{parts.port}" if parts.port else "")
    if parts.username:
        netloc = f"{parts.username}{':' + parts.password if parts.password else ''}@{netloc}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


@dataclass
class DockerJob:
    """A run's container: ``create`` are ``containers.create`` arguments; the rest is how the
    worker pulls, connects, watches and cleans it up."""

    create: dict[str, Any]
    pull_policy: str = "IfNotPresent"
    extra_networks: list[str] = field(default_factory=list)
    auto_remove: bool = False
    stream_output: bool = True


def _strings(value: Any, what: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ValueError(f"job variable {what} must be a list of non-empty strings")
    return list(value)


def container_spec(job: Mapping[str, Any], run: RunInfo) -> DockerJob:
    """The container of ``run`` as the rendered ``job`` describes it; ValueError names a bad
    variable."""
    image = job.get("image")
    if not isinstance(image, str) or not image.strip():
        raise ValueError("job variable image is required (the image the flow run runs in)")
    policy = job.get("image_pull_policy") or "IfNotPresent"
    if policy not in _PULL_POLICIES:
        raise ValueError(
            f"job variable image_pull_policy must be one of {', '.join(_PULL_POLICIES)}"
        )
    networks = _strings(job.get("networks"), "networks")
    volumes = _strings(job.get("volumes"), "volumes")
    for volume in volumes:
        if ":" not in volume:
            raise ValueError(
                f"volume {volume!r} must be 'host_path_or_volume:container_path[:mode]'"
            )
    env_api = (
        (job.get("env") or {}).get("TIDEFLOW_API_URL")
        if isinstance(job.get("env"), Mapping)
        else None
    )
    rewritten = None if env_api else container_api_url(run.api_url)
    create: dict[str, Any] = {
        "image": image.strip(),
        "command": job_command(job),
        "name": job_name(job, run),
        "environment": job_env(job, run, rewritten),
        "labels": job_labels(job, run, LABEL_PREFIX),
        "detach": True,
    }
    if volumes:
        create["volumes"] = volumes
    if networks:
        create["network"] = networks[0]
    if rewritten is not None:
        create["extra_hosts"] = {_HOST_ALIAS: "host-gateway"}
    if job.get("mem_limit"):
        create["mem_limit"] = job["mem_limit"]
    cpus = job.get("cpus")
    if cpus is not None:
        if not isinstance(cpus, int | float) or isinstance(cpus, bool) or cpus <= 0:
            raise ValueError("job variable cpus must be a positive number")
        create["nano_cpus"] = int(cpus * 1_000_000_000)
    return DockerJob(
        create=create,
        pull_policy=policy,
        extra_networks=networks[1:],
        auto_remove=job.get("auto_remove") is True,
        stream_output=job.get("stream_output") is not False,
    )


class DockerJobs:
    """The worker's containers: starts them, waits for their exits, stops and removes them."""

    def __init__(self) -> None:
        self.jobs: JobTable[Any] = JobTable()
        self.reasons: dict[UUID, str] = {}
        self._client: Any = None
        self._on_exit: ExitCallback | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing = threading.Event()

    async def open(
        self, on_exit: ExitCallback, on_lost: Callable[[str], None] | None = None
    ) -> None:
        self._on_exit = on_exit
        self._loop = asyncio.get_running_loop()
        if self._client is None:
            await self.connect()

    async def connect(self) -> None:
        """Reach the Docker daemon (``DOCKER_HOST`` or the default socket); ValueError if not."""
        import docker  # the extra: only a docker worker needs it

        try:
            self._client = await asyncio.to_thread(docker.from_env)
        except docker.errors.DockerException as exc:
            raise ValueError(f"cannot reach the Docker daemon: {exc}") from None

    async def start(self, index: int, run_id: UUID, run: FlowRun | None = None) -> int:
        raise RuntimeError("a docker worker starts containers with start_container()")

    async def start_container(self, run_id: UUID, spec: DockerJob) -> int:
        """Create and start the run's container; the handle the runner knows it by."""
        container = await asyncio.to_thread(self._create_and_start, spec)
        handle = self.jobs.add(run_id, container)
        threading.Thread(
            target=self._watch, args=(handle, run_id, container, spec), daemon=True,
            name=f"docker-wait-{container.name}",
        ).start()  # fmt: skip
        return handle

    def _create_and_start(self, spec: DockerJob) -> Any:
        import docker
        from docker.utils import parse_repository_tag

        client = self._client
        image = spec.create["image"]
        try:
            if spec.pull_policy == "Always":
                repository, tag = parse_repository_tag(image)
                client.images.pull(repository, tag=tag or "latest")
            elif spec.pull_policy == "IfNotPresent":
                try:
                    client.images.get(image)
                except docker.errors.ImageNotFound:
                    repository, tag = parse_repository_tag(image)
                    client.images.pull(repository, tag=tag or "latest")
            container = client.containers.create(**spec.create)
        except docker.errors.DockerException as exc:
            raise ValueError(
                f"cannot create the container from image {image!r}: {_why(exc)}"
            ) from None
        try:
            for network in spec.extra_networks:
                client.networks.get(network).connect(container)
            container.start()
        except docker.errors.DockerException as exc:
            with contextlib.suppress(docker.errors.DockerException):
                container.remove(force=True)
            raise ValueError(f"cannot start container {container.name}: {_why(exc)}") from None
        return container

    def _watch(self, handle: int, run_id: UUID, container: Any, spec: DockerJob) -> None:
        """In a thread: wait for the container's exit, report it, clean up."""
        import docker
        import requests

        if spec.stream_output:
            threading.Thread(target=_copy_logs, args=(container,), daemon=True).start()
        code: int | None = None
        while code is None and not self._closing.is_set():
            try:
                code = int(container.wait(timeout=_WAIT_SLICE)["StatusCode"])
            except requests.exceptions.ReadTimeout:
                continue
            except (docker.errors.DockerException, requests.exceptions.RequestException) as exc:
                self.reasons[run_id] = f"lost track of container {container.name}: {_why(exc)}"
                code = _LOST_CODE
        if code is None:
            return
        with contextlib.suppress(
            docker.errors.DockerException, requests.exceptions.RequestException
        ):
            container.reload()
            if container.attrs.get("State", {}).get("OOMKilled"):
                self.reasons.setdefault(run_id, f"container {container.name} was OOMKilled")
        if spec.auto_remove:
            with contextlib.suppress(
                docker.errors.DockerException, requests.exceptions.RequestException
            ):
                container.remove(force=True)
        self.jobs.pop(handle)
        loop, on_exit = self._loop, self._on_exit
        if loop is not None and on_exit is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(on_exit, run_id, code)

    def signal(self, handle: int, signum: int, grace: float) -> None:
        """SIGTERM: stop the container (Docker kills it after ``grace``); else kill it now."""
        container = self.jobs.get(handle)
        if container is not None:
            threading.Thread(target=_stop, args=(container, signum, grace), daemon=True).start()

    async def close(self) -> None:
        self.close_sync()

    def close_sync(self) -> None:
        self._closing.set()
        if self._client is not None:
            with contextlib.suppress(Exception):
                self._client.close()


def _stop(container: Any, signum: int, grace: float) -> None:
    import docker
    import requests

    with contextlib.suppress(docker.errors.DockerException, requests.exceptions.RequestException):
        if signum == signal.SIGTERM:
            container.stop(timeout=max(1, round(grace)))
        else:
            container.kill()


def _copy_logs(container: Any) -> None:
    """In a thread: the container's output onto the worker's stdout as it comes."""
    with contextlib.suppress(Exception):  # the stream ends with the container, or breaks
        for chunk in container.logs(stream=True, follow=True):
            sys.stdout.buffer.write(chunk)
            sys.stdout.buffer.flush()


def _why(exc: BaseException) -> str:
    explanation = getattr(exc, "explanation", None)
    return (
        str(explanation or exc).strip().splitlines()[0]
        if str(explanation or exc).strip()
        else type(exc).__name__
    )


class DockerWorker(PoolWorker):
    """A worker of one work pool of type ``docker``."""

    worker_type = WorkPoolType.DOCKER

    def __init__(
        self,
        pool_name: str,
        *,
        settings: Settings,
        limit: int | None = None,
        name: str | None = None,
        create_pool: bool = False,
    ) -> None:
        self.containers = DockerJobs()
        super().__init__(
            pool_name, self.containers, settings=settings, limit=limit, name=name,
            create_pool=create_pool,
        )  # fmt: skip

    async def register(self) -> None:
        await self.containers.connect()  # a worker that cannot reach Docker says so at once
        await super().register()

    async def launch(self, run: FlowRun, claimed: FlowRun) -> int:
        deployment, job = await self.read_job(run, claimed)
        info = RunInfo(
            id=run.id, name=run.name, deployment_id=run.deployment_id,
            flow_name=deployment.flow_name, pool=self.pool_name,
            api_url=self.settings.resolved_api_url, api_key=self.settings.api_key,
        )  # fmt: skip
        return await self.containers.start_container(run.id, container_spec(job, info))

    def signal_job(self, pid: int, signum: int) -> None:
        self.containers.signal(pid, signum, self.settings.runner_cancel_grace)

    def describe_exit(self, run_id: UUID, code: int) -> str:
        reason = self.containers.reasons.pop(run_id, None)
        if reason is not None:
            return f"Flow run container ended without a final state: {reason} (exit code {code})"
        return f"Flow run container exited with code {code} before reporting a final state"
