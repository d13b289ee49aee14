"""Deployment schemas: validation errors, defaults, updates, run requests, filters, parameter merging."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Any

import pytest
from pydantic import ValidationError

from tideflow.parameters import parameter_schema
from tideflow.schemas.deployments import (
    Deployment,
    DeploymentCreate,
    DeploymentFilter,
    DeploymentFlowRunCreate,
    DeploymentStatus,
    DeploymentUpdate,
    check_name,
    deployment_run_parameters,
    merge_parameters,
    split_full_name,
)
from tideflow.schemas.schedules import CronSchedule, IntervalSchedule


def etl(source: str, limit: int = 10) -> None: ...


SCHEMA = parameter_schema(etl)
NOW = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


def make_deployment(**overrides: Any) -> Deployment:
    fields: dict[str, Any] = {
        "id": uuid.uuid4(),
        "name": "nightly",
        "flow_id": uuid.uuid4(),
        "flow_name": "etl",
        "parameters": {"limit": 5},
        "parameter_openapi_schema": SCHEMA,
        "created": NOW,
        "updated": NOW,
    }
    return Deployment(**{**fields, **overrides})


def test_create_with_defaults_and_schedules() -> None:
    create = DeploymentCreate.model_validate(
        {
            "flow_name": "etl",
            "name": "nightly",
            "schedules": [
                {"schedule": {"cron": "0 2 * * *", "timezone": "Europe/Paris"}},
                {"schedule": {"interval": 300}, "active": False},
            ],
            "tags": ["a", "b", "a"],
        }
    )
    assert isinstance(create.schedules[0].schedule, CronSchedule)
    assert (
        isinstance(create.schedules[1].schedule, IntervalSchedule)
        and not create.schedules[1].active
    )
    assert create.tags == ["a", "b"]  # duplicates dropped, order kept
    assert create.enforce_parameter_schema is True and create.paused is False
    assert create.concurrency_limit is None and create.triggers == [] and create.job_variables == {}


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"name": ""}, "String should have at least 1 character"),
        ({"name": "  "}, "deployment name must not be empty"),
        ({"name": "a/b"}, "deployment name 'a/b' must not contain '/'"),
        ({"flow_name": "x/y"}, "flow name 'x/y' must not contain '/'"),
        ({"name": " padded"}, "must not start or end with whitespace"),
        ({"concurrency_limit": 0}, "greater than or equal to 1"),
        ({"tags": ["ok", " "]}, "tags must not be empty"),
        (
            {"schedules": [{"schedule": {"cron": "0 25 * * *"}}]},
            "invalid cron expression '0 25 * * *'",
        ),
        ({"sheduls": []}, "Extra inputs are not permitted"),
        (
            {"parameters": {"limt": 1}, "parameter_openapi_schema": SCHEMA},
            "invalid default parameters: unknown parameter 'limt'; the flow takes: source, limit",
        ),
        (
            {"parameters": {"limit": "ten"}, "parameter_openapi_schema": SCHEMA},
            "invalid default parameters: parameter 'limit': expected integer, got string 'ten'",
        ),
    ],
)
def test_create_validation_errors_name_the_problem(fields: dict[str, Any], words: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(words)):
        DeploymentCreate.model_validate({"flow_name": "etl", "name": "nightly", **fields})


def test_defaults_may_leave_required_parameters_to_the_run() -> None:
    create = DeploymentCreate(
        flow_name="etl", name="n", parameters={"limit": 3}, parameter_openapi_schema=SCHEMA
    )
    assert create.parameters == {"limit": 3}
    loose = DeploymentCreate(
        flow_name="etl",
        name="n",
        parameters={"anything": 1},
        parameter_openapi_schema=SCHEMA,
        enforce_parameter_schema=False,
    )
    assert loose.parameters == {"anything": 1}


def test_update_carries_only_what_was_sent() -> None:
    update = DeploymentUpdate.model_validate({"paused": True, "concurrency_limit": None})
    assert update.model_dump(exclude_unset=True) == {"paused": True, "concurrency_limit": None}
    sched = DeploymentUpdate.model_validate({"schedules": [{"schedule": {"rrule": "FREQ=DAILY"}}]})
    assert sched.model_dump(exclude_unset=True)["schedules"][0]["schedule"]["type"] == "rrule"
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        DeploymentUpdate.model_validate({"name": "renamed"})
    with pytest.raises(ValidationError, match=re.escape("parameter 'limit': expected integer")):
        DeploymentUpdate(parameters={"limit": "x"}, parameter_openapi_schema=SCHEMA)


def test_deployment_object_reads_rows_and_has_full_name() -> None:
    dep = make_deployment(schedules=[{"schedule": {"cron": "*/5 * * * *"}}], status="READY")
    assert dep.full_name == "etl/nightly"
    assert dep.status is DeploymentStatus.READY
    assert dep.schedules[0].active is True
    again = Deployment.model_validate_json(dep.model_dump_json())
    assert again == dep

    class Row:  # an ORM row: attributes, not a dict
        def __init__(self) -> None:
            for key, value in dep.model_dump().items():
                setattr(self, key, value)

    assert Deployment.model_validate(Row()) == dep


def test_flow_run_create_from_a_deployment() -> None:
    run = DeploymentFlowRunCreate.model_validate(
        {
            "parameters": {"source": "s3://b"},
            "scheduled_time": "2024-03-31T02:30:00",
            "created_by": {"type": "user", "id": "tideflow.user.me"},
        }
    )
    assert run.scheduled_time == dt.datetime(2024, 3, 31, 2, 30, tzinfo=dt.UTC)  # naive is UTC
    paris = DeploymentFlowRunCreate(
        scheduled_time=dt.datetime(2024, 7, 1, 12, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    )
    assert paris.scheduled_time == dt.datetime(2024, 7, 1, 10, tzinfo=dt.UTC)
    assert DeploymentFlowRunCreate().scheduled_time is None
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        DeploymentFlowRunCreate.model_validate({"params": {}})


def test_filter_defaults_and_bounds() -> None:
    f = DeploymentFilter(flow_name=["etl"], paused=False, status=DeploymentStatus.READY)
    assert (f.limit, f.offset) == (100, 0)
    with pytest.raises(ValidationError, match="less than or equal to 1000"):
        DeploymentFilter(limit=5000)
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        DeploymentFilter.model_validate({"tag": ["x"]})


def test_merge_parameters_is_shallow_and_pure() -> None:
    defaults = {"limit": 5, "options": {"a": 1, "b": 2}}
    overrides = {"options": {"a": 9}, "source": "x"}
    merged = merge_parameters(defaults, overrides)
    assert merged == {"limit": 5, "options": {"a": 9}, "source": "x"}
    assert defaults == {"limit": 5, "options": {"a": 1, "b": 2}} and overrides == {
        "options": {"a": 9},
        "source": "x",
    }
    assert merge_parameters({}, {}) == {}
    assert merge_parameters({"x": 1}, {"x": None}) == {"x": None}  # an explicit null overrides


def test_deployment_run_parameters_checks_the_merged_set() -> None:
    dep = make_deployment()
    assert deployment_run_parameters(dep, {"source": "s"}) == ({"limit": 5, "source": "s"}, [])
    assert deployment_run_parameters(dep, {}) == (
        {"limit": 5},
        ["missing required parameter 'source'"],
    )
    assert deployment_run_parameters(dep, {"source": "s", "limit": "x"})[1] == [
        "parameter 'limit': expected integer, got string 'x'"
    ]
    loose = make_deployment(enforce_parameter_schema=False)
    assert deployment_run_parameters(loose, {"whatever": 1}) == ({"limit": 5, "whatever": 1}, [])


def test_names() -> None:
    assert split_full_name("upstream-flow/upstream_deployment") == (
        "upstream-flow",
        "upstream_deployment",
    )
    for bad in ("no-slash", "/dep", "flow/", "a/b/c"):
        with pytest.raises(
            ValueError,
            match=re.escape(f"deployment {bad!r} must be given as 'flow-name/deployment-name'"),
        ):
            split_full_name(bad)
    assert check_name("ok-name") == "ok-name"
    with pytest.raises(ValueError, match="name 'a/b' must not contain '/'"):
        check_name("a/b")
