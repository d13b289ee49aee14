"""The kubernetes worker (``tideflow worker start --pool P --type kubernetes``): each flow run as a
Kubernetes Job, through the ``kubernetes`` package (``pip install 'tideflow[kubernetes]'``).

The cluster comes from the kubeconfig (``KUBECONFIG`` or ``~/.kube/config``, its current context),
else the in-cluster service account. The pool's job template gives the Job (``job_manifest``, pure):
namespace, image and pull policy, command (default: the in-container entry that pulls the code and
runs the flow, see ``_execute``), env, labels, service account, CPU and memory requests and limits,
``ttlSecondsAfterFinished`` (``finished_job_ttl``); ``backoffLimit`` is always 0 and the pod never
restarts, since a retry is the flow's business and a second pod would run the run twice. The
container's environment carries the run id and the worker's API URL and key as given: the worker's
API URL must be reachable from the cluster (set ``TIDEFLOW_API_URL`` in the job's ``env`` if not).

The worker polls each Job's status (every ``POLL_INTERVAL`` s): succeeded, or failed with the pod's
exit code and reason (``OOMKilled``, ``Error``, ``DeadlineExceeded``…). A pod that cannot start
(image pull back-off, invalid image, bad configuration) fails the run at once, naming the reason,
and its Job is deleted. Cancelling deletes the Job (its pods with it, after the cancel grace).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
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

__all__ = ["KubeJob", "KubernetesWorker", "job_manifest"]

LABEL_PREFIX = "tideflow.io/"
CONTAINER_NAME = "flow-run"
POLL_INTERVAL = 1.0
# Waiting reasons after which a pod will not start by itself.
FATAL_WAITING = {
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
}
_LABEL_VALUE = re.compile(r"[^A-Za-z0-9_.-]+")
_DELETED = -int(signal.SIGTERM)  # the exit reported for a Job that was deleted


@dataclass(frozen=True)
class KubeJob:
    """A run's Job: its name, namespace and manifest."""

    name: str
    namespace: str
    manifest: dict[str, Any]


def _label_value(value: str) -> str:
    return _LABEL_VALUE.sub("-", value)[:63].strip("-_.")


def _resources(job: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    resources: dict[str, dict[str, str]] = {}
    for kind, cpu, memory in (
        ("requests", "cpu_request", "memory_request"),
        ("limits", "cpu_limit", "memory_limit"),
    ):
        values = {k: str(job[v]) for k, v in (("cpu", cpu), ("memory", memory)) if job.get(v)}
        if values:
            resources[kind] = values
    return resources


def job_manifest(job: Mapping[str, Any], run: RunInfo) -> KubeJob:
    """The Job of ``run`` as the rendered ``job`` describes it; ValueError names a bad variable."""
    image = job.get("image")
    if not isinstance(image, str) or not image.strip():
        raise ValueError("job variable image is required (the image the flow run runs in)")
    namespace = str(job.get("namespace") or "default")
    name = job_name(job, run)
    labels = {k: _label_value(v) for k, v in job_labels(job, run, LABEL_PREFIX).items()}
    env = job_env(job, run)
    container: dict[str, Any] = {
        "name": CONTAINER_NAME,
        "image": image.strip(),
        "command": job_command(job),
        "env": [{"name": k, "value": v} for k, v in env.items()],
    }
    if job.get("image_pull_policy"):
        container["imagePullPolicy"] = job["image_pull_policy"]
    resources = _resources(job)
    if resources:
        container["resources"] = resources
    pod: dict[str, Any] = {"restartPolicy": "Never", "containers": [container]}
    if job.get("service_account_name"):
        pod["serviceAccountName"] = job["service_account_name"]
    spec: dict[str, Any] = {
        "backoffLimit": 0,
        "template": {"metadata": {"labels": labels}, "spec": pod},
    }
    ttl = job.get("finished_job_ttl")
    if ttl is not None:
        if not isinstance(ttl, int) or isinstance(ttl, bool) or ttl < 0:
            raise ValueError("job variable finished_job_ttl must be a whole number of seconds")
        spec["ttlSecondsAfterFinished"] = ttl
    manifest = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": labels,
            "annotations": {f"{LABEL_PREFIX}flow-run-name": run.name},
        },
        "spec": spec,
    }
    return KubeJob(name=name, namespace=namespace, manifest=manifest)


