"""Template resource bounds: every hostile payload of the hardening issue stops quickly with a
reason naming the limit; the save-time check answers instead of crashing; normal templates work."""

from __future__ import annotations

import asyncio
import re
import time

import pytest

from tideflow.schemas.automations import parse_automation
from tideflow.server.triggers.templates import (
    TemplateError,
    TemplateLimits,
    arender_value,
    automation_template_problems,
    check_template,
    render_value,
)

CTX = {"event": {"payload": {"s": "x" * 1000, "rows": 5, "name": "Sales"}}}
LIMITS = TemplateLimits(timeout=1.0, max_output=2**20)
# Time-limit cases run under a short limit; their templates would run for minutes at any speed.
TIME_LIMITS = TemplateLimits(timeout=0.25, max_output=2**20)
TOO_BIG = "above the limit of 1048576 (TIDEFLOW_TEMPLATES_MAX_OUTPUT)"
TOO_LONG = "rendering exceeded the time limit of 0.25 seconds (TIDEFLOW_TEMPLATES_RENDER_TIMEOUT)"
RECURSIVE = (
    "{% for x in range(1000) recursive %}{{ loop(range(1000)) if loop.depth < 9 else '' }}"
    "{% endfor %}"
)
NESTED = (  # a million iterations printing nothing (printing would hit the output cap first)
    "{% for i in range(1000) %}{% for j in range(1000) %}{% if i + j < 0 %}x{% endif %}"
    "{% endfor %}{% endfor %}"
)

# (template, text the error must contain): each would build >= 100 MB or run for hours unbounded.
HOSTILE = [
    (RECURSIVE, TOO_LONG),
    (
        "{% for x in range(1000) recursive %}{{ loop(range(1000)) }}{% endfor %}",
        "a recursive loop may nest at most 10 deep",
    ),
    (
        NESTED,
        TOO_LONG,
    ),
    (
        "{{ ('x' * 10000)|replace('x', 'y' * 10000) }}",
        f"|replace would build 100000000 characters, {TOO_BIG}",
    ),
    (
        "{{ ('x' * 10000).replace('x', 'y' * 10000) }}",
        f"replace() would build 100000000 characters, {TOO_BIG}",
    ),
    ("{{ '%0100000000d' % 1 }}", "'%' would build 1000000"),
    ("{{ '%*d' % (100000000, 1) }}", "'%' would build 1000000"),
    ("{{ '%.100000000f' % 1.5 }}", "'%' would build 1000000"),
    ("{{ '%0100000000d'|format(1) }}", "|format would build 1000000"),
    ("{{ '{:>100000000}'.format(1) }}", "format() would build 1000000"),
    ("{{ '{:>{}}'.format(1, 100000000) }}", "format() would build 1000000"),
    ("{{ '{a:>100000000}'.format_map({'a': 1}) }}", "format() would build 1000000"),
    ("{{ ('x' * 100000)|join('y' * 1000) }}", "|join would build 1007"),
    ("{{ ('y' * 1000).join('x' * 100000) }}", "join() would build 1004"),
    ("{{ 'x'.center(100000000) }}", f"center() would build 100000000 characters, {TOO_BIG}"),
    ("{{ 'x'.ljust(100000000) }}", "ljust() would build 100000000 characters"),
    ("{{ 'x'.rjust(100000000) }}", "rjust() would build 100000000 characters"),
    ("{{ 'x'.zfill(100000000) }}", "zfill() would build 100000000 characters"),
    ("{{ ('\t' * 1000).expandtabs(100000) }}", "expandtabs() would build"),
    ("{{ ('x' * 100000).translate({120: 'y' * 1000}) }}", "translate() would build"),
    ("{{ (1).to_bytes(1000000000, 'big') }}", "to_bytes() would build 1000000000 bytes"),
    ("{{ ('x ' * 40000)|wordwrap(1, wrapstring='y' * 1000) }}", "|wordwrap would build"),
    ("{{ [1]|batch(100000000, 0)|list }}", "|batch would build 100000000 items"),
    ("{{ [1]|slice(100000000)|list }}", "|slice(100000000) is above the limit of 1000"),
    ("{{ [[[[1]]]]|tojson(indent=100000000) }}", "|tojson indent would build 100000000"),
    (
        "{% set a = ['x' * 100000] * 10 %}{% set b = [a, a, a, a, a, a, a, a, a, a] %}{{ b }}",
        "printing a value would build",
    ),
    (
        "{% set a = ['x' * 100000] * 10 %}{{ [a, a, a, a, a, a, a, a, a, a]|tojson }}",
        "|tojson would build",
    ),
    ("{{ [['x' * 100000] * 10] * 10 }}", "'*' would build"),
    (
        "{{ [" + ", ".join(["event.payload.s * 100"] * 11) + "] }}",
        "output is above the limit of 1048576 characters",
    ),
    (
        "{{ ([''] * 100000)|map('default', event.payload.s * 100, true)|list }}",
        "characters in all",
    ),
    (
        "{% set b = ['x'] * 100000 %}{% set e = b[:-1] + ['y'] %}"
        "{{ e in [" + ", ".join(["b"] * 100) + "] }}",
        "a comparison would build",
    ),
    ("{% set b = [['x'] * 100000] %}{{ (b * 100)|sort }}", "'*' would build"),
    (
        "{% set b = ['x'] * 100000 %}{% set e = b[:-1] + ['y'] %}"
        "{{ e is in([" + ", ".join(["b"] * 100) + "]) }}",
        "a comparison would build",
    ),
    ("{{ [1]|batch(100000, event.payload.s) }}", "|batch fill_with would build"),
    (
        "{% set a = 'x' * 100000 %}{% set b = a ~ a %}{% set c = b ~ b %}{% set d = c ~ c %}"
        "{% set e = d ~ d %}{{ e|length }}",
        "'~' would build 1600000",
    ),
    (
        "{% set a = 'x' * 100000 %}{% set b = a + a %}{% set c = b + b %}{% set d = c + c %}"
        "{% set e = d + d %}{{ e|length }}",
        "'+' would build 1600000",
    ),
    (
        "{% set q %}{% for i in range(1000) %}{% for j in range(1000) %}{{ event.payload.s }}"
        "{% endfor %}{% endfor %}{% endset %}{{ q|length }}",
        "characters in all",
    ),
    ("{{ (2 ** 4000) * (2 ** 4000) }}", "'*' result would exceed 4096 bits"),
    ("{{ 1.5|round(10000000, 'ceil') }}", "|round precision 10000000 is above the limit of 400"),
    ("{{ event.payload.s|list|list|join * 1000 }}", "'*' would build 1000000 items"),
    ("{{ (('x' * 100000) + ('x' * 100000))|list }}", "|list of 200000 characters is above"),
    ("{{ (('x ' * 50000) + ('x ' * 50000))|urlize }}", "|urlize of 200000 characters is above"),
]


