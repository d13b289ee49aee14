"""Sandboxed Jinja templates for action values: render, check without rendering, and the context.

Templates run in an ``ImmutableSandboxedEnvironment`` with ``StrictUndefined`` (a missing attribute
is an error, not an empty string), no globals but a capped ``range``, no include/import/extends, at
most ``MAX_LOOPS`` loops nested at most ``MAX_LOOP_DEPTH`` deep over at most ``MAX_LOOP_ITEMS``
items each, capped string/list repetition and powers, and at most ``MAX_OUTPUT`` characters of
output. Functions reached through attributes are wrapped so printing one never shows a Python repr.
A string that is exactly one ``{{ expression }}`` renders to the expression's native JSON value.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from jinja2 import StrictUndefined, meta, nodes
from jinja2 import TemplateError as JinjaTemplateError
from jinja2.exceptions import SecurityError
from jinja2.nativetypes import NativeCodeGenerator
from jinja2.runtime import Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment
from markupsafe import Markup

from tideflow.schemas.automations import (
    TEMPLATE_CONTEXT_NAMES,
    Action,
    AutomationCreate,
    CallWebhook,
    ChangeFlowRunState,
    RunDeployment,
)
from tideflow.schemas.events import Event
from tideflow.server.triggers.evaluate import Firing

__all__ = [
    "MAX_LOOPS",
    "MAX_LOOP_DEPTH",
    "MAX_LOOP_ITEMS",
    "MAX_OUTPUT",
    "TemplateError",
    "automation_template_problems",
    "base_context",
    "check_template",
    "render_template",
    "render_value",
]

MAX_OUTPUT = 1_000_000
MAX_LOOPS = 10
MAX_LOOP_DEPTH = 2
MAX_LOOP_ITEMS = 1000
MAX_SEQUENCE = 100_000  # longest string/list a '*' may build
MAX_POWER_BITS = 4096


class TemplateError(ValueError):
    """A template failed to parse or render; the message is one line naming the template."""


class _Method:
    """A bound method reached from a template: callable, but prints as a name, not a repr."""

    __slots__ = ("_func", "_name")

    def __init__(self, func: Callable[..., Any], name: str) -> None:
        self._func = func
        self._name = name

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._func(*args, **kwargs)

    def __str__(self) -> str:
        return f"[method {self._name}]"

    __repr__ = __str__


def _range(*args: int) -> range:
    result = range(*args)
    if len(result) > MAX_LOOP_ITEMS:
        raise SecurityError(
            f"range() of {len(result)} items is above the limit of {MAX_LOOP_ITEMS}"
        )
    return result


def _bounded(value: Any) -> Any:
    if isinstance(value, Undefined):
        return value
    items = value.items() if isinstance(value, Mapping) else value
    out = []
    for i, item in enumerate(items):
        if i >= MAX_LOOP_ITEMS:
            raise SecurityError(f"a loop may run over at most {MAX_LOOP_ITEMS} items")
        out.append(item)
    return dict(out) if isinstance(value, Mapping) else out


def _finalize(value: Any) -> Any:
    if isinstance(value, Undefined):
        value._fail_with_undefined_error()
    if isinstance(value, Iterator) or (callable(value) and not isinstance(value, _Method)):
        raise SecurityError(
            f"cannot print a {type(value).__name__}; convert it with a filter such as |list"
        )
    return value


class _Environment(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**"})

    def getattr(self, obj: Any, attribute: str) -> Any:
        return _wrap(super().getattr(obj, attribute), attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        return _wrap(super().getitem(obj, argument), str(argument))

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            for seq, times in ((left, right), (right, left)):
                if isinstance(seq, str | list | tuple) and isinstance(times, int):
                    if len(seq) * times > MAX_SEQUENCE:
                        raise SecurityError(
                            f"'*' would build {len(seq) * times} items, above {MAX_SEQUENCE}"
                        )
        if operator == "**" and isinstance(left, int) and isinstance(right, int):
            if (
                right > 0
                and abs(left) > 1
                and max(abs(left).bit_length(), 1) * right > MAX_POWER_BITS
            ):
                raise SecurityError(f"'**' result would exceed {MAX_POWER_BITS} bits")
        return super().call_binop(context, operator, left, right)


def _wrap(value: Any, name: str) -> Any:
    if callable(value) and not isinstance(value, Undefined | type | _Method):
        return _Method(value, name)
    return value


class _NativeEnvironment(_Environment):
    # Leaves output values as they are (no str()), for templates that are one expression.
    code_generator_class = NativeCodeGenerator


def _make_env(kind: type[_Environment], finalize: Callable[[Any], Any] | None) -> _Environment:
    env = kind(undefined=StrictUndefined, autoescape=False, finalize=finalize)
    env.globals.clear()
    env.globals["range"] = _range
    env.filters["_tf_bounded"] = _bounded
    # center() and indent() take a width and can build huge strings; nobody needs them in an action.
    for name in ("center", "indent", "pprint", "xmlattr"):
        env.filters.pop(name, None)
    return env


# Built once: the environment holds no per-render state (the sandbox is immutable).
_ENV = _make_env(_Environment, _finalize)
_NATIVE_ENV = _make_env(_NativeEnvironment, None)

_FORBIDDEN = {
    nodes.Include: "{% include %}",
    nodes.Import: "{% import %}",
    nodes.FromImport: "{% from ... import %}",
    nodes.Extends: "{% extends %}",
    nodes.Macro: "{% macro %}",
    nodes.CallBlock: "{% call %}",
}


def _loop_depth(node: nodes.Node, depth: int = 0) -> int:
    here = depth + 1 if isinstance(node, nodes.For) else depth
    return max([here, *(_loop_depth(child, here) for child in node.iter_child_nodes())])


def _checked_ast(source: str) -> nodes.Template:
    """Parse and enforce the structural limits; raises jinja2 errors or SecurityError."""
    ast = _ENV.parse(source)
    for kind, label in _FORBIDDEN.items():
        if ast.find(kind) is not None:
            raise SecurityError(f"{label} is not allowed in action templates")
    for name in ast.find_all(nodes.Name):
        if name.name == "self":
            raise SecurityError("'self' is not available in action templates")
    loops = list(ast.find_all(nodes.For))
    if len(loops) > MAX_LOOPS:
        raise SecurityError(f"{len(loops)} loops, above the limit of {MAX_LOOPS}")
    if _loop_depth(ast) > MAX_LOOP_DEPTH:
        raise SecurityError(f"loops nest deeper than {MAX_LOOP_DEPTH}")
    for loop in loops:
        loop.iter = nodes.Filter(loop.iter, "_tf_bounded", [], [], None, None, lineno=loop.lineno)
    return ast


def _single_expression(ast: nodes.Template) -> nodes.Expr | None:
    """The expression when the whole template is one ``{{ ... }}`` (surrounding whitespace allowed)."""
    body = [n for n in ast.body if not (isinstance(n, nodes.Output) and _blank(n))]
    if len(body) != 1 or not isinstance(body[0], nodes.Output):
        return None
    parts = [
        n for n in body[0].nodes if not (isinstance(n, nodes.TemplateData) and not n.data.strip())
    ]
    if len(parts) != 1 or isinstance(parts[0], nodes.TemplateData):
        return None
    return parts[0]


def _blank(output: nodes.Output) -> bool:
    return all(isinstance(n, nodes.TemplateData) and not n.data.strip() for n in output.nodes)


def _json_value(value: Any, where: str) -> Any:
    if isinstance(value, Undefined):
        value._fail_with_undefined_error()
    if isinstance(value, Markup):
        return str(value)
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, Mapping):
        return {str(k): _json_value(v, where) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_value(v, where) for v in value]
    raise SecurityError(f"the expression gave a {type(value).__name__}, not JSON data")


def _one_line(text: str, limit: int = 120) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _fail(where: str, source: str, exc: Exception) -> TemplateError:
    reason = str(exc) or type(exc).__name__
    return TemplateError(f"template {where} ({_one_line(source, 80)!r}): {_one_line(reason)}")


def render_template(source: str, context: Mapping[str, Any], *, where: str = "value") -> Any:
    """Render one template string: a lone ``{{ expr }}`` gives its native JSON value, anything else text."""
    if "{" not in source:
        return source
    try:
        ast = _checked_ast(source)
        expr = _single_expression(ast)
        if expr is not None:
            native = _NATIVE_ENV.from_string(nodes.Template([nodes.Output([expr])]))
            values = list(native.root_render_func(native.new_context(dict(context))))
            return _json_value(values[0] if values else None, where)
        template = _ENV.from_string(ast)
        out: list[str] = []
        size = 0
        for chunk in template.generate(dict(context)):
            size += len(chunk)
            if size > MAX_OUTPUT:
                raise SecurityError(f"output is above the limit of {MAX_OUTPUT} characters")
            out.append(chunk)
        return "".join(out)
    except TemplateError:
        raise
    except (
        JinjaTemplateError,
        TypeError,
        ValueError,
        ArithmeticError,
        LookupError,
        AttributeError,
    ) as exc:
        raise _fail(where, source, exc) from None
    except RecursionError as exc:
        raise _fail(where, source, exc) from None


def render_value(value: Any, context: Mapping[str, Any], *, where: str = "value") -> Any:
    """Render every string inside ``value`` (dicts and lists recursively); raises TemplateError."""
    if isinstance(value, str):
        return render_template(value, context, where=where)
    if isinstance(value, Mapping):
        return {k: render_value(v, context, where=f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [render_value(v, context, where=f"{where}[{i}]") for i, v in enumerate(value)]
    return value


def _template_problem(source: str, where: str) -> str | None:
    if "{" not in source:
        return None
    try:
        ast = _checked_ast(source)
    except (JinjaTemplateError, SecurityError) as exc:
        return _one_line(f"{where}: {exc}", limit=300)
    unknown = sorted(meta.find_undeclared_variables(ast) - TEMPLATE_CONTEXT_NAMES - {"range"})
    if unknown:
        known = ", ".join(sorted(TEMPLATE_CONTEXT_NAMES))
        return f"{where}: unknown variable {unknown[0]!r} (templates can use {known})"
    return None


def check_template(value: Any, *, where: str = "value") -> str | None:
    """Parse every template inside ``value`` without rendering; the first problem, or None."""
    if isinstance(value, str):
        return _template_problem(value, where)
    if isinstance(value, Mapping):
        for k, v in value.items():
            problem = check_template(v, where=f"{where}.{k}")
            if problem:
                return problem
    if isinstance(value, list | tuple):
        for i, v in enumerate(value):
            problem = check_template(v, where=f"{where}[{i}]")
            if problem:
                return problem
    return None


def _action_templates(action: Action) -> dict[str, Any]:
    if isinstance(action, RunDeployment):
        return {"parameters": action.parameters, "job_variables": action.job_variables}
    if isinstance(action, CallWebhook):
        return {"headers": action.headers, "body": action.body}
    if isinstance(action, ChangeFlowRunState):
        return {"message": action.message}
    return {}


def automation_template_problems(automation: AutomationCreate) -> list[str]:
    """Every template problem in an automation's actions, each naming the action and field."""
    problems = []
    groups: Sequence[tuple[str, Sequence[Action]]] = (
        ("actions", automation.actions),
        ("actions_on_trigger", automation.actions_on_trigger),
        ("actions_on_resolve", automation.actions_on_resolve),
    )
    for group, actions in groups:
        for i, action in enumerate(actions):
            for field, value in _action_templates(action).items():
                problem = check_template(value, where=f"{group}[{i}].{field}")
                if problem:
                    problems.append(problem)
    return problems


def base_context(
    automation: Mapping[str, Any], firing: Firing, events: Sequence[Event], now: dt.datetime
) -> dict[str, Any]:
    """The template context the action runner starts from (it adds flow_run, flow and deployment):
    ``automation`` (its JSON), ``event`` (the triggering event or None), ``events`` (all events of the
    firing), ``firing``, ``labels`` (for_each values) and nothing else."""
    by_id = {e.id: e for e in events}
    trigger_event = firing.triggering_event
    return {
        "automation": dict(automation),
        "event": trigger_event.model_dump(mode="json") if trigger_event is not None else None,
        "events": [by_id[i].model_dump(mode="json") for i in firing.event_ids if i in by_id],
        "firing": {
            **firing.model_dump(mode="json", exclude={"triggering_event"}),
            "now": now.isoformat(),
        },
        "labels": dict(firing.labels),
        "flow_run": None,
        "flow": None,
        "deployment": None,
    }