def _api_error(exc: Any) -> str:
    import json

    body = getattr(exc, "body", None)
    with contextlib.suppress(ValueError, TypeError):
        message = json.loads(body).get("message") if body else None
        if message:
            return str(message)
    return f"{getattr(exc, 'status', '')} {getattr(exc, 'reason', '') or exc}".strip()


class KubernetesJobs:
    """The worker's Jobs: creates them, polls them to their end, deletes them on cancel."""

    def __init__(self) -> None:
        self.jobs: JobTable[KubeJob] = JobTable()
        self.reasons: dict[UUID, str] = {}
        self._batch: Any = None
        self._core: Any = None
        self._api: Any = None
        self._on_exit: ExitCallback | None = None
        self._watches: set[asyncio.Task[None]] = set()
        self._cancelled: set[int] = set()

    async def connect(self) -> None:
        """Load the cluster's configuration; ValueError if there is none."""
        from kubernetes import client, config  # the extra: only a kubernetes worker needs it

        def load() -> Any:
            try:
                return config.new_client_from_config()  # type: ignore[no-untyped-call]
            except (config.ConfigException, OSError, TypeError) as first:
                try:
                    configuration = client.Configuration()
                    config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
                except config.ConfigException:
                    raise ValueError(
                        f"cannot load a Kubernetes configuration (kubeconfig: {first}; not "
                        "running in a cluster either)"
                    ) from None
                return client.ApiClient(configuration)

        self._api = await asyncio.to_thread(load)
        self._batch = client.BatchV1Api(self._api)
        self._core = client.CoreV1Api(self._api)

    async def open(
        self, on_exit: ExitCallback, on_lost: Callable[[str], None] | None = None
    ) -> None:
        self._on_exit = on_exit
        if self._api is None:
            await self.connect()

    async def start(self, index: int, run_id: UUID, run: FlowRun | None = None) -> int:
        raise RuntimeError("a kubernetes worker starts Jobs with start_job()")

    async def start_job(self, run_id: UUID, kube: KubeJob) -> int:
        from kubernetes.client.exceptions import ApiException

        try:
            await asyncio.to_thread(
                self._batch.create_namespaced_job, kube.namespace, kube.manifest
            )
        except ApiException as exc:
            raise ValueError(
                f"cannot create Job {kube.name} in namespace {kube.namespace}: {_api_error(exc)}"
            ) from None
        handle = self.jobs.add(run_id, kube)
        task = asyncio.create_task(self._watch(handle, run_id, kube))
        self._watches.add(task)
        task.add_done_callback(self._watches.discard)
        return handle

    async def _watch(self, handle: int, run_id: UUID, kube: KubeJob) -> None:
        code = await self._wait(handle, run_id, kube)
        self.jobs.pop(handle)
        self._cancelled.discard(handle)
        if self._on_exit is not None:
            self._on_exit(run_id, code)

    async def _wait(self, handle: int, run_id: UUID, kube: KubeJob) -> int:
        from kubernetes.client.exceptions import ApiException

        while True:
            await asyncio.sleep(POLL_INTERVAL)
            try:
                job = await asyncio.to_thread(
                    self._batch.read_namespaced_job_status, kube.name, kube.namespace
                )
            except ApiException as exc:
                if exc.status == 404:
                    if handle not in self._cancelled:
                        self.reasons[run_id] = f"Job {kube.name} was deleted"
                    return _DELETED
                continue  # the API server hiccuped: ask again
            except Exception:  # connection trouble: ask again next round
                continue
            status = job.status
            if status is not None and status.succeeded:
                return 0
            failed = bool(status is not None and status.failed) or any(
                c.type == "Failed" and c.status == "True"
                for c in ((status.conditions if status is not None else None) or [])
            )
            found = await self._pod_end(kube)
            if failed or found is not None:
                code, reason, stuck = found or (1, None, False)
                condition = next(
                    (c for c in (status.conditions or []) if c.type == "Failed"), None
                ) if status is not None else None  # fmt: skip
                why = reason or (condition.reason if condition is not None else None) or "failed"
                self.reasons[run_id] = f"Job {kube.name} failed: {why}"
                if stuck:  # the pod will never start: stop it
                    await asyncio.to_thread(self._delete, kube, 0)
                return code

    async def _pod_end(self, kube: KubeJob) -> tuple[int, str | None, bool] | None:
        """(exit code, reason, stuck) of the Job's pod when it failed or can never start (stuck);
        else None."""
        try:
            pods = await asyncio.to_thread(
                self._core.list_namespaced_pod,
                kube.namespace,
                label_selector=f"job-name={kube.name}",
            )
        except Exception:
            return None
        for pod in pods.items or []:
            for status in (pod.status.container_statuses if pod.status else None) or []:
                state = status.state
                if state is None:
                    continue
                if state.terminated is not None and state.terminated.exit_code:
                    reason = state.terminated.reason or "Error"
                    message = f": {state.terminated.message}" if state.terminated.message else ""
                    return int(state.terminated.exit_code), f"{reason}{message}", False
                if state.waiting is not None and state.waiting.reason in FATAL_WAITING:
                    detail = f" ({state.waiting.message})" if state.waiting.message else ""
                    return 1, f"{state.waiting.reason}{detail}", True
        return None

    def _delete(self, kube: KubeJob, grace: int) -> None:
        from kubernetes.client.exceptions import ApiException

        with contextlib.suppress(ApiException):
            self._batch.delete_namespaced_job(
                kube.name, kube.namespace, propagation_policy="Foreground",
                grace_period_seconds=grace,
            )  # fmt: skip

    def signal(self, handle: int, signum: int, grace: float) -> None:
        """Delete the Job: SIGTERM with the grace period, SIGKILL at once."""
        kube = self.jobs.get(handle)
        if kube is None:
            return
        self._cancelled.add(handle)
        seconds = max(1, round(grace)) if signum == signal.SIGTERM else 0
        task = asyncio.get_running_loop().create_task(
            asyncio.to_thread(self._delete, kube, seconds)
        )
        self._watches.add(task)
        task.add_done_callback(self._watches.discard)

    async def close(self) -> None:
        for task in list(self._watches):
            task.cancel()
        await asyncio.gather(*self._watches, return_exceptions=True)
        self.close_sync()

    def close_sync(self) -> None:
        if self._api is not None:
            with contextlib.suppress(Exception):
                self._api.close()
            self._api = None


