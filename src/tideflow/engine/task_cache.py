"""A task run's cache and result persistence: its key, a stored result to reuse, storing its value.

Used by the task-run engine only for tasks that cache or persist (others pay nothing). The key comes
from the task's cache policy; the record lives in the task's result storage, by default
``TIDEFLOW_RESULTS_STORAGE`` or ``$TIDEFLOW_HOME/results``.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from dataclasses import dataclass
from typing import Any
from uuid import uuid4

from tideflow.cache_policies import CacheKeyError, KeyContext
from tideflow.engine.context import current_run
from tideflow.results import ResultRecord, ResultStore
from tideflow.settings import get_settings

__all__ = ["CachePlan", "plan_cache"]

logger = logging.getLogger("tideflow.flow_runs")


@dataclass
class CachePlan:
    """Where this run's result goes (``store``, ``key``) and whether a stored one may be reused."""

    task: Any
    store: ResultStore
    key: str | None
    expiration: dt.datetime | None
    keys: ResultStore | None = None  # cache records apart from results (policy.configure())
    refresh: bool = False  # recompute and overwrite instead of reading a stored result

    def lookup(self) -> ResultRecord | None:
        """A stored result to reuse: same key, not expired, and the task does not refresh."""
        if self.key is None or self.refresh:
            return None
        if self.keys is None:
            return self.store.read(self.key)
        pointer = self.keys.read(self.key)
        if pointer is None or not isinstance(pointer.value, dict):
            return None
        folder, _, name = str(pointer.value.get("location", "")).rpartition("/")
        record = ResultStore(folder or ".").read(name) if name else None
        if record is None:
            return None
        return ResultRecord(record.value, record.location, pointer.created, pointer.expiration)

    def persist(self, value: Any) -> ResultRecord:
        """Store the value (under the cache key, or a fresh one when the run has none)."""
        name = self.task.name
        if self.keys is None or self.key is None:
            key = self.key or uuid4().hex
            return self.store.write(key, value, task_name=name, expiration=self.expiration)
        record = self.store.write(uuid4().hex, value, task_name=name, expiration=self.expiration)
        location = record.location.replace(os.sep, "/")
        self.keys.write(
            self.key, {"location": location}, task_name=name, expiration=self.expiration
        )
        return record


def plan_cache(task: Any, parameters: dict[str, Any], task_run_id: Any = None) -> CachePlan | None:
    """The run's CachePlan, or None when the task neither caches nor persists its result."""
    if task.cache_policy is None or not task.persist_result:
        return None
    ctx = current_run()
    location = task.result_storage
    refresh = task.refresh_cache
    if location is None or refresh is None:
        settings = ctx.settings if ctx is not None else get_settings()
        if location is None:
            location = settings.results_storage or settings.home / "results"
        if refresh is None:
            refresh = settings.tasks_refresh_cache
    store = ResultStore(location, task.result_serializer)
    context = KeyContext(
        task=task,
        parameters=parameters,
        flow_run_id=ctx.flow_run.id if ctx is not None else None,
        flow_parameters=dict(ctx.parameters) if ctx is not None else {},
        task_run_id=task_run_id,
    )
    try:
        key = task.cache_policy.compute_key(context)
    except CacheKeyError as exc:
        logger.warning("Task %r runs without its cache: its cache key failed (%s)", task.name, exc)
        key = None
    expiration = None
    if task.cache_expiration is not None:
        expiration = dt.datetime.now(dt.UTC) + task.cache_expiration
    key_storage = task.cache_policy.key_storage
    keys = ResultStore(key_storage, "json") if key_storage else None
    return CachePlan(task, store, key, expiration, keys, bool(refresh))