@pytest.mark.parametrize(("template", "reason"), HOSTILE)
def test_hostile_templates_stop_quickly_naming_the_limit(template: str, reason: str) -> None:
    started = time.monotonic()
    with pytest.raises(TemplateError) as info:
        limits = TIME_LIMITS if reason == TOO_LONG else LIMITS
        render_value({"text": template}, CTX, where="body", limits=limits)
    assert time.monotonic() - started < 10  # a generous liveness bound; unbounded took hours
    message = str(info.value)
    assert message.startswith("template body.text (")
    assert reason in message
    assert "\n" not in message


def test_limits_are_configurable() -> None:
    small = TemplateLimits(timeout=1.0, max_output=2000)
    template = "{{ event.payload.s ~ event.payload.s ~ event.payload.s }}"
    with pytest.raises(TemplateError, match="above the limit of 2000"):
        render_value(template, CTX, limits=small)
    assert len(render_value(template, CTX, limits=LIMITS)) == 3000


def test_the_output_cap_counts_every_template_of_a_value() -> None:
    half = "{% for i in range(600) %}{{ event.payload.s }}{% endfor %}"  # 600,000 characters
    assert len(render_value(half, CTX, limits=LIMITS)) == 600_000
    with pytest.raises(TemplateError, match="output is above the limit of 1048576"):
        render_value({"a": half, "b": half}, CTX, limits=LIMITS)


NORMAL = [
    ("{{ event.payload.name|center(9) if false else event.payload.name }}", None),
    ("{{ event.payload.name.center(9) }}", "  Sales  "),
    ("{{ '%05d' % event.payload.rows }}", "00005"),
    ("{{ '{:>6}'.format(event.payload.name) }}", " Sales"),
    ("{{ event.payload.name|replace('S', 's') }}", "sales"),
    ("{{ ['a', 'b']|join(', ') }}", "a, b"),
    ("{{ [{'n': 'a'}, {'n': 'b'}]|join('-', attribute='n') }}", "a-b"),
    ("{{ event.payload.name ~ '!' }}", "Sales!"),
    ("{{ [event.payload.rows] + [3] }}", [5, 3]),
    ("{{ event.payload|tojson(indent=2)|length > 10 }}", True),
    (
        "{% for x in [[1, [2]], 3] recursive %}{% if x is iterable %}{{ loop(x) }}{% else %}"
        "{{ x }}{% endif %}{% endfor %}",
        "123",
    ),
    ("{% set t %}{{ event.payload.rows }} rows{% endset %}{{ t }}", "5 rows"),
    ("{{ range(3)|map('string')|join }}", "012"),
    ("{{ 2 ** 10 }}", 1024),
    ("{{ 'a b c'|wordwrap(3) }}", "a b\nc"),
    ("{{ [3, event.payload.rows, 2]|sort|list }}", [2, 3, 5]),
    ("{{ [3, event.payload.rows, 2]|select('gt', 2)|list }}", [3, 5]),
    ("{{ event.payload.rows is in([5, 6]) and event.payload.rows is eq(5) }}", True),
    ("{{ [[1], [event.payload.rows]]|sum(start=[]) }}", [1, 5]),
]


