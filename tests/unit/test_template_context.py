"""Prefect-style resource access and wrapped parameter forms in action templates (issue 16)."""

from __future__ import annotations

import datetime as dt
import json
from uuid import uuid4

import pytest

from tideflow.schemas.automations import parse_automation
from tideflow.schemas.events import Event
from tideflow.server.triggers.evaluate import Firing
from tideflow.server.triggers.templates import (
    TemplateError,
    automation_template_problems,
    base_context,
    check_template,
    render_value,
)

NOW = dt.datetime(2025, 5, 1, tzinfo=dt.UTC)
RUN_ID = "tideflow.flow-run.9a4c3b3e-0000-4000-8000-000000000001"


def _context() -> dict[str, object]:
    event = Event(
        event="tideflow.flow-run.Completed",
        occurred=NOW,
        resource={"tideflow.resource.id": RUN_ID, "tideflow.resource.name": "happy-cat",
                  "tideflow.state-name": "Completed"},
        related=[
            {"tideflow.resource.id": "tideflow.flow.f1", "tideflow.resource.role": "flow",
             "tideflow.resource.name": "etl"},
            {"tideflow.resource.id": "tideflow.tag.nightly", "tideflow.resource.role": "tag"},
            {"tideflow.resource.id": "tideflow.tag.prod", "tideflow.resource.role": "tag"},
        ],
        payload={"rows": 7},
    )  # fmt: skip
    firing = Firing(
        id=uuid4(),
        trigger_id=uuid4(),
        bucket_key="",
        labels={},
        occurred=NOW,
        fired_at=NOW,
        triggering_event=event,
        event_ids=[event.id],
    )
    return base_context({"name": "auto"}, firing, [event], NOW)


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ event.resource.id }}", RUN_ID),
        ("{{ event.resource.name }}", "happy-cat"),
        ("run {{ event.resource.name }} done", "run happy-cat done"),
        ("{{ event.resource.get('tideflow.state-name') }}", "Completed"),
        ("{{ event.resource.get('missing', 'dflt') }}", "dflt"),
        ("{{ event.resource['tideflow.resource.name'] }}", "happy-cat"),
        ("{{ event.resource.role }}", None),
        ("{{ event.related[0].id }}", "tideflow.flow.f1"),
        ("{{ event.related[0].name }}/{{ event.related[0].role }}", "etl/flow"),
        ("{{ event.related[1].name }}", None),
        ("{{ event.related[0]['tideflow.resource.role'] }}", "flow"),
        ("{{ event.resource_of_role('flow').name }}", "etl"),
        ("{{ event.resources_in_role['tag'] | map(attribute='id') | list }}",
         ["tideflow.tag.nightly", "tideflow.tag.prod"]),
        ("{{ event.involved_resources | length }}", 4),
        ("{{ events[0].resource.name }}", "happy-cat"),
        ("{{ event.resource.labels['tideflow.state-name'] }}", "Completed"),
        # the views stay the event's JSON: the payload, the name, the whole resource
        ("{{ event.payload.rows }}", 7),
        ("{{ event.event }}", "tideflow.flow-run.Completed"),
        ("{{ event.resource }}", {"tideflow.resource.id": RUN_ID,
                                  "tideflow.resource.name": "happy-cat",
                                  "tideflow.state-name": "Completed"}),
        ("{{ event.resource | tojson }}",
         json.dumps({"tideflow.resource.id": RUN_ID, "tideflow.resource.name": "happy-cat",
                     "tideflow.state-name": "Completed"})),
    ],
)  # fmt: skip
def test_resources_read_like_prefects(template: str, expected: object) -> None:
    assert render_value(template, _context()) == expected


@pytest.mark.parametrize(
    ("template", "reason"),
    [
        ("{{ event.resource.update({'x': 1}) }}", r"calls \.update\(\).*read-only"),
        ("{{ event.resource.pop('tideflow.resource.id') }}", r"calls \.pop\(\).*read-only"),
        ("{{ event.resource.__class__ }}", "'__class__' is not available"),
        ("{{ event.resource.__slots__ }}", "'__slots__' is not available"),
        ("{{ event.resource_of_role.__func__ }}", "'__func__' is not available"),
        ("{{ event.setdefault('x', 1) }}", r"calls \.setdefault\(\).*read-only"),
        ("{{ event.resource_of_role('nope') }}", "no related resource with role 'nope'"),
        ("{{ event.resource.owner }}", "no attribute 'owner'"),
    ],
)
def test_the_views_stay_inside_the_sandbox(template: str, reason: str) -> None:
    with pytest.raises(TemplateError, match=reason):
        render_value(template, _context())


