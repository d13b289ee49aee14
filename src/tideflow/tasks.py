"""The ``@task`` decorator and the ``Task`` object it makes.

Inside a flow run, calling a task runs it as a task run (retries, timeout, hooks, states) and returns
its value; ``.submit()`` hands it to the flow's task runner and answers a future, ``.map()`` one
future per element. Outside a flow run, a call runs the task in this process the same way (retries,
caching, hooks, ``return_state``) without recording the run on the server; ``.fn`` is the function.
"""

from __future__ import annotations

import datetime as dt
import inspect
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar, cast, overload

from tideflow.cache_policies import (
    DEFAULT,
    CacheKeyError,
    CacheKeyFn,
    CachePolicy,
    KeyContext,
    NoCache,
    hash_objects,
)
from tideflow.futures import FutureList, TaskFuture, unmapped

if TYPE_CHECKING:
    from tideflow.background import BackgroundTaskFuture
    from tideflow.task_runners import TaskRunner

# The engine and the task runners load on first use (first call inside a flow, first submit), not at
# import: ``from tideflow import flow, task`` must stay cheap (issue 6, tests/test_import_boundaries.py).

__all__ = ["Task", "exponential_backoff", "serve", "task", "task_input_hash"]

P = ParamSpec("P")
R = TypeVar("R")

_OPTIONS = (
    "name",
    "description",
    "tags",
    "version",
    "retries",
    "retry_delay_seconds",
    "retry_jitter_factor",
    "retry_condition_fn",
    "timeout_seconds",
    "log_prints",
    "task_run_name",
    "on_completion",
    "on_failure",
    "on_running",
    "cache_policy",
    "cache_key_fn",
    "cache_expiration",
    "refresh_cache",
    "persist_result",
    "result_storage",
    "result_serializer",
)
_SERIALIZERS = ("pickle", "cloudpickle", "json")


def exponential_backoff(backoff_factor: float) -> Callable[[int], list[float]]:
    """Retry delays that double: ``backoff_factor * 2**n`` seconds before retry ``n`` (from 0)."""
    if isinstance(backoff_factor, bool) or not isinstance(backoff_factor, int | float):
        raise TypeError(f"backoff_factor must be a number, got {backoff_factor!r}")
    if backoff_factor < 0:
        raise ValueError(f"backoff_factor must be ≥ 0, got {backoff_factor!r}")

    def delays(retries: int) -> list[float]:
        return [float(backoff_factor) * 2**n for n in range(retries)]

    return delays


def task_input_hash(context: KeyContext, arguments: dict[str, Any]) -> str | None:
    """A ``cache_key_fn``: the same task (name and code) with the same arguments shares a key.

    None (no caching for that run) when an argument can be neither JSON-encoded nor pickled.
    """
    fn = context.task.fn
    code = getattr(fn, "__code__", None)
    try:
        return hash_objects(
            context.task.name,
            getattr(fn, "__qualname__", ""),
            code.co_code.hex() if code is not None else repr(fn),
            arguments,
        )
    except CacheKeyError:
        return None


def _number(option: str, value: Any, *, minimum: float, strict: bool = False) -> float:
    bad = isinstance(value, bool) or not isinstance(value, int | float)
    if bad or value < minimum or (strict and value == minimum):
        relation = ">" if strict else "≥"
        raise ValueError(f"{option} must be a number {relation} {minimum:g}, got {value!r}")
    return float(value)


def _delays(value: Any, retries: int) -> float | list[float]:
    if callable(value):
        value = value(retries)
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [_number("retry_delay_seconds", v, minimum=0) for v in value]
    return _number("retry_delay_seconds", value, minimum=0)


def _hooks(kind: str, hooks: Iterable[Callable[..., Any]] | None) -> list[Callable[..., Any]]:
    out = list(hooks or [])
    for hook in out:
        if not callable(hook):
            raise TypeError(f"{kind} hooks must be callables (task, task_run, state), got {hook!r}")
    return out