class KubernetesWorker(PoolWorker):
    """A worker of one work pool of type ``kubernetes``."""

    worker_type = WorkPoolType.KUBERNETES

    def __init__(
        self,
        pool_name: str,
        *,
        settings: Settings,
        limit: int | None = None,
        name: str | None = None,
        create_pool: bool = False,
    ) -> None:
        self.kube = KubernetesJobs()
        super().__init__(
            pool_name, self.kube, settings=settings, limit=limit, name=name,
            create_pool=create_pool,
        )  # fmt: skip

    async def register(self) -> None:
        await self.kube.connect()  # a worker without a cluster says so at once
        await super().register()

    async def launch(self, run: FlowRun, claimed: FlowRun) -> int:
        deployment, job = await self.read_job(run, claimed)
        info = RunInfo(
            id=run.id, name=run.name, deployment_id=run.deployment_id,
            flow_name=deployment.flow_name, pool=self.pool_name,
            api_url=self.settings.resolved_api_url, api_key=self.settings.api_key,
        )  # fmt: skip
        return await self.kube.start_job(run.id, job_manifest(job, info))

    def signal_job(self, pid: int, signum: int) -> None:
        self.kube.signal(pid, signum, self.settings.runner_cancel_grace)

    def describe_exit(self, run_id: UUID, code: int) -> str:
        reason = self.kube.reasons.pop(run_id, None)
        if reason is not None:
            return f"{reason} (exit code {code}) before the flow run reported a final state"
        return f"Flow run Job exited with code {code} before reporting a final state"
