"""Cache policies: how a task run's cache key is computed from what it runs with.

Two task runs with the same key share one stored result: the second finishes ``Cached`` without
calling the function. Policies combine with ``+`` (``INPUTS + TASK_SOURCE``); a key is a stable hex
digest, the same in every process that sees the same inputs and source.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "DEFAULT",
    "FLOW_PARAMETERS",
    "INPUTS",
    "NO_CACHE",
    "RUN_ID",
    "TASK_SOURCE",
    "CacheKeyError",
    "CacheKeyFn",
    "CachePolicy",
    "CompoundCachePolicy",
    "ConfiguredCachePolicy",
    "FlowParameters",
    "Inputs",
    "KeyContext",
    "NoCache",
    "RunId",
    "TaskSource",
    "hash_objects",
]


class CacheKeyError(ValueError):
    """A value a cache key is made from can be neither JSON-encoded nor pickled."""


def hash_objects(*objects: Any) -> str:
    """A stable hex digest of ``objects``: their JSON (sorted keys) or, failing that, their pickle."""
    try:
        data = json.dumps(objects, sort_keys=True, separators=(",", ":")).encode()
    except (TypeError, ValueError):
        import cloudpickle  # lazy: only keys of non-JSON values need it

        try:
            data = cloudpickle.dumps(objects)
        except Exception as exc:
            raise CacheKeyError(f"cannot hash {type(objects[-1]).__name__}: {exc}") from None
    return hashlib.sha256(data).hexdigest()[:32]


@dataclass(frozen=True)
class KeyContext:
    """What a policy may look at: the task, its run's parameters, and the flow run around it."""

    task: Any
    parameters: dict[str, Any]
    flow_run_id: Any = None
    flow_parameters: dict[str, Any] = field(default_factory=dict)
    task_run_id: Any = None


class CachePolicy:
    """Base of the policies: ``compute_key`` answers a key, or None for "do not cache"."""

    key_storage: str | None = None  # where cache records live apart from results (configure())

    def compute_key(self, context: KeyContext) -> str | None:
        raise TypeError(f"{type(self).__name__} must implement compute_key()")

    def configure(self, *, key_storage: str | Path | None = None) -> CachePolicy:
        """This policy with its cache records kept in ``key_storage`` (a folder or fsspec URL),
        apart from the results they point to (which stay in the task's ``result_storage``)."""
        if key_storage is None:
            return self
        if not isinstance(key_storage, str | Path) or not str(key_storage).strip():
            raise TypeError(f"key_storage must be a folder or a URL, got {key_storage!r}")
        inner = self.policy if isinstance(self, ConfiguredCachePolicy) else self
        return ConfiguredCachePolicy(inner, str(key_storage))

    def __add__(self, other: CachePolicy) -> CachePolicy:
        if not isinstance(other, CachePolicy):
            return NotImplemented
        if isinstance(self, NoCache) or isinstance(other, NoCache):
            return NO_CACHE
        storage = self.key_storage or other.key_storage
        left = self.policy if isinstance(self, ConfiguredCachePolicy) else self
        right = other.policy if isinstance(other, ConfiguredCachePolicy) else other
        mine = left.policies if isinstance(left, CompoundCachePolicy) else (left,)
        theirs = right.policies if isinstance(right, CompoundCachePolicy) else (right,)
        return CompoundCachePolicy((*mine, *theirs)).configure(key_storage=storage)


@dataclass(frozen=True)
class Inputs(CachePolicy):
    """The task run's parameters (all but those named in ``exclude``)."""

    exclude: tuple[str, ...] = ()

    def compute_key(self, context: KeyContext) -> str | None:
        kept = {k: v for k, v in context.parameters.items() if k not in self.exclude}
        return hash_objects("inputs", kept)

    def __sub__(self, name: str) -> Inputs:
        """``INPUTS - "client"``: the same policy, ignoring one more parameter."""
        return Inputs((*self.exclude, name))


@dataclass(frozen=True)
class TaskSource(CachePolicy):
    """The task function's source code (its bytecode when the source cannot be read)."""

    def compute_key(self, context: KeyContext) -> str | None:
        fn = context.task.fn
        try:
            source: Any = inspect.getsource(fn)
        except (OSError, TypeError):
            code = getattr(fn, "__code__", None)
            source = code.co_code.hex() if code is not None else repr(fn)
        return hash_objects("source", source)


@dataclass(frozen=True)
class FlowParameters(CachePolicy):
    """The parameters of the flow run the task runs in."""

    def compute_key(self, context: KeyContext) -> str | None:
        return hash_objects("flow-parameters", context.flow_parameters)


@dataclass(frozen=True)
class RunId(CachePolicy):
    """The flow run's id: results are shared within one flow run only; outside a flow run, the task
    run's own id (nothing is shared). None when neither is known."""

    def compute_key(self, context: KeyContext) -> str | None:
        run = context.flow_run_id if context.flow_run_id is not None else context.task_run_id
        return None if run is None else hash_objects("run", str(run))


@dataclass(frozen=True)
class NoCache(CachePolicy):
    """Never cache."""

    def compute_key(self, context: KeyContext) -> str | None:
        return None


@dataclass(frozen=True)
class CacheKeyFn(CachePolicy):
    """A user function ``fn(context, parameters) -> str | None`` (the task's ``cache_key_fn``)."""

    fn: Callable[[KeyContext, dict[str, Any]], str | None]

    def compute_key(self, context: KeyContext) -> str | None:
        key = self.fn(context, dict(context.parameters))
        if key is None:
            return None
        if not isinstance(key, str):
            raise CacheKeyError(f"cache_key_fn must return a string or None, got {key!r}")
        return hash_objects("key-fn", key)


@dataclass(frozen=True)
class CompoundCachePolicy(CachePolicy):
    """Several policies: the key changes when any part changes; parts answering None are skipped."""

    policies: tuple[CachePolicy, ...]

    def compute_key(self, context: KeyContext) -> str | None:
        keys = [p.compute_key(context) for p in self.policies]
        present = [k for k in keys if k is not None]
        return hash_objects(*present) if present else None


@dataclass(frozen=True)
class ConfiguredCachePolicy(CachePolicy):
    """A policy whose cache records live in ``key_storage`` (made by ``policy.configure()``)."""

    policy: CachePolicy
    key_storage: str | None = None  # a field here, a class default on CachePolicy

    def compute_key(self, context: KeyContext) -> str | None:
        return self.policy.compute_key(context)

    def __sub__(self, name: str) -> CachePolicy:
        if not isinstance(self.policy, Inputs):
            raise TypeError(f"only INPUTS can leave out a parameter, not {self.policy!r}")
        return (self.policy - name).configure(key_storage=self.key_storage)


INPUTS = Inputs()
TASK_SOURCE = TaskSource()
FLOW_PARAMETERS = FlowParameters()
RUN_ID = RunId()
NO_CACHE = NoCache()
DEFAULT = INPUTS + TASK_SOURCE + RUN_ID
