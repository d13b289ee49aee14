"""The pure part of metric triggers: the query's validation (timedeltas, operators), which runs a
trigger measures, the three measures, and the breach state machine (fires once per breach after
``firing_for``, resolves when it ends, never fires again while a firing is open)."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from pydantic import TypeAdapter, ValidationError

from tideflow.events import MetricTrigger, MetricTriggerQuery
from tideflow.schemas.automations import AutomationCreate, AutomationTrigger
from tideflow.server.triggers.metrics import (
    BreachState,
    RunSample,
    firing_id,
    matches,
    metric_value,
    resolution_id,
    run_labels,
    step,
)

NOW = dt.datetime(2026, 12, 3, 12, tzinfo=dt.UTC)


def _sample(state: str = "COMPLETED", *, took: float = 1.0, late: float | None = None,
            started: bool = True, flow: str = "etl", tags: tuple[str, ...] = ()) -> RunSample:  # fmt: skip
    run_id = uuid.uuid4()
    resource, related = run_labels(
        run_id=run_id, name="r", state_type=state, flow_id=uuid.uuid4(), flow_name=flow,
        deployment_id=uuid.uuid4(), deployment_name="nightly", tags=list(tags),
    )  # fmt: skip
    expected = NOW - dt.timedelta(seconds=late) if late is not None else None
    start = NOW if started else None
    return RunSample(
        run_id=run_id, state_type=state, start_time=start,
        end_time=NOW if state in ("COMPLETED", "FAILED", "CRASHED") else None,
        expected_start_time=expected, total_run_time=took, resource=resource, related=related,
    )  # fmt: skip


def test_query_and_trigger_parse_like_prefects() -> None:
    trigger = MetricTrigger(
        metric=MetricTriggerQuery(name="successes", threshold=0.9, operator="<",
                                  range=dt.timedelta(hours=1), firing_for=dt.timedelta(minutes=5)),
        match_related={"tideflow.resource.role": "flow", "tideflow.resource.name": "etl"},
    )  # fmt: skip
    assert trigger.metric.range == 3600 and trigger.metric.firing_for == 300
    assert len(trigger.match_related) == 1
    parsed = TypeAdapter(AutomationTrigger).validate_python(trigger.model_dump(mode="json"))
    assert isinstance(parsed, MetricTrigger)
    AutomationCreate(name="m", trigger=trigger, actions=[{"type": "do-nothing"}])
    for bad in ({"name": "throughput"}, {"operator": "=="}, {"range": 0}):
        with pytest.raises(ValidationError):
            MetricTriggerQuery(**{"name": "duration", "threshold": 1, "operator": ">", **bad})


def test_match_and_measures() -> None:
    trigger = MetricTrigger(
        metric=MetricTriggerQuery(name="successes", threshold=0.5, operator="<"),
        match_related=[{"tideflow.resource.role": "flow", "tideflow.resource.name": "etl"}],
    )  # fmt: skip
    assert matches(trigger, _sample())
    assert not matches(trigger, _sample(flow="other"))
    tagged = MetricTrigger(metric=trigger.metric, match_related=[
        {"tideflow.resource.role": "flow", "tideflow.resource.name": "etl"},
        {"tideflow.resource.role": "tag", "tideflow.resource.id": "tideflow.tag.prod"}])  # fmt: skip
    assert matches(tagged, _sample(tags=("prod",))) and not matches(tagged, _sample())

    runs = [_sample("COMPLETED", took=10), _sample("FAILED", took=30), _sample("CRASHED", took=20),
            _sample("COMPLETED", took=40)]  # fmt: skip
    successes = MetricTriggerQuery(name="successes", threshold=0.5, operator="<")
    assert metric_value(successes, runs, NOW) == 0.5
    assert metric_value(successes, [], NOW) is None  # no runs is not a 0 % success rate
    duration = MetricTriggerQuery(name="duration", threshold=20, operator=">")
    assert metric_value(duration, runs, NOW) == 25
    lateness = MetricTriggerQuery(name="lateness", threshold=60, operator=">")
    waiting = [_sample("SCHEDULED", late=300, started=False), _sample("RUNNING", late=100)]
    assert metric_value(lateness, waiting, NOW) == 200


def test_breach_fires_once_then_resolves() -> None:
    q = MetricTriggerQuery(name="duration", threshold=10, operator=">", firing_for=60)
    state, action = step(q, BreachState(), 20, NOW)
    assert action is None and state.breaching_since == NOW
    state, action = step(q, state, 20, NOW + dt.timedelta(seconds=30))
    assert action is None
    state, action = step(q, state, 20, NOW + dt.timedelta(seconds=60))
    assert action == "fire"
    fired = firing_id(uuid.UUID(int=1), None)
    state = BreachState(state.breaching_since, fired)  # recorded
    for later in (61, 600, 6000):
        state, action = step(q, state, 99, NOW + dt.timedelta(seconds=later))
        assert action is None  # an open firing is never fired again
    state, action = step(q, state, 5, NOW + dt.timedelta(seconds=7000))
    assert action == "resolve" and state.open_firing == fired
    state, action = step(q, BreachState(), None, NOW)
    assert action is None and state == BreachState()
    # The next breach's id follows from the resolution: replicas agree, a repeat is a duplicate.
    again = firing_id(uuid.UUID(int=1), resolution_id(fired))
    assert again == firing_id(uuid.UUID(int=1), resolution_id(fired)) != fired
