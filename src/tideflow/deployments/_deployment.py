"""``RunnerDeployment``: a flow plus the deployment to register for it, built by ``Flow.to_deployment``.

Everything a user can get wrong (names, schedules, default parameters, trigger wiring) is checked
here, when the deployment is built, with one error naming the problem, so ``serve()`` never starts
with a deployment the server would refuse.
"""

from __future__ import annotations

import datetime as dt
import functools
import importlib
import sys
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import Field, TypeAdapter, ValidationError

from tideflow.parameters import parameter_schema
from tideflow.schemas.deployments import ConcurrencyLimitConfig, DeploymentCreate
from tideflow.schemas.schedules import (
    CronSchedule,
    DeploymentScheduleCreate,
    IntervalSchedule,
    RRuleSchedule,
)

__all__ = ["RunnerDeployment", "build_deployment", "coerce_schedules", "coerce_triggers"]


@functools.cache
def _trigger_adapter() -> TypeAdapter[Any]:
    # The trigger schemas cost ~50 ms to import; only dict triggers need them here (trigger objects
    # arrive with them loaded), so `from tideflow import flow` does not pay for them.
    events = importlib.import_module("tideflow.events")
    union = (
        events.DeploymentEventTrigger
        | events.DeploymentCompoundTrigger
        | events.DeploymentSequenceTrigger
    )
    return TypeAdapter(Annotated[union, Field(discriminator="type")])  # type: ignore[arg-type]


def _trigger(item: Any) -> Any:
    if hasattr(item, "check_wiring") and hasattr(item, "as_automation"):
        return item
    if isinstance(item, Mapping):
        return _trigger_adapter().validate_python(item)
    raise ValueError(
        "a trigger must be a DeploymentEventTrigger, DeploymentCompoundTrigger, "
        f"DeploymentSequenceTrigger or a dict, got {item!r}"
    )


_SCHEDULE_ITEM = TypeAdapter(DeploymentScheduleCreate)


@dataclass(frozen=True)
class RunnerDeployment:
    """A flow and the deployment ``serve()`` registers for it (``create`` is the upsert body)."""

    flow: Any
    create: DeploymentCreate

    @property
    def name(self) -> str:
        return self.create.name

    @property
    def full_name(self) -> str:
        """``flow-name/deployment-name``, as the CLI addresses it."""
        return f"{self.create.flow_name}/{self.create.name}"


def _errors(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err.get("loc", ()))
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Iterable):
        return [value]
    return list(value)


def _interval(value: Any) -> IntervalSchedule:
    if isinstance(value, IntervalSchedule):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float | dt.timedelta):
        raise ValueError(f"interval must be seconds or a timedelta, got {value!r}")
    seconds = value.total_seconds() if isinstance(value, dt.timedelta) else float(value)
    return IntervalSchedule(interval=dt.timedelta(seconds=seconds))


def _schedule_item(value: Any) -> DeploymentScheduleCreate:
    if isinstance(value, DeploymentScheduleCreate):
        return value
    if isinstance(value, CronSchedule | IntervalSchedule | RRuleSchedule):
        return DeploymentScheduleCreate(schedule=value)
    if isinstance(value, Mapping):
        data = dict(value)
        if "schedule" not in data:
            active = data.pop("active", True)
            data = {"schedule": data, "active": active}
        return _SCHEDULE_ITEM.validate_python(data)
    raise ValueError(
        f"a schedule must be a CronSchedule, IntervalSchedule, RRuleSchedule or a dict, got {value!r}"
    )


def coerce_schedules(
    cron: Any = None, interval: Any = None, rrule: Any = None, schedules: Any = None
) -> list[DeploymentScheduleCreate]:
    """The deployment's schedules from the ``cron``/``interval``/``rrule``/``schedules`` arguments.

    ``cron`` is a cron string (or a list of them), ``interval`` seconds or a timedelta (or a list),
    ``rrule`` an RRULE string (or a list); ``schedules`` a list of schedule objects or dicts. All may
    be combined. A bad value raises ValueError naming it.
    """
    out: list[DeploymentScheduleCreate] = []
    try:
        for expr in _as_list(cron):
            sched = expr if isinstance(expr, CronSchedule) else CronSchedule(cron=expr)
            out.append(DeploymentScheduleCreate(schedule=sched))
        for value in _as_list(interval):
            out.append(DeploymentScheduleCreate(schedule=_interval(value)))
        for text in _as_list(rrule):
            rule = text if isinstance(text, RRuleSchedule) else RRuleSchedule(rrule=text)
            out.append(DeploymentScheduleCreate(schedule=rule))
        for item in _as_list(schedules):
            out.append(_schedule_item(item))
    except ValidationError as exc:
        raise ValueError(f"invalid schedule: {_errors(exc)}") from None
    return out


