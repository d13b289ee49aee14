"""The ``@flow`` decorator and the ``Flow`` object it makes.

Calling a flow runs it: a flow run is created on the server and moved through its states by the
engine (``tideflow.engine``), and the call returns the function's value or raises its error. Calling
an async flow returns a coroutine.
"""

from __future__ import annotations

import copy
import inspect
import types
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar, cast, overload

if TYPE_CHECKING:
    from tideflow.deployments import RunnerDeployment
    from tideflow.engine.parameters import ParameterSchema
    from tideflow.schemas.deployments import ConcurrencyLimitConfig
    from tideflow.task_runners import TaskRunner

# The engine, the HTTP client and the deployment machinery load on first use (first call,
# ``to_deployment``, ``serve``), not at import: ``from tideflow import flow`` must stay cheap (issue 6).
# tests/test_import_boundaries.py pins this.

__all__ = ["Flow", "HookList", "StateHook", "flow"]

P = ParamSpec("P")
R = TypeVar("R")

StateHook = Callable[..., Any]
"""A state-change hook: called as ``hook(flow, flow_run, state)``."""

_OPTIONS = (
    "name",
    "description",
    "version",
    "log_prints",
    "retries",
    "retry_delay_seconds",
    "timeout_seconds",
    "validate_parameters",
    "flow_run_name",
    "tags",
    "on_completion",
    "on_failure",
    "on_cancellation",
    "on_crashed",
    "on_running",
    "task_runner",
)
_FORBIDDEN_IN_NAME = "/%&<>?#"


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"a flow name must be a non-empty string, got {name!r}")
    bad = sorted({c for c in name if c in _FORBIDDEN_IN_NAME})
    if bad:
        raise ValueError(f"flow name {name!r} must not contain {' '.join(bad)}")
    if len(name) > 200:
        raise ValueError(f"flow name {name[:40]!r}… is longer than 200 characters")
    return name


def _check_delay(value: Any) -> float | list[float]:
    def one(v: Any) -> float:
        if isinstance(v, bool) or not isinstance(v, int | float) or v < 0:
            raise ValueError(
                f"retry_delay_seconds must be a number ≥ 0 or a list of them, got {value!r}"
            )
        return float(v)

    if isinstance(value, Sequence) and not isinstance(value, str):
        return [one(v) for v in value]
    return one(value)


class HookList(list[StateHook]):
    """A flow's hooks of one kind; also a decorator adding one: ``@my_flow.on_failure``."""

    def __init__(self, kind: str, hooks: Iterable[StateHook] = ()) -> None:
        super().__init__(hooks)
        self.kind = kind

    def __call__(self, hook: StateHook) -> StateHook:
        """Add ``hook`` (called as ``hook(flow, flow_run, state)``) and return it unchanged."""
        if not callable(hook):
            raise TypeError(
                f"@flow.{self.kind} needs a callable (flow, flow_run, state), got {hook!r}"
            )
        self.append(hook)
        return hook


def _check_hooks(kind: str, hooks: Iterable[StateHook] | None) -> HookList:
    if callable(hooks) and not isinstance(hooks, list):
        raise TypeError(f"{kind} takes a list of hooks, got the single callable {hooks!r}")
    out = HookList(kind, hooks or [])
    for hook in out:
        if not callable(hook):
            raise TypeError(f"{kind} hooks must be callables (flow, flow_run, state), got {hook!r}")
    return out


