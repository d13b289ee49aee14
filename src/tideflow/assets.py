"""Assets from Python: ``@materialize`` a task that writes data assets named by URI keys.

``@materialize("s3://bucket/raw.csv", Asset(key=..., properties=...), asset_deps=[...], retries=2)``
makes a task (retries, caching, hooks, ``.submit()`` all work) whose final state is reported per
asset as a ``tideflow.asset.materialization.succeeded`` / ``.failed`` event; the server keeps a
catalogue of assets and their lineage from those events. Upstream assets are the ``asset_deps`` plus,
inside a flow run, the assets of every materializing task whose result (or future) is passed to
this one. ``add_asset_metadata`` attaches metadata to the current materialization. A cached run
(its result read back, nothing written) reports no materialization. Names follow Prefect's
``prefect.assets``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, ParamSpec, TypeVar
from uuid import NAMESPACE_URL, UUID, uuid5

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tideflow.client._events import event_worker
from tideflow.engine.context import FlowRunContext, current_run, current_task_run
from tideflow.engine.logging import RUN_LOGGER_NAME
from tideflow.schemas.assets import (
    ASSET_RESOURCE_ROLE,
    MATERIALIZATION_FAILED,
    MATERIALIZATION_SUCCEEDED,
    AssetProperties,
    check_asset_key,
)
from tideflow.schemas.events import (
    MAX_RELATED,
    RESOURCE_ID,
    RESOURCE_NAME,
    RESOURCE_ROLE,
    Event,
    event_limits_problem,
)
from tideflow.tasks import _OPTIONS, Task

__all__ = [
    "Asset",
    "AssetProperties",
    "MaterializingTask",
    "add_asset_metadata",
    "materialize",
]

P = ParamSpec("P")
R = TypeVar("R")

logger = logging.getLogger(RUN_LOGGER_NAME)
MAX_METADATA_BYTES = 256_000
"""The largest metadata of one materialization, as compact JSON."""
_MAX_UPSTREAM = 200  # upstream keys carried in one event's payload
_SCAN_DEPTH = 4  # how deep argument containers are searched for materialized results
_SCAN_ITEMS = 10_000  # how many argument items are looked at, at most
_DESCRIPTION_LABEL = "tideflow.asset.description"


class Asset(BaseModel):
    """A data asset: its URI ``key`` and, optionally, properties people read in the catalogue."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    key: str = Field(description="A URI: scheme://path, e.g. 's3://bucket/raw.csv'.")
    properties: AssetProperties | None = None

    @field_validator("key")
    @classmethod
    def _check_key(cls, key: str) -> str:
        return check_asset_key(key)

    def add_metadata(self, metadata: Mapping[str, Any]) -> None:
        """``add_asset_metadata(self, metadata)``."""
        add_asset_metadata(self, metadata)


def _asset(value: Any, where: str) -> Asset:
    if isinstance(value, Asset):
        return value
    if isinstance(value, str):
        return Asset(key=check_asset_key(value))  # the reason alone, not pydantic's wrapping
    raise TypeError(f"{where}: an asset is an Asset or a URI string, got {type(value).__name__}")


class _AssetHook:
    """The hook a materializing task adds for its final states (kept apart from the user's)."""

    def __init__(self, succeeded: bool) -> None:
        self.succeeded = succeeded

    def __call__(self, task: MaterializingTask[Any, Any], run: Any, state: Any) -> None:
        if self.succeeded and state.name == "Cached":
            return  # read back from the cache: nothing was written
        _report(task, run, state, succeeded=self.succeeded)


def _user_hooks(hooks: Iterable[Any]) -> list[Any]:
    return [h for h in hooks if not isinstance(h, _AssetHook)]


class MaterializingTask(Task[P, R]):
    """A task that materializes ``assets``; every task option works as with ``@task``."""

    def __init__(
        self,
        fn: Callable[P, R],
        *,
        assets: Sequence[Asset],
        asset_deps: Sequence[Asset] = (),
        **options: Any,
    ) -> None:
        super().__init__(fn, **options)
        keys = [a.key for a in assets]
        if not keys:
            raise ValueError(f"@materialize on {self.name!r} needs at least one asset")
        twice = sorted({k for k in keys if keys.count(k) > 1})
        if twice:
            raise ValueError(f"@materialize on {self.name!r} names {twice[0]!r} twice")
        self.assets: tuple[Asset, ...] = tuple(assets)
        self.asset_deps: tuple[Asset, ...] = tuple(a for a in asset_deps if a.key not in keys)
        self.on_completion_hooks.insert(0, _AssetHook(True))
        self.on_failure_hooks.insert(0, _AssetHook(False))

    def _with_options(self, options: dict[str, Any]) -> Task[P, R]:
        for kind in ("on_completion", "on_failure", "on_running"):
            options[kind] = _user_hooks(options.get(kind) or [])
        return MaterializingTask(self.fn, assets=self.assets, asset_deps=self.asset_deps, **options)

    def __repr__(self) -> str:
        keys = ", ".join(a.key for a in self.assets)
        return f"MaterializingTask(name={self.name!r}, assets=[{keys}])"