def coerce_triggers(triggers: Any, parameter_names: set[str]) -> list[dict[str, Any]]:
    """Deployment triggers (objects or dicts) as JSON dicts, after checking their wiring to the flow."""
    out: list[dict[str, Any]] = []
    problems: list[str] = []
    for i, item in enumerate(_as_list(triggers)):
        try:
            trigger = _trigger(item)
        except ValidationError as exc:
            raise ValueError(f"invalid trigger {i}: {_errors(exc)}") from None
        problems.extend(trigger.check_wiring(parameter_names))
        out.append(trigger.model_dump(mode="json"))
    if problems:
        raise ValueError("; ".join(problems))
    for i, dumped in enumerate(out):
        for path in _empty_expects(dumped, f"trigger {i}"):
            # A deployment trigger always runs its deployment: with no events named it matches
            # the events of the runs it starts too (the server stops that loop at a small depth).
            warnings.warn(
                f"{path} has an empty expect, so it matches every event, including the events of "
                "the runs it starts: it feeds itself (the server stops it after "
                "TIDEFLOW_AUTOMATIONS_MAX_CAUSAL_DEPTH firings). Name the events to expect, e.g. "
                "{'tideflow.flow-run.Completed'}",
                UserWarning,
                stacklevel=4,
            )
        for path, name in _foreign_names(dumped, f"trigger {i}"):
            # Kept from a Prefect project, such a name never matches: our events are tideflow.*.
            warnings.warn(
                f"{path} names {name!r}, an event tideflow never emits; did you mean "
                f"{'tideflow.' + name.partition('.')[2]!r}?",
                UserWarning,
                stacklevel=4,
            )
    return out


def _foreign_names(trigger: Mapping[str, Any], path: str) -> list[tuple[str, str]]:
    """``(path, name)`` of every ``prefect.*`` name in the expect/after of ``trigger``."""
    out: list[tuple[str, str]] = []
    for field in ("expect", "after"):
        names = trigger.get(field)
        if isinstance(names, list):
            out += [
                (f"{path}.{field}", n)
                for n in sorted(n for n in names if isinstance(n, str) and n.startswith("prefect."))
            ]
    children = trigger.get("triggers")
    if isinstance(children, list):
        for j, child in enumerate(children):
            if isinstance(child, Mapping):
                out += _foreign_names(child, f"{path}.triggers[{j}]")
    return out


def _empty_expects(trigger: Mapping[str, Any], path: str) -> list[str]:
    children = trigger.get("triggers")
    if isinstance(children, list):
        return [
            p
            for j, child in enumerate(children)
            if isinstance(child, Mapping)
            for p in _empty_expects(child, f"{path}.triggers[{j}]")
        ]
    return [path] if "expect" in trigger and not trigger["expect"] else []


def _entrypoint(flow: Any) -> str | None:
    """``path/to/file.py:name``: where a fresh interpreter finds the flow (the spawn fallback)."""
    module = sys.modules.get(getattr(flow.fn, "__module__", ""))
    path = getattr(module, "__file__", None)
    if not path:
        return None
    names = [k for k, v in vars(module).items() if v is flow]
    return f"{path}:{names[0] if names else flow.fn.__name__}"


def build_deployment(
    flow: Any,
    name: str,
    *,
    parameters: Mapping[str, Any] | None = None,
    description: str | None = None,
    version: str | None = None,
    tags: Iterable[str] | None = None,
    cron: Any = None,
    interval: Any = None,
    rrule: Any = None,
    schedules: Any = None,
    paused: bool = False,
    concurrency_limit: int | ConcurrencyLimitConfig | None = None,
    triggers: Any = None,
    job_variables: Mapping[str, Any] | None = None,
    enforce_parameter_schema: bool = True,
) -> RunnerDeployment:
    """The deployment of ``flow`` named ``name``; ValueError naming the first problem found."""
    if isinstance(tags, str):
        raise ValueError(
            f"deployment {name!r}: tags must be a list of strings, got the string {tags!r}"
        )
    schema = parameter_schema(flow.fn)
    names = set(flow.parameter_schema.signature.parameters)
    unknown = sorted(set(parameters or {}) - names)
    if unknown:
        has = ", ".join(sorted(names)) or "none"
        raise ValueError(
            f"deployment {name!r}: {unknown[0]!r} is not a parameter of flow {flow.name!r} "
            f"(its parameters: {has})"
        )
    try:
        create = DeploymentCreate(
            flow_name=flow.name,
            name=name,
            description=description if description is not None else flow.description,
            version=version if version is not None else flow.version,
            tags=list(tags or []),
            parameters=dict(parameters or {}),
            parameter_openapi_schema=schema,
            enforce_parameter_schema=enforce_parameter_schema,
            schedules=coerce_schedules(cron, interval, rrule, schedules),
            paused=paused,
            concurrency_limit=concurrency_limit,
            triggers=coerce_triggers(triggers, names),
            job_variables=dict(job_variables or {}),
            entrypoint=_entrypoint(flow),
        )
    except ValidationError as exc:
        raise ValueError(f"deployment {name!r}: {_errors(exc)}") from None
    except ValueError as exc:
        raise ValueError(f"deployment {name!r}: {exc}") from None
    return RunnerDeployment(flow=flow, create=create)
