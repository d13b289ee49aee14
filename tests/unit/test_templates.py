"""Sandboxed templates: native types, text, strict errors naming the template, parse checks, escapes."""

from __future__ import annotations

import datetime as dt
from uuid import uuid4

import pytest

from tideflow.schemas.automations import parse_automation
from tideflow.schemas.events import Event
from tideflow.server.triggers.evaluate import Firing
from tideflow.server.triggers.templates import (
    MAX_OUTPUT,
    TemplateError,
    automation_template_problems,
    base_context,
    check_template,
    render_value,
)

CTX = {
    "event": {
        "event": "tideflow.flow-run.Completed",
        "payload": {"rows": 5, "ok": True, "tables": {"a": [1, 2]}, "name": "Sales"},
    },
    "labels": {"k": "v"},
}


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ event.payload.rows }}", 5),
        ("  {{ event.payload.rows }}\n", 5),
        ("{{ event.payload.ok }}", True),
        ("{{ event.payload.tables }}", {"a": [1, 2]}),
        ("{{ event.payload.tables.a }}", [1, 2]),
        ("{{ event.payload.rows * 2 }}", 10),
        ("{{ event.payload.missing | default(none) }}", None),
        ("{{ event.payload.name | lower }}", "sales"),
        ("rows: {{ event.payload.rows }}", "rows: 5"),
        ("{{ event.payload.rows }}{{ event.payload.rows }}", "55"),
        ("{% if event.payload.ok %}yes{% endif %}", "yes"),
        ("{% for k in event.payload.tables %}{{ k }}{% endfor %}", "a"),
        ("{{ event.payload.get('rows') }}", 5),
        (
            "{{ event.payload | tojson }}",
            '{"name": "Sales", "ok": true, "rows": 5, "tables": {"a": [1, 2]}}',
        ),
        ("no template", "no template"),
    ],
)
def test_render_values(template: str, expected: object) -> None:
    assert render_value(template, CTX) == expected


def test_render_value_recurses_and_keeps_non_strings() -> None:
    value = {
        "rows": "{{ event.payload.rows }}",
        "nested": ["{{ labels.k }}", 3, None],
        "flag": False,
    }
    assert render_value(value, CTX) == {"rows": 5, "nested": ["v", 3, None], "flag": False}


def test_missing_attribute_is_an_error_naming_the_template() -> None:
    with pytest.raises(TemplateError) as info:
        render_value({"p": {"rows": "{{ event.payload.rowz }}"}}, CTX, where="parameters")
    message = str(info.value)
    assert (
        message
        == "template parameters.p.rows ('{{ event.payload.rowz }}'): 'dict object' has no attribute 'rowz'"
    )
    assert "\n" not in message
    with pytest.raises(TemplateError, match="'nope' is undefined"):
        render_value("x {{ nope }}", CTX)


def test_syntax_error() -> None:
    with pytest.raises(TemplateError, match="template value"):
        render_value("{{ event.payload.rows ", CTX)


def test_check_template_parses_without_rendering() -> None:
    assert (
        check_template({"a": "{{ event.payload.whatever_at_runtime }}", "b": [1, "plain"]}) is None
    )
    assert check_template({"a": ["ok", "{% for x in y %}"]}, where="parameters") == (
        "parameters.a[1]: Unexpected end of template. Jinja was looking for the following tags: 'endfor' or 'else'. The innermost block that needs to be closed is 'for'."
    )
    assert check_template("{{ evnt.payload }}", where="body") == (
        "body: unknown variable 'evnt' (templates can use automation, deployment, event, events, firing, flow, flow_run, labels, variables)"
    )
    assert "include" in (check_template("{% include 'x' %}") or "")


def test_output_cap() -> None:
    ctx = {"event": {"payload": {"s": "x" * 100_000}}}
    template = "{% for i in range(11) %}{{ event.payload.s }}{% endfor %}"
    with pytest.raises(TemplateError, match=f"output is above the limit of {MAX_OUTPUT}"):
        render_value(template, ctx)


def test_loop_limits() -> None:
    with pytest.raises(TemplateError, match="range"):
        render_value("{% for i in range(100000) %}{% endfor %}", CTX)
    with pytest.raises(TemplateError, match="at most 1000 items"):
        render_value(
            "{% for c in event.payload.s %}{% endfor %}", {"event": {"payload": {"s": "x" * 5000}}}
        )
    with pytest.raises(TemplateError, match="nest deeper than 2"):
        render_value(
            "{% for a in [1] %}{% for b in [1] %}{% for c in [1] %}{% endfor %}{% endfor %}{% endfor %}",
            CTX,
        )