class Flow(Generic[P, R]):
    """A function made into a flow. Call it to run it; ``.fn`` is the original function."""

    def __init__(
        self,
        fn: Callable[P, R],
        *,
        name: str | None = None,
        description: str | None = None,
        version: str | None = None,
        log_prints: bool | None = None,
        retries: int = 0,
        retry_delay_seconds: float | Sequence[float] = 0,
        timeout_seconds: float | None = None,
        validate_parameters: bool = True,
        flow_run_name: str | Callable[..., str] | None = None,
        tags: Iterable[str] | None = None,
        on_completion: Iterable[StateHook] | None = None,
        on_failure: Iterable[StateHook] | None = None,
        on_cancellation: Iterable[StateHook] | None = None,
        on_crashed: Iterable[StateHook] | None = None,
        on_running: Iterable[StateHook] | None = None,
        task_runner: TaskRunner | None = None,
        _schema: ParameterSchema | None = None,
    ) -> None:
        # @flow over @classmethod / @staticmethod: keep the function, bind it on attribute access.
        self._binding: str | None = None
        if isinstance(fn, classmethod | staticmethod):
            self._binding = "class" if isinstance(fn, classmethod) else "static"
            fn = cast("Callable[P, R]", fn.__func__)
        if not callable(fn):
            raise TypeError(f"@flow needs a function, got {fn!r}")
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ValueError(f"retries must be an integer ≥ 0, got {retries!r}")
        if timeout_seconds is not None and (
            isinstance(timeout_seconds, bool)
            or not isinstance(timeout_seconds, int | float)
            or timeout_seconds <= 0
        ):
            raise ValueError(f"timeout_seconds must be a number > 0, got {timeout_seconds!r}")
        if flow_run_name is not None and not (
            isinstance(flow_run_name, str) or callable(flow_run_name)
        ):
            raise TypeError(
                f"flow_run_name must be a template string or a callable, got {flow_run_name!r}"
            )
        if isinstance(tags, str):
            raise TypeError(f"tags must be a list of strings, got the string {tags!r}")
        if task_runner is not None and not callable(getattr(task_runner, "duplicate", None)):
            raise TypeError(
                "task_runner must be a task runner such as ThreadPoolTaskRunner(), "
                f"got {task_runner!r}"
            )
        self.fn = fn
        self.name = _check_name(name if name is not None else fn.__name__.replace("_", "-"))
        self.description = description if description is not None else inspect.getdoc(fn)
        self.version = version
        self.log_prints = log_prints
        self.retries = retries
        self.retry_delay_seconds = _check_delay(retry_delay_seconds)
        self.timeout_seconds = timeout_seconds
        self.validate_parameters = bool(validate_parameters)
        self.flow_run_name = flow_run_name
        self.tags = [str(t) for t in (tags or [])]
        self.on_completion = _check_hooks("on_completion", on_completion)
        self.on_failure = _check_hooks("on_failure", on_failure)
        self.on_cancellation = _check_hooks("on_cancellation", on_cancellation)
        self.on_crashed = _check_hooks("on_crashed", on_crashed)
        self.on_running = _check_hooks("on_running", on_running)
        self.task_runner = task_runner
        self.isasync = inspect.iscoroutinefunction(fn)
        self._schema = _schema
        self.__doc__ = fn.__doc__
        self.__name__ = getattr(fn, "__name__", self.name)
        self.__qualname__ = getattr(fn, "__qualname__", self.name)
        self.__module__ = getattr(fn, "__module__", __name__)
        self.__wrapped__ = fn

    @property
    def parameter_schema(self) -> ParameterSchema:
        """The validators built from the signature (once per function)."""
        if self._schema is None:
            from tideflow.engine.parameters import ParameterSchema  # lazy: see the module top

            self._schema = ParameterSchema(self.fn)
        return self._schema

    def _options(self) -> dict[str, Any]:
        return {key: getattr(self, key) for key in _OPTIONS}

    def __get__(self, instance: Any, owner: type | None = None) -> Flow[P, R]:
        """A flow defined in a class: bound to the instance (a method), the class (over
        ``@classmethod``) or nothing (over ``@staticmethod``), as Python binds functions."""
        if self._binding == "static":
            return self
        target = owner if self._binding == "class" else instance
        if target is None:
            return self
        # A shallow copy: the same options and hook lists (@obj.my_flow.on_failure adds to the
        # class's flow), the function bound, its parameters without self/cls.
        bound = copy.copy(self)
        bound.fn = types.MethodType(self.fn, target)
        bound._binding = None
        bound._schema = None
        return bound

    def with_options(self, **changes: Any) -> Flow[P, R]:
        """A copy of this flow with some options changed (same function)."""
        unknown = sorted(set(changes) - set(_OPTIONS))
        if unknown:
            raise TypeError(
                f"with_options() got unknown option(s) {', '.join(unknown)}; known: {', '.join(_OPTIONS)}"
            )
        options = {**self._options(), **changes}
        copy = Flow(self.fn, **options, _schema=self._schema)
        copy._binding = self._binding
        return copy

    def to_deployment(
        self,
        name: str,
        *,
        parameters: Mapping[str, Any] | None = None,
        description: str | None = None,
        version: str | None = None,
        tags: Iterable[str] | None = None,
        cron: str | Iterable[str] | None = None,
        interval: Any = None,
        rrule: str | Iterable[str] | None = None,
        schedules: Iterable[Any] | None = None,
        paused: bool = False,
        concurrency_limit: int | ConcurrencyLimitConfig | None = None,
        triggers: Iterable[Any] | None = None,
        job_variables: Mapping[str, Any] | None = None,
        enforce_parameter_schema: bool = True,
    ) -> RunnerDeployment:
        """A deployment of this flow for ``serve()``: default ``parameters``, schedules, triggers….

        ``cron`` ("0 2 * * *"), ``interval`` (seconds or a timedelta) and ``rrule`` (an RRULE string)
        each take one value or a list; ``schedules`` takes schedule objects or dicts; all combine.
        ``triggers`` are ``tideflow.events`` Deployment*Trigger objects (or dicts). A problem raises
        ValueError naming it (an unknown parameter, a bad cron, a trigger wired to a missing one).
        """
        from tideflow.deployments import build_deployment  # lazy: see the module top

        return build_deployment(
            self,
            name,
            parameters=parameters,
            description=description,
            version=version,
            tags=tags,
            cron=cron,
            interval=interval,
            rrule=rrule,
            schedules=schedules,
            paused=paused,
            concurrency_limit=concurrency_limit,
            triggers=triggers,
            job_variables=job_variables,
            enforce_parameter_schema=enforce_parameter_schema,
        )

    @classmethod
    def from_source(cls, source: Any, entrypoint: str) -> Flow[Any, Any]:
        """The flow at ``entrypoint`` ('path/file.py:function', relative to the source) loaded from
        ``source``: a local folder, a git URL or bare repository path, or a
        ``tideflow.deployments.GitRepository`` (branch, commit, subdirectory). Its ``deploy()``
        makes workers pull that source before each run. ValueError names a problem."""
        from tideflow.deployments._source import load_from_source  # lazy: see the module top

        return cast("Flow[Any, Any]", load_from_source(source, entrypoint))

    def deploy(
        self,
        name: str,
        *,
        work_pool_name: str,
        work_queue_name: str | None = None,
        job_variables: Mapping[str, Any] | None = None,
        print_next_steps: bool = True,
        **options: Any,
    ) -> Any:
        """Create or update deployment ``name`` in work pool ``work_pool_name``; its id (a UUID).

        ``job_variables`` (env, working_dir, command, … as the pool's template declares) are
        checked by the server; ``options`` are ``to_deployment``'s (parameters, cron, interval,
        rrule, schedules, tags, triggers, concurrency_limit, paused, description, version). The
        code is the flow's source (``from_source``) or the folder of the file defining it.
        """
        from tideflow.deployments._source import deploy_flow  # lazy: see the module top

        return deploy_flow(
            self,
            name,
            work_pool_name=work_pool_name,
            work_queue_name=work_queue_name,
            job_variables=dict(job_variables or {}),
            print_next_steps=print_next_steps,
            **options,
        )

    def serve(
        self,
        name: str | None = None,
        *,
        limit: int | None = None,
        pause_on_shutdown: bool = True,
        **options: Any,
    ) -> None:
        """Serve one deployment of this flow (``to_deployment(name, **options)``) until stopped.

        ``name`` defaults to the flow's name. ``pause_on_shutdown`` (default True): when serving
        stops, the deployment's schedules are paused (no runs pile up while nothing serves them);
        False for processes that restart."""
        from tideflow.deployments import serve  # lazy: see the module top

        deployment = self.to_deployment(name if name is not None else self.name, **options)
        serve(deployment, limit=limit, pause_on_shutdown=pause_on_shutdown)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run the flow and return its value; ``return_state=True`` answers its final State."""
        return_state = bool(kwargs.pop("return_state", False)) if kwargs else False
        # lazy: see the module top (a cached import costs well under a microsecond per call)
        if self.isasync:
            from tideflow.engine.async_runner import run_flow_async

            return cast(R, run_flow_async(self, args, kwargs, return_state))
        from tideflow.engine.sync_runner import run_flow_sync

        return cast(R, run_flow_sync(self, args, kwargs, return_state))

    def __repr__(self) -> str:
        return f"Flow(name={self.name!r}, fn={self.__qualname__})"


@overload
def flow(__fn: Callable[P, R]) -> Flow[P, R]: ...


@overload
def flow(
    *,
    name: str | None = None,
    description: str | None = None,
    version: str | None = None,
    log_prints: bool | None = None,
    retries: int = 0,
    retry_delay_seconds: float | Sequence[float] = 0,
    timeout_seconds: float | None = None,
    validate_parameters: bool = True,
    flow_run_name: str | Callable[..., str] | None = None,
    tags: Iterable[str] | None = None,
    on_completion: Iterable[StateHook] | None = None,
    on_failure: Iterable[StateHook] | None = None,
    on_cancellation: Iterable[StateHook] | None = None,
    on_crashed: Iterable[StateHook] | None = None,
    on_running: Iterable[StateHook] | None = None,
    task_runner: TaskRunner | None = None,
) -> Callable[[Callable[P, R]], Flow[P, R]]: ...


def flow(
    __fn: Callable[P, R] | None = None, **options: Any
) -> Flow[P, R] | Callable[[Callable[P, R]], Flow[P, R]]:
    """Make a function a flow: ``@flow`` or ``@flow(name=..., retries=..., ...)``.

    Options: ``name`` (default: the function name with ``_`` → ``-``), ``description`` (default: the
    docstring), ``version``, ``log_prints``, ``retries``, ``retry_delay_seconds`` (a number, or a list with
    one per retry), ``timeout_seconds``, ``validate_parameters``, ``flow_run_name`` (a template over the
    parameters such as ``"etl-{source}"``, or a callable), ``tags``, and the state hooks ``on_completion``,
    ``on_failure``, ``on_cancellation``, ``on_crashed``, ``on_running`` (lists of
    ``hook(flow, flow_run, state)``; ``@my_flow.on_failure`` adds one as a decorator), and
    ``task_runner`` (where ``.submit()``/``.map()`` run tasks; default ``ThreadPoolTaskRunner()``).
    """
    unknown = sorted(set(options) - set(_OPTIONS))
    if unknown:
        raise TypeError(
            f"@flow got unknown option(s) {', '.join(unknown)}; known: {', '.join(_OPTIONS)}"
        )
    if __fn is not None:
        return Flow(__fn, **options)

    def decorator(fn: Callable[P, R]) -> Flow[P, R]:
        return Flow(fn, **options)

    return decorator


# As in Prefect, ``flow.from_source(source, entrypoint=...)`` is reachable from the decorator itself.
flow.from_source = Flow.from_source  # type: ignore[attr-defined]
