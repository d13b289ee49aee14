"""``DaskTaskRunner``: task runs on a Dask cluster (extra ``tideflow[dask]``).

With ``address`` it connects to a running scheduler (and leaves the cluster alone at the end);
without, it starts a ``LocalCluster`` of worker processes for the flow call and closes it after.
Each task run travels to a worker as a cloudpickled payload and runs there with the flow run's
context (its logs reach the flow run's logs); upstream futures are resolved in the flow's process.
"""

from __future__ import annotations

import threading
from typing import Any

from tideflow.engine.task_runs import TaskRun
from tideflow.futures import TaskFuture
from tideflow.task_runners._base import TaskRunner
from tideflow.task_runners._remote import RemoteDispatch, run_payload

__all__ = ["DaskTaskRunner"]

_MISSING = (
    "DaskTaskRunner needs dask.distributed: install the extra with `pip install 'tideflow[dask]'`"
)


class DaskTaskRunner(TaskRunner):
    """Run task runs on Dask: ``DaskTaskRunner(address="tcp://scheduler:8786")`` or a local cluster
    built from ``cluster_kwargs`` (e.g. ``{"n_workers": 4}``); ``client_kwargs`` go to the Client.
    ``max_in_flight`` bounds the task runs dispatched at once (default 64)."""

    def __init__(
        self,
        address: str | None = None,
        cluster_kwargs: dict[str, Any] | None = None,
        client_kwargs: dict[str, Any] | None = None,
        max_in_flight: int = 64,
    ) -> None:
        if address is not None and cluster_kwargs:
            raise ValueError("DaskTaskRunner takes address or cluster_kwargs, not both")
        if (
            isinstance(max_in_flight, bool)
            or not isinstance(max_in_flight, int)
            or max_in_flight < 1
        ):
            raise ValueError(f"max_in_flight must be an integer ≥ 1, got {max_in_flight!r}")
        self.address = address
        self.cluster_kwargs = dict(cluster_kwargs or {})
        self.client_kwargs = dict(client_kwargs or {})
        self.max_in_flight = max_in_flight
        self._client: Any = None
        self._cluster: Any = None
        self._dispatch: RemoteDispatch | None = None
        self._lock = threading.Lock()

    def duplicate(self) -> DaskTaskRunner:
        return DaskTaskRunner(
            self.address,
            self.cluster_kwargs or None,
            self.client_kwargs or None,
            self.max_in_flight,
        )

    def __reduce__(self) -> tuple[Any, ...]:  # options only: a flow (and its runner) may be pickled
        return (
            DaskTaskRunner,
            (
                self.address,
                self.cluster_kwargs or None,
                self.client_kwargs or None,
                self.max_in_flight,
            ),
        )

    def _started(self) -> RemoteDispatch:
        with self._lock:
            if self._dispatch is None:
                try:
                    from distributed import Client, LocalCluster  # lazy: the optional extra
                except ImportError:
                    raise ImportError(_MISSING) from None
                if self.address is None:
                    options = {"processes": True, "dashboard_address": ":0", **self.cluster_kwargs}
                    self._cluster = LocalCluster(**options)
                    self._client = Client(self._cluster, **self.client_kwargs)
                else:
                    self._client = Client(self.address, **self.client_kwargs)
                client = self._client
                self._dispatch = RemoteDispatch(
                    self.max_in_flight,
                    lambda payload: client.submit(run_payload, payload, pure=False).result(),
                )
            return self._dispatch

    @property
    def client(self) -> Any:
        """The ``distributed.Client`` while the runner is started (None before and after)."""
        return self._client

    def submit(
        self, task: Any, run: TaskRun, args: tuple[Any, ...], kwargs: dict[str, Any], bound: Any,
        wait_for: Any = (),
    ) -> TaskFuture[Any]:  # fmt: skip
        return self._started().submit(task, run, args, kwargs, bound, wait_for)

    def shutdown(self, wait: bool = True) -> None:
        with self._lock:
            dispatch, self._dispatch = self._dispatch, None
            client, self._client = self._client, None
            cluster, self._cluster = self._cluster, None
        if dispatch is not None:
            dispatch.shutdown(wait)
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()

    def __repr__(self) -> str:
        where = self.address or f"LocalCluster({self.cluster_kwargs})"
        return f"DaskTaskRunner({where})"