def materialize(
    *assets: str | Asset,
    asset_deps: Sequence[str | Asset] | None = None,
    **task_options: Any,
) -> Callable[[Callable[P, R]], MaterializingTask[P, R]]:
    """Make a function a task that materializes ``assets`` (URI keys or ``Asset`` objects).

    ``asset_deps``: upstream assets made elsewhere (another system, another deployment). The other
    keyword arguments are ``@task``'s options (``retries``, ``cache_policy``, ``name``…).
    """
    if not assets:
        raise ValueError("@materialize needs at least one asset key, e.g. 's3://bucket/raw.csv'")
    if len(assets) == 1 and callable(assets[0]) and not isinstance(assets[0], str | Asset):
        raise TypeError("@materialize needs its assets: write @materialize('s3://bucket/key')")
    unknown = sorted(set(task_options) - set(_OPTIONS))
    if unknown:
        raise TypeError(
            f"@materialize got unknown option(s) {', '.join(unknown)}; "
            f"known: asset_deps, {', '.join(_OPTIONS)}"
        )
    made = [_asset(a, "@materialize") for a in assets]
    if isinstance(asset_deps, str | Asset):
        asset_deps = [asset_deps]
    deps = [_asset(a, "asset_deps") for a in asset_deps or ()]

    def decorator(fn: Callable[P, R]) -> MaterializingTask[P, R]:
        return MaterializingTask(fn, assets=made, asset_deps=deps, **task_options)

    return decorator


def add_asset_metadata(asset: str | Asset, metadata: Mapping[str, Any]) -> None:
    """Attach ``metadata`` (JSON values) to this run's materialization of ``asset``.

    Called inside a ``@materialize`` function while it runs; later keys replace earlier ones.
    """
    task_ctx = current_task_run()
    task = task_ctx.task if task_ctx is not None else None
    if not isinstance(task, MaterializingTask):
        raise RuntimeError(
            "add_asset_metadata() works inside a @materialize function while it runs"
        )
    key = _asset(asset, "add_asset_metadata").key
    if key not in {a.key for a in task.assets}:
        made = ", ".join(a.key for a in task.assets)
        raise ValueError(f"{key!r} is not materialized by {task.name!r} (it materializes {made})")
    if not isinstance(metadata, Mapping):
        raise TypeError(f"asset metadata is a mapping, got {type(metadata).__name__}")
    assert task_ctx is not None
    merged = {**task_ctx.task_run.asset_metadata.get(key, {}), **metadata}
    try:
        size = len(json.dumps(merged, separators=(",", ":"), allow_nan=False).encode())
    except (TypeError, ValueError) as exc:
        raise TypeError(f"asset metadata must be JSON values: {exc}") from None
    if size > MAX_METADATA_BYTES:
        raise ValueError(
            f"asset metadata of {key!r} is {size} bytes as JSON; at most {MAX_METADATA_BYTES}"
        )
    task_ctx.task_run.asset_metadata[key] = merged


# --- lineage inside one flow run ----------------------------------------------------------------
def _shared(value: Any) -> bool:
    """Whether ``value`` is an object the interpreter shares (None, booleans, small ints, empty
    containers, one-character strings): its identity does not say which task made it."""
    if value is None or isinstance(value, bool):
        return True
    if type(value) is int:
        return -5 <= value <= 256
    if isinstance(value, str | bytes | tuple | frozenset):
        return len(value) <= 1
    return False