@pytest.mark.parametrize(("template", "expected"), NORMAL)
def test_normal_templates_are_unaffected(template: str, expected: object) -> None:
    if expected is None:  # a removed filter is refused even in a branch that would not run
        with pytest.raises(TemplateError, match="unknown filter 'center'"):
            render_value(template, CTX, limits=LIMITS)
        return
    assert render_value(template, CTX, limits=LIMITS) == expected


def test_arender_value_runs_off_the_event_loop() -> None:
    async def main() -> tuple[float, str]:
        lags: list[float] = []

        async def ticker() -> None:
            while True:
                before = time.monotonic()
                await asyncio.sleep(0.01)
                lags.append(time.monotonic() - before)

        task = asyncio.create_task(ticker())
        try:
            await arender_value({"t": RECURSIVE}, CTX, where="body", limits=TIME_LIMITS)
        except TemplateError as exc:
            message = str(exc)
        else:
            message = ""
        task.cancel()
        return max(lags), message

    worst_lag, message = asyncio.run(main())
    assert TOO_LONG in message
    assert worst_lag < 1.0  # the loop kept running while the template did


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        ("{{ 'x'|center(9) }}", "unknown filter 'center' (not available in action templates)"),
        ("{{ x is bogus }}", "unknown test 'bogus'"),
        ("{{ " + "(" * 3000 + "1" + ")" * 3000 + " }}", "brackets nest more than 30 deep"),
        ("{{ " + "(" * 200 + "1" + ")" * 200 + " }}", "brackets nest more than 30 deep"),
        ("{{ " + "not " * 1500 + "1 }}", "nests too deeply"),
        ("{{ " + "+".join(["1"] * 100) + " }}", "nest more than 64 deep"),
        ("{% if 1 %}" * 80 + "x" + "{% endif %}" * 80, "nest more than 64 deep"),
        ("{{ 1 }}" * 2000, "more than 5000 tokens"),
        ("x" * 100_001 + "{{ 1 }}", "100008 characters, above the limit of 100000"),
    ],
)
def test_check_answers_with_a_reason_instead_of_crashing(template: str, problem: str) -> None:
    found = check_template({"text": template}, where="body")
    assert found is not None
    assert found.startswith("body.text: ")
    assert problem in found
    with pytest.raises(TemplateError, match="template body"):  # and firing fails the same way
        render_value(template, CTX, where="body", limits=LIMITS)


def test_what_passes_the_check_also_compiles() -> None:
    for n in (29, 30):
        for template in (
            "{{ " + "(" * n + "1" + ")" * n + " }}",
            "{{ " + "+".join(["1"] * (2 * n)) + " }}",
            "{% if 1 %}" * (2 * n) + "x" + "{% endif %}" * (2 * n),
        ):
            assert check_template(template) is None
            render_value(template, CTX, limits=LIMITS)


def test_check_never_runs_a_filter() -> None:
    # Compiling would fold this constant by running |replace: the check must not compile.
    template = "{{ '" + "x" * 5000 + "'|replace('x', '" + "y" * 5000 + "') }}"
    started = time.monotonic()
    assert check_template(template) is None
    assert time.monotonic() - started < 5
    with pytest.raises(TemplateError, match=re.escape("|replace would build 25000000")):
        render_value(template, CTX, limits=LIMITS)


def test_automation_check_bounds_all_templates_together() -> None:
    body = {f"k{i}": "{{ event.payload.rows }} " * 400 for i in range(10)}  # ~2,000 tokens each
    automation = parse_automation(
        {
            "name": "a",
            "trigger": {"type": "event", "expect": ["x"]},
            "actions": [{"type": "call-webhook", "url": "https://example.org/h", "body": body}],
        }
    )
    problems = automation_template_problems(automation)
    assert problems == [
        "actions[0].body: the templates of this automation have more than 10000 tokens in all, "
        "the limit"
    ]