ESCAPES = [
    "{{ ''.__class__ }}",
    "{{ ''.__class__.__mro__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ event.__class__.__init__.__globals__ }}",
    "{{ event|attr('__class__') }}",
    "{{ event|attr('__init__') }}",
    "{{ (event|attr('__init__'))|attr('__globals__') }}",
    "{{ event.payload.get.__globals__ }}",
    "{{ event.payload.items.__self__ }}",
    "{{ '{0.__class__}'.format(event) }}",
    "{{ '{0.__init__.__globals__}'.format(event) }}",
    "{{ '%s' % event.payload.items }}",
    "{{ event.payload.items ~ '' }}",
    "{{ event.payload.items|string }}",
    "{{ event.payload.items }}",
    "{{ cycler }}",
    "{{ cycler.__init__.__globals__.os }}",
    "{{ lipsum.__globals__ }}",
    "{{ joiner }}",
    "{{ namespace }}",
    "{{ range }}",
    "{{ range.__class__ }}",
    "{{ self }}",
    "{{ self._TemplateReference__context }}",
    "{% include '/etc/passwd' %}",
    "{% import 'os' as os %}{{ os }}",
    "{% from 'x' import y %}",
    "{% extends 'base' %}",
    "{{ config }}",
    "{{ request }}",
    "{{ event.payload.update({'x': 1}) }}",
    "{{ event.payload.tables.a.append(3) }}",
    "{{ 'a' * 100000000 }}",
    "{{ 9 ** 99999999 }}",
    "{% macro m() %}{% endmacro %}{{ m }}",
    "{{ event.payload|map('upper') }}",
    "{{ [].__class__.__base__ }}",
    "{{ ().__class__.__bases__[0].__subclasses__() }}",
]


@pytest.mark.parametrize("template", ESCAPES)
def test_sandbox_escapes_fail_or_render_inert(template: str) -> None:
    ctx = {"event": {"payload": {"rows": 5, "tables": {"a": [1, 2]}}}}
    try:
        out = render_value(template, ctx)
    except TemplateError:
        assert ctx == {
            "event": {"payload": {"rows": 5, "tables": {"a": [1, 2]}}}
        }  # nothing mutated
        return
    text = str(out)
    for leak in ("<class", "<function", "<built-in", "<bound method", "<module", " at 0x"):
        assert leak not in text, (template, text)
    assert ctx == {"event": {"payload": {"rows": 5, "tables": {"a": [1, 2]}}}}


def test_corpus_size() -> None:
    assert len(ESCAPES) >= 20


def test_automation_template_problems_name_action_and_field() -> None:
    automation = parse_automation(
        {
            "name": "a",
            "trigger": {"type": "event", "expect": ["x"]},
            "actions": [
                {
                    "type": "run-deployment",
                    "deployment_id": str(uuid4()),
                    "parameters": {"n": "{{ event.payload.n "},
                },
                {
                    "type": "call-webhook",
                    "url": "https://example.org/hook",
                    "body": {"text": "{{ evnt }}"},
                },
            ],
            "actions_on_resolve": [
                {"type": "change-flow-run-state", "state": "FAILED", "message": "{{ event.event }}"}
            ],
        }
    )
    problems = automation_template_problems(automation)
    assert len(problems) == 2
    assert problems[0].startswith("actions[0].parameters.n: unexpected end of template")
    assert problems[1].startswith("actions[1].body.text: unknown variable 'evnt'")


def test_base_context_renders_the_triggering_event() -> None:
    now = dt.datetime(2025, 5, 1, tzinfo=dt.UTC)
    event = Event(
        event="e", occurred=now, resource={"tideflow.resource.id": "r"}, payload={"rows": 7}
    )
    firing = Firing(
        id=uuid4(),
        trigger_id=uuid4(),
        bucket_key="",
        labels={"k": "v"},
        occurred=now,
        fired_at=now,
        triggering_event=event,
        event_ids=[event.id],
    )
    ctx = base_context({"name": "auto"}, firing, [event], now)
    assert render_value(
        {
            "rows": "{{ event.payload.rows }}",
            "who": "{{ automation.name }}/{{ labels.k }}",
            "n": "{{ events|length }}",
        },
        ctx,
    ) == {
        "rows": 7,
        "who": "auto/v",
        "n": 1,
    }