def test_the_methods_print_as_names_not_reprs() -> None:
    assert render_value("x {{ event.resource.get }}", _context()) == "x [method get]"


def test_wrapped_forms_are_rendered_not_passed_through() -> None:
    value = {
        "jinja": {"__tideflow_kind": "jinja", "template": "{{ event.resource.name }}-x"},
        "native": {"__tideflow_kind": "jinja", "template": "{{ event.payload.rows }}"},
        "json": {"__tideflow_kind": "json", "value": '{"n": [1, 2], "t": "{{ raw }}"}'},
        "json_data": {"__tideflow_kind": "json", "value": {"k": "{{ not rendered }}"}},
        "none": {"__tideflow_kind": "none", "value": "{{ kept }}"},
        "nested": [{"__tideflow_kind": "jinja", "template": "{{ event.resource.id }}"}],
        "plain": "{{ event.resource.name }}",
    }
    assert render_value(value, _context()) == {
        "jinja": "happy-cat-x",
        "native": 7,
        "json": {"n": [1, 2], "t": "{{ raw }}"},
        "json_data": {"k": "{{ not rendered }}"},
        "none": "{{ kept }}",
        "nested": [RUN_ID],
        "plain": "happy-cat",
    }


def test_a_wrapped_template_error_names_its_path() -> None:
    with pytest.raises(TemplateError, match=r"parameters\.p\.template .*no attribute 'nope'"):
        render_value(
            {"p": {"__tideflow_kind": "jinja", "template": "{{ event.nope }}"}},
            _context(),
            where="parameters",
        )
    with pytest.raises(TemplateError, match=r"parameters\.p\.value: not valid JSON"):
        render_value({"p": {"__tideflow_kind": "json", "value": "{nope"}}, {}, where="parameters")


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ({"__prefect_kind": "jinja", "template": "x"},
         "parameters.p: '__prefect_kind' is Prefect's name; tideflow reads '__tideflow_kind'"),
        ({"__tideflow_kind": "yaml", "value": "x"},
         "parameters.p: unknown __tideflow_kind 'yaml' (one of 'jinja', 'json', 'none')"),
        ({"__tideflow_kind": "jinja"},
         "parameters.p: a __tideflow_kind 'jinja' value needs a 'template' field"),
        ({"__tideflow_kind": "jinja", "template": 3}, "parameters.p.template: must be a string"),
        ({"__tideflow_kind": "json", "value": "[1,"}, "parameters.p.value: not valid JSON"),
        ({"__tideflow_kind": "json", "value": "[" * 100_000}, "parameters.p.value: not valid JSON"),
        ({"__tideflow_kind": "jinja", "template": "{{ secrets.x }}"},
         "parameters.p.template: unknown variable 'secrets'"),
    ],
)  # fmt: skip
def test_wrapped_forms_are_checked_at_save_time(value: object, problem: str) -> None:
    automation = parse_automation(
        {
            "name": "a",
            "trigger": {"type": "event", "expect": ["tideflow.flow-run.Completed"]},
            "actions": [
                {"type": "run-deployment", "source": "inferred", "parameters": {"p": value}}
            ],
        }
    )
    problems = automation_template_problems(automation)
    assert problems and problems[0].startswith(f"actions[0].{problem}"), problems
    assert check_template({"p": value}, where="parameters") is not None


def test_well_formed_wrapped_forms_pass_the_check() -> None:
    value = {
        "a": {"__tideflow_kind": "jinja", "template": "{{ event.resource.name }}"},
        "b": {"__tideflow_kind": "json", "value": '{"x": "{{ literal }}"}'},
        "c": {"__tideflow_kind": "none", "value": {"y": "{{ literal }}"}},
    }
    assert check_template(value, where="parameters") is None