class _RunAssets:
    """What one flow run materialized: by task run id (futures) and by result object (values)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.by_run: dict[UUID, tuple[Asset, ...]] = {}
        # id(result) -> (result, assets): the result is held so its id cannot be reused meanwhile
        self.by_value: dict[int, tuple[Any, tuple[Asset, ...]]] = {}

    def record(self, run_id: UUID, value: Any, assets: tuple[Asset, ...]) -> None:
        with self.lock:
            self.by_run[run_id] = assets
            if not _shared(value):
                self.by_value[id(value)] = (value, assets)

    def upstream_of(self, run: Any) -> list[Asset]:
        found: dict[str, Asset] = {}
        with self.lock:
            for ids in run.task_inputs.values():
                for run_id in ids:
                    for a in self.by_run.get(run_id, ()):
                        found.setdefault(a.key, a)
            budget = [_SCAN_ITEMS]
            for value in run.parameters.values():
                self._scan(value, found, 0, budget)
        return list(found.values())

    def _scan(self, value: Any, found: dict[str, Asset], depth: int, budget: list[int]) -> None:
        budget[0] -= 1
        if budget[0] < 0:
            return
        entry = self.by_value.get(id(value))
        if entry is not None and entry[0] is value:
            for a in entry[1]:
                found.setdefault(a.key, a)
            return
        if depth >= _SCAN_DEPTH:
            return
        if isinstance(value, list | tuple | set | frozenset):
            for item in value:
                self._scan(item, found, depth + 1, budget)
        elif isinstance(value, dict):
            for item in value.values():
                self._scan(item, found, depth + 1, budget)


_contexts_lock = threading.Lock()


def _run_assets(ctx: FlowRunContext) -> _RunAssets:
    if ctx.assets is None:
        with _contexts_lock:
            if ctx.assets is None:
                ctx.assets = _RunAssets()
    assets: _RunAssets = ctx.assets
    return assets


# --- the events ---------------------------------------------------------------------------------
def _event_id(key: str, task_run_id: UUID, state_id: UUID) -> UUID:
    """The id of the event for ``key`` as task run ``task_run_id`` entered ``state_id``."""
    return uuid5(NAMESPACE_URL, f"tideflow.asset.{key}.task-run.{task_run_id}.{state_id}")


def _related(key: str, role: str, name: str | None) -> dict[str, str]:
    labels = {RESOURCE_ID: key, RESOURCE_ROLE: role}
    if name:
        labels[RESOURCE_NAME] = name
    return labels


def _run_related(ctx: FlowRunContext | None, run: Any) -> list[dict[str, str]]:
    related = []
    if ctx is not None:
        fr = ctx.flow_run
        related.append(_related(f"tideflow.flow-run.{fr.id}", "flow-run", fr.name))
        related.append(_related(f"tideflow.flow.{fr.flow_id}", "flow", fr.flow_name))
        if fr.deployment_id is not None:
            related.append(_related(f"tideflow.deployment.{fr.deployment_id}", "deployment", None))
    related.append(_related(f"tideflow.task-run.{run.id}", "task-run", run.name))
    return related


def _build(
    asset: Asset, upstream: list[Asset], run: Any, ctx: FlowRunContext | None, state: Any,
    succeeded: bool,
) -> Event:  # fmt: skip
    props = asset.properties
    resource = {RESOURCE_ID: asset.key, RESOURCE_NAME: (props.name if props else None) or asset.key}
    if props is not None and props.description:
        resource[_DESCRIPTION_LABEL] = props.description[:1000]
    runs = _run_related(ctx, run)
    room = MAX_RELATED - len(runs)
    related = [
        _related(u.key, ASSET_RESOURCE_ROLE, u.properties.name if u.properties else None)
        for u in upstream[:room]
    ]
    payload: dict[str, Any] = {
        "properties": props.model_dump(mode="json") if props is not None else None,
        "metadata": run.asset_metadata.get(asset.key, {}),
        "upstream": [u.key for u in upstream[:_MAX_UPSTREAM]],
        "task_run_id": str(run.id),
        "flow_run_id": str(ctx.flow_run.id) if ctx is not None else None,
    }
    if not succeeded:
        payload["error"] = state.message
    occurred = getattr(state, "timestamp", None) or dt.datetime.now(dt.UTC)
    return Event.model_validate(
        {
            "id": _event_id(asset.key, run.id, state.id),
            "occurred": occurred,
            "event": MATERIALIZATION_SUCCEEDED if succeeded else MATERIALIZATION_FAILED,
            "resource": resource,
            "related": related + runs,
            "payload": payload,
        }
    )


def _report(
    task: MaterializingTask[Any, Any], run: Any, state: Any, *, succeeded: bool
) -> list[Event]:
    """Emit one materialization event per asset of ``task`` for ``run`` ending in ``state``;
    inside a flow run, remember the result so later materializations find their upstreams."""
    ctx = current_run()
    own = {a.key for a in task.assets}
    upstream: dict[str, Asset] = {a.key: a for a in task.asset_deps}
    if ctx is not None:
        lineage = _run_assets(ctx)
        for a in lineage.upstream_of(run):
            upstream.setdefault(a.key, a)
        if succeeded:
            lineage.record(run.id, state.data, task.assets)
    ups = [a for k, a in upstream.items() if k not in own]
    events = []
    worker = event_worker()
    for asset in task.assets:
        event = _build(asset, ups, run, ctx, state, succeeded)
        problem = event_limits_problem(event)
        if problem:
            raise ValueError(f"materialization event of {asset.key!r}: {problem}")
        worker.enqueue(event)
        events.append(event)
    return events