class Task(Generic[P, R]):
    """A function made into a task. ``.fn`` is the original function."""

    def __init__(
        self,
        fn: Callable[P, R],
        *,
        name: str | None = None,
        description: str | None = None,
        tags: Iterable[str] | None = None,
        version: str | None = None,
        retries: int | None = None,
        retry_delay_seconds: float | Sequence[float] | Callable[[int], list[float]] | None = None,
        retry_jitter_factor: float | None = None,
        retry_condition_fn: Callable[..., bool] | None = None,
        timeout_seconds: float | None = None,
        log_prints: bool | None = None,
        task_run_name: str | Callable[[], str] | None = None,
        on_completion: Iterable[Callable[..., Any]] | None = None,
        on_failure: Iterable[Callable[..., Any]] | None = None,
        on_running: Iterable[Callable[..., Any]] | None = None,
        cache_policy: CachePolicy | None = None,
        cache_key_fn: Callable[..., str | None] | None = None,
        cache_expiration: dt.timedelta | float | None = None,
        refresh_cache: bool | None = None,
        persist_result: bool | None = None,
        result_storage: str | Path | None = None,
        result_serializer: str = "pickle",
    ) -> None:
        if not callable(fn):
            raise TypeError(f"@task needs a function, got {fn!r}")
        if retries is not None and (
            isinstance(retries, bool) or not isinstance(retries, int) or retries < 0
        ):
            raise ValueError(f"retries must be an integer ≥ 0, got {retries!r}")
        if isinstance(tags, str):
            raise TypeError(f"tags must be a list of strings, got the string {tags!r}")
        if task_run_name is not None and not (
            isinstance(task_run_name, str) or callable(task_run_name)
        ):
            raise TypeError(
                f"task_run_name must be a template string or a callable, got {task_run_name!r}"
            )
        if retry_condition_fn is not None and not callable(retry_condition_fn):
            raise TypeError(f"retry_condition_fn must be a callable, got {retry_condition_fn!r}")
        self.fn = fn
        self.name = name if name is not None else getattr(fn, "__name__", "task")
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError(f"a task name must be a non-empty string, got {self.name!r}")
        self.description = description if description is not None else inspect.getdoc(fn)
        self.tags = [str(t) for t in (tags or [])]
        self.version = version
        # None: the TIDEFLOW_TASK_DEFAULT_RETRIES / _RETRY_DELAY_SECONDS settings, read when a run
        # fails (decorating a task must not load the settings: issue 6).
        self._retries_option = retries
        self._retry_delay_option = retry_delay_seconds
        self.retries = retries if retries is not None else 0
        self.retry_delay_seconds = _delays(
            retry_delay_seconds if retry_delay_seconds is not None else 0, self.retries
        )
        self.retry_jitter_factor = (
            None
            if retry_jitter_factor is None
            else _number("retry_jitter_factor", retry_jitter_factor, minimum=0)
        )
        self.retry_condition_fn = retry_condition_fn
        self.timeout_seconds = (
            None
            if timeout_seconds is None
            else _number("timeout_seconds", timeout_seconds, minimum=0, strict=True)
        )
        self.log_prints = log_prints
        self.task_run_name = task_run_name
        self.on_completion_hooks = _hooks("on_completion", on_completion)
        self.on_failure_hooks = _hooks("on_failure", on_failure)
        self.on_running_hooks = _hooks("on_running", on_running)
        self._set_caching(
            cache_policy, cache_key_fn, cache_expiration, refresh_cache, persist_result
        )
        if result_serializer not in _SERIALIZERS:
            raise ValueError(
                f"result_serializer must be one of {', '.join(_SERIALIZERS)}, "
                f"got {result_serializer!r}"
            )
        self.result_storage = result_storage
        self.result_serializer = result_serializer
        self.isasync = inspect.iscoroutinefunction(fn)
        self._signature = inspect.signature(fn)
        self.__doc__ = fn.__doc__
        self.__name__ = getattr(fn, "__name__", self.name)
        self.__qualname__ = getattr(fn, "__qualname__", self.name)
        self.__module__ = getattr(fn, "__module__", __name__)
        self.__wrapped__ = fn

    def _set_caching(
        self,
        policy: CachePolicy | None,
        key_fn: Callable[..., str | None] | None,
        expiration: dt.timedelta | float | None,
        refresh: bool | None,
        persist: bool | None,
    ) -> None:
        # The options as given (for with_options) and what they mean together (for the engine).
        self._cache_options = (policy, key_fn, expiration)
        if policy is not None and not isinstance(policy, CachePolicy):
            raise TypeError(f"cache_policy must be a cache policy such as INPUTS, got {policy!r}")
        if key_fn is not None and not callable(key_fn):
            raise TypeError(
                f"cache_key_fn must be a callable (context, parameters), got {key_fn!r}"
            )
        if isinstance(expiration, int | float) and not isinstance(expiration, bool):
            expiration = dt.timedelta(seconds=_number("cache_expiration", expiration, minimum=0))
        if expiration is not None and not isinstance(expiration, dt.timedelta):
            raise TypeError(f"cache_expiration must be seconds or a timedelta, got {expiration!r}")
        wants_cache = (
            policy is not None or key_fn is not None or expiration is not None or bool(refresh)
        )
        if key_fn is not None:
            policy = CacheKeyFn(key_fn)
        elif policy is None and (wants_cache or persist):
            policy = DEFAULT
        if isinstance(policy, NoCache):
            policy = None
        if persist is False and wants_cache and policy is not None:
            raise ValueError(
                f"task {self.name!r} caches its results (cache_policy/cache_key_fn/"
                "cache_expiration/refresh_cache) but persist_result=False: a cache needs them stored"
            )
        self.cache_policy: CachePolicy | None = policy
        self.cache_key_fn = key_fn
        self.cache_expiration: dt.timedelta | None = expiration
        self.refresh_cache = refresh  # None: the TIDEFLOW_TASKS_REFRESH_CACHE setting
        self.persist_result = persist if persist is not None else policy is not None

    def with_options(self, **changes: Any) -> Task[P, R]:
        """A copy of this task with some options changed (same function)."""
        unknown = sorted(set(changes) - set(_OPTIONS))
        if unknown:
            raise TypeError(
                f"with_options() got unknown option(s) {', '.join(unknown)}; "
                f"known: {', '.join(_OPTIONS)}"
            )
        hooks = ("on_completion", "on_failure", "on_running")
        options = {key: getattr(self, key) for key in _OPTIONS if key not in hooks}
        options.update({key: list(getattr(self, f"{key}_hooks")) for key in hooks})
        options["retries"] = self._retries_option
        options["retry_delay_seconds"] = self._retry_delay_option
        policy, key_fn, expiration = self._cache_options
        options.update(cache_policy=policy, cache_key_fn=key_fn, cache_expiration=expiration)
        options.update(changes)
        return self._with_options(options)

    def _with_options(self, options: dict[str, Any]) -> Task[P, R]:
        # A subclass (``tideflow.assets``' materializing task) keeps its own kind and extras.
        return Task(self.fn, **options)

    def retry_policy(self, settings: Any = None) -> tuple[int, float | list[float]]:
        """``(retries, delays)`` this task runs with: its options, else the settings' defaults."""
        if self._retries_option == 0 or (
            self._retries_option is not None and self._retry_delay_option is not None
        ):
            return self.retries, self.retry_delay_seconds
        if settings is None:
            from tideflow.settings import get_settings  # lazy: see the module top

            settings = get_settings()
        retries = self._retries_option
        if retries is None:
            retries = settings.task_default_retries
        option = self._retry_delay_option
        if option is None:
            option = settings.task_default_retry_delay_seconds
        return retries, _delays(option, retries)

    # --- hooks as decorators -----------------------------------------------------------------------
    def on_completion(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """Add ``fn(task, task_run, state)`` to the hooks called when a run completes."""
        self.on_completion_hooks.append(*_hooks("on_completion", [fn]))
        return fn

    def on_failure(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """Add ``fn(task, task_run, state)`` to the hooks called when a run fails."""
        self.on_failure_hooks.append(*_hooks("on_failure", [fn]))
        return fn

    def on_running(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """Add ``fn(task, task_run, state)`` to the hooks called as each attempt starts running."""
        self.on_running_hooks.append(*_hooks("on_running", [fn]))
        return fn

    # --- calling --------------------------------------------------------------------------------------
    def _bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> inspect.BoundArguments:
        try:
            bound = self._signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise TypeError(f"task {self.name!r}: {exc}") from None
        bound.apply_defaults()
        return bound

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run as a task run (retries, timeout, caching, hooks) and return the function's value.

        ``return_state=True`` answers the run's final State instead (a failure does not raise);
        ``wait_for=[futures]`` first waits for those task runs. Inside a flow run the task run is
        recorded on the server; outside one it runs in this process only.
        """
        from tideflow.engine.task_runs import new_task_run  # lazy: see the module top

        return_state = False
        wait_for: Sequence[Any] = ()
        if kwargs and ("return_state" in kwargs or "wait_for" in kwargs):
            return_state = bool(kwargs.pop("return_state", False))
            wait_for = cast(Sequence[Any], kwargs.pop("wait_for", ()) or ())
        bound = self._bind(args, kwargs)
        run = new_task_run(self, dict(bound.arguments))
        if self.isasync:
            return cast(R, _call_async(self, run, args, kwargs, bound, wait_for, return_state))
        return cast(R, _call_sync(self, run, args, kwargs, bound, wait_for, return_state))

    def submit(self, *args: P.args, **kwargs: P.kwargs) -> TaskFuture[R]:
        """Run this task in the flow's task runner; answer its future at once.

        Futures among the arguments make this run wait for them (and pass their values);
        ``wait_for=[futures]`` waits without passing values. ``return_state=True`` waits for the
        run and answers its final State instead of the future.
        """
        return_state = bool(kwargs.pop("return_state", False))
        wait_for = cast(Sequence[Any], kwargs.pop("wait_for", ()) or ())
        future = self._submit(args, kwargs, wait_for)
        if return_state:
            future.wait()
            return cast(TaskFuture[R], future.state)
        return future

    def _submit(
        self, args: tuple[Any, ...], kwargs: dict[str, Any], wait_for: Sequence[Any]
    ) -> TaskFuture[R]:
        from tideflow.engine.task_runs import new_task_run  # lazy: see the module top

        bound = self._bind(args, kwargs)
        run = new_task_run(self, dict(bound.arguments))
        return _active_runner().submit(self, run, args, kwargs, bound, list(wait_for))

    def map(self, *args: Any, **kwargs: Any) -> FutureList[R]:
        """Submit one run per element of the iterable arguments (zipped; same lengths).

        Wrap an iterable in ``unmapped(...)`` to pass it whole to every run; other non-iterable
        values (and strings, bytes, mappings) are passed to every run as they are.
        ``deferred=True`` enqueues background runs (``.delay()``) instead and answers their futures;
        ``return_state=True`` waits and answers the runs' final States.
        """
        wait_for = kwargs.pop("wait_for", ()) or ()
        return_state = bool(kwargs.pop("return_state", False))
        deferred = bool(kwargs.pop("deferred", False))
        bound = self._signature.bind_partial(*args, **kwargs)
        lengths: dict[str, int] = {}
        values: dict[str, Any] = {}
        for key, value in bound.arguments.items():
            if isinstance(value, unmapped) or not _mappable(value):
                continue
            values[key] = list(value)
            lengths[key] = len(values[key])
        if not lengths:
            raise ValueError(
                f"{self.name}.map() needs at least one iterable argument "
                f"(got {', '.join(bound.arguments) or 'none'}); use .submit() for a single run"
            )
        if len(set(lengths.values())) > 1:
            sizes = ", ".join(f"{k}: {n}" for k, n in lengths.items())
            raise ValueError(f"{self.name}.map() got iterables of different lengths ({sizes})")
        calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
        for i in range(next(iter(lengths.values()))):
            call: dict[str, Any] = {}
            for key, value in bound.arguments.items():
                if key in values:
                    call[key] = values[key][i]
                else:
                    call[key] = value.value if isinstance(value, unmapped) else value
            calls.append(_split(self._signature, call))
        if deferred:
            return cast(FutureList[R], [self.delay(*a, **k) for a, k in calls])
        futures: FutureList[R] = FutureList()
        for call_args, call_kwargs in calls:
            futures.append(self._submit(call_args, call_kwargs, list(wait_for)))
        if return_state:
            futures.wait()
            return cast(FutureList[R], [f.state for f in futures])
        return futures

    def delay(self, *args: P.args, **kwargs: P.kwargs) -> BackgroundTaskFuture[R]:
        """Enqueue a background run of this task for a task worker (``task.serve()`` or ``tideflow
        task serve``) from any process; answer its future at once.

        Parameters must be JSON values (a TypeError names the one that is not). The worker stores
        the result, so ``future.result(timeout)`` can read it from the shared result storage.
        Delivery is at least once: see docs/adr/0005-background-tasks.md.
        """
        from tideflow.background import delay  # lazy: see the module top

        return delay(self, args, kwargs)

    def serve(self, *, limit: int = 10) -> None:
        """Run a task worker for this task until Ctrl-C (see ``tideflow.tasks.serve``)."""
        serve(self, limit=limit)

    def __repr__(self) -> str:
        return f"Task(name={self.name!r}, fn={self.__qualname__})"


def serve(*tasks: Task[Any, Any], limit: int = 10) -> None:
    """Run a task worker executing the background runs (``.delay()``) of ``tasks``, at most
    ``limit`` at once (threads), until Ctrl-C or SIGTERM."""
    from tideflow import task_worker  # lazy: see the module top

    task_worker.serve(*tasks, limit=limit)


def _call_sync(
    task: Task[Any, Any], run: Any, args: tuple[Any, ...], kwargs: dict[str, Any], bound: Any,
    wait_for: Sequence[Any], return_state: bool,
) -> Any:  # fmt: skip
    from tideflow.engine.task_runs import run_task_sync  # lazy: see the module top

    if not return_state:
        return run_task_sync(task, run, args, kwargs, bound, wait_for)
    try:
        run_task_sync(task, run, args, kwargs, bound, wait_for)
    except Exception:
        pass  # the final state holds the error
    return run.state


async def _call_async(
    task: Task[Any, Any], run: Any, args: tuple[Any, ...], kwargs: dict[str, Any], bound: Any,
    wait_for: Sequence[Any], return_state: bool,
) -> Any:  # fmt: skip
    from tideflow.engine.task_runs import run_task_async  # lazy: see the module top

    if not return_state:
        return await run_task_async(task, run, args, kwargs, bound, wait_for)
    try:
        await run_task_async(task, run, args, kwargs, bound, wait_for)
    except Exception:
        pass  # the final state holds the error
    return run.state


def _mappable(value: Any) -> bool:
    if isinstance(value, str | bytes | bytearray | Mapping):
        return False
    if hasattr(value, "_inner") and hasattr(value, "task_run"):  # one future: a single value
        return False
    return isinstance(value, Iterable)


def _split(
    signature: inspect.Signature, arguments: dict[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """``arguments`` (by parameter name) as the args and kwargs of a call."""
    bound = inspect.BoundArguments(signature, arguments)
    return bound.args, bound.kwargs


_default_runner: TaskRunner | None = None


def _active_runner() -> TaskRunner:
    """The current flow call's task runner (started on first use), or a process-wide default."""
    from tideflow.engine.context import current_run  # lazy: see the module top
    from tideflow.task_runners import ThreadPoolTaskRunner

    global _default_runner
    ctx = current_run()
    if ctx is None:
        if _default_runner is None:
            _default_runner = ThreadPoolTaskRunner()
        return _default_runner
    if ctx.task_runner is None:
        chosen = getattr(ctx.flow, "task_runner", None)
        ctx.task_runner = chosen.duplicate() if chosen is not None else ThreadPoolTaskRunner()
    runner: TaskRunner = ctx.task_runner
    return runner


@overload
def task(__fn: Callable[P, R]) -> Task[P, R]: ...


@overload
def task(
    *,
    name: str | None = None,
    description: str | None = None,
    tags: Iterable[str] | None = None,
    version: str | None = None,
    retries: int | None = None,
    retry_delay_seconds: float | Sequence[float] | Callable[[int], list[float]] | None = None,
    retry_jitter_factor: float | None = None,
    retry_condition_fn: Callable[..., bool] | None = None,
    timeout_seconds: float | None = None,
    log_prints: bool | None = None,
    task_run_name: str | Callable[[], str] | None = None,
    on_completion: Iterable[Callable[..., Any]] | None = None,
    on_failure: Iterable[Callable[..., Any]] | None = None,
    on_running: Iterable[Callable[..., Any]] | None = None,
    cache_policy: CachePolicy | None = None,
    cache_key_fn: Callable[..., str | None] | None = None,
    cache_expiration: dt.timedelta | float | None = None,
    refresh_cache: bool | None = None,
    persist_result: bool | None = None,
    result_storage: str | Path | None = None,
    result_serializer: str = "pickle",
) -> Callable[[Callable[P, R]], Task[P, R]]: ...


def task(
    __fn: Callable[P, R] | None = None, **options: Any
) -> Task[P, R] | Callable[[Callable[P, R]], Task[P, R]]:
    """Make a function a task: ``@task`` or ``@task(retries=3, retry_delay_seconds=[1, 2, 4], ...)``.

    Options: ``name`` (default: the function's name), ``description``, ``tags``, ``version``,
    ``retries``, ``retry_delay_seconds`` (a number, a list with one per retry, or
    ``exponential_backoff(base)``), ``retry_jitter_factor``, ``retry_condition_fn(task, task_run,
    state) -> bool``, ``timeout_seconds``, ``log_prints``, ``task_run_name`` (a template over the
    parameters or a callable), the hooks ``on_completion``/``on_failure``/``on_running`` (``hook(task,
    task_run, state)``; ``on_running`` before each attempt), and caching: ``cache_policy`` (``INPUTS + TASK_SOURCE`` …) or ``cache_key_fn(context,
    parameters)``, ``cache_expiration`` (seconds or timedelta), ``refresh_cache``, with the result kept
    by ``persist_result`` in ``result_storage`` (a folder or fsspec URL; default
    ``$TIDEFLOW_HOME/results``) as ``result_serializer`` ("pickle", "cloudpickle" or "json").
    """
    unknown = sorted(set(options) - set(_OPTIONS))
    if unknown:
        raise TypeError(
            f"@task got unknown option(s) {', '.join(unknown)}; known: {', '.join(_OPTIONS)}"
        )
    if __fn is not None:
        return Task(__fn, **options)

    def decorator(fn: Callable[P, R]) -> Task[P, R]:
        return Task(fn, **options)

    return decorator
