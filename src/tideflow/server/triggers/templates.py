"""Sandboxed Jinja templates for action values: render, check without rendering, and the context.

Templates run in the bounded sandbox of :mod:`tideflow.server.triggers.sandbox` with
``StrictUndefined`` (a missing attribute is an error, not an empty string), no globals but a capped
``range``, no include/import/extends/macro, at most ``MAX_LOOPS`` loops nested at most
``MAX_LOOP_DEPTH`` deep over at most ``MAX_LOOP_ITEMS`` items each, and a time limit and size caps
(:class:`TemplateLimits`) checked at every step, so a hostile template fails with a one-line reason
instead of holding the server. Functions reached through attributes print as a name, never a
Python repr. A string that is exactly one ``{{ expression }}`` renders to the expression's native
JSON value. The action runner renders with :func:`arender_value`, in a worker thread.

Checking (at save time, on the server's event loop) parses but never compiles or runs anything:
constant folding would run filters. Its cost is bounded by ``MAX_TEMPLATE_TOKENS`` per template and
``MAX_AUTOMATION_TOKENS`` per automation.
"""

from __future__ import annotations

import datetime as dt
import functools
import string
from collections.abc import Mapping, Sequence
from typing import Any

import anyio
from jinja2 import nodes
from jinja2.exceptions import SecurityError
from jinja2.runtime import Undefined
from jinja2.sandbox import _mutable_spec as _MUTABLE_SPEC
from jinja2.visitor import NodeTransformer
from markupsafe import Markup

from tideflow.schemas.automations import (
    TEMPLATE_CONTEXT_NAMES,
    Action,
    AutomationCreate,
    CallWebhook,
    ChangeFlowRunState,
    RunDeployment,
    SendNotification,
)
from tideflow.schemas.events import Event
from tideflow.server.triggers.evaluate import Firing
from tideflow.server.triggers.sandbox import make_environment, printable
from tideflow.server.triggers.template_budget import (
    DEFAULT_MAX_OUTPUT,
    MAX_LOOP_ITEMS,
    TemplateLimits,
    approx_len,
    budget_scope,
    current_budget,
    seconds,
)
from tideflow.server.triggers.template_context import (
    KIND_KEY,
    event_view,
    is_wrapped,
    unwrap,
    wrapped_problem,
)

__all__ = [
    "MAX_AUTOMATION_TOKENS",
    "MAX_BRACKETS",
    "MAX_LOOPS",
    "MAX_LOOP_DEPTH",
    "MAX_LOOP_ITEMS",
    "MAX_NESTING",
    "MAX_OUTPUT",
    "MAX_TEMPLATE_CHARS",
    "MAX_TEMPLATE_TOKENS",
    "TemplateError",
    "TemplateLimits",
    "arender_value",
    "automation_template_problems",
    "base_context",
    "check_template",
    "render_template",
    "render_value",
]

MAX_OUTPUT = DEFAULT_MAX_OUTPUT  # the default; TIDEFLOW_TEMPLATES_MAX_OUTPUT changes it
MAX_LOOPS = 10
MAX_LOOP_DEPTH = 2
MAX_TEMPLATE_CHARS = 100_000  # one template string
MAX_TEMPLATE_TOKENS = 5_000  # one template; parsing costs about 50 us a token
MAX_AUTOMATION_TOKENS = 10_000  # all templates of one automation, checked on the event loop
MAX_BRACKETS = 30  # nested (), [] and {} in one expression
MAX_NESTING = 64  # depth of the syntax tree
_THREAD_GRACE = 1.0  # seconds past the time limit before a render thread is given up on


class TemplateError(ValueError):
    """A template failed to parse or render; the message is one line naming the template."""


_ENV = make_environment(native=False, finalize=printable)
_NATIVE_ENV = make_environment(native=True, finalize=None)

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


def _scan(source: str) -> int:
    """Tokens in ``source``, refusing early (lexing is streamed) too many or too deep brackets:
    the parser recurses about a dozen frames per bracket."""
    count = depth = 0
    for _, kind, value in _ENV.lex(source):
        count += 1
        if count > MAX_TEMPLATE_TOKENS:
            raise SecurityError(f"more than {MAX_TEMPLATE_TOKENS} tokens, the limit for a template")
        if kind != "operator":
            continue
        if value in ("(", "[", "{"):
            depth += 1
            if depth > MAX_BRACKETS:
                raise SecurityError(
                    f"brackets nest more than {MAX_BRACKETS} deep, the limit for a template"
                )
        elif value in (")", "]", "}"):
            depth -= 1
    return count


def _check_depth(ast: nodes.Node) -> None:
    """Refuse a syntax tree deeper than ``MAX_NESTING`` (walked without recursion): compiling one
    recurses per level, and Python refuses code nested past 100-200 levels."""
    stack = [(ast, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_NESTING:
            raise SecurityError(f"expressions and blocks nest more than {MAX_NESTING} deep")
        stack.extend((child, depth + 1) for child in node.iter_child_nodes())


class _Bounding(NodeTransformer):
    """Routes loops through ``_tf_bounded`` and ``~`` through ``_tf_concat`` (both checked)."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        node.iter = nodes.Filter(node.iter, "_tf_bounded", [], [], None, None, lineno=node.lineno)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        parts = nodes.Tuple(node.nodes, "load", lineno=node.lineno)
        return nodes.Filter(parts, "_tf_concat", [], [], None, None, lineno=node.lineno)


# What the sandbox refuses at render time, found at save time when the template spells it out.
_MUTATING = frozenset().union(*(names for _, names in _MUTABLE_SPEC))
# Filters that read an attribute named by an argument: (positional index, keyword).
_ATTRIBUTE_FILTERS = {
    "attr": (0, None),
    "map": (None, "attribute"),
    "selectattr": (0, None),
    "rejectattr": (0, None),
    "groupby": (0, "attribute"),
    "sort": (None, "attribute"),
    "sum": (None, "attribute"),
    "unique": (None, "attribute"),
    "min": (None, "attribute"),
    "max": (None, "attribute"),
    "join": (None, "attribute"),
}


def _internal(name: object) -> str | None:
    """The first dunder part of an attribute name or dotted path (``a.__class__``), or None.

    Dunder names reach Python internals (__class__, __globals__, __subclasses__...); a single
    leading underscore is only a dict key in this data-only context and stays allowed."""
    if not isinstance(name, str):
        return None
    return next((p for p in name.replace("[", ".").split(".") if p.startswith("__")), None)


def _format_fields(text: str) -> list[str]:
    try:
        return [field for _, field, _, _ in string.Formatter().parse(text) if field]
    except ValueError:  # not a valid format string: calling .format() on it fails anyway
        return []


def _attribute_argument(node: nodes.Filter) -> object:
    """The constant attribute name an attribute-reading filter is given, or None."""
    if node.name == "map" and node.args and isinstance(node.args[0], nodes.Const):
        if node.args[0].value == "attr" and len(node.args) > 1:  # map('attr', name)
            return node.args[1].value if isinstance(node.args[1], nodes.Const) else None
    index, keyword = _ATTRIBUTE_FILTERS.get(node.name, (None, None))
    if index is not None and len(node.args) > index and isinstance(node.args[index], nodes.Const):
        return node.args[index].value
    for kw in node.kwargs:
        if kw.key == keyword and isinstance(kw.value, nodes.Const):
            return kw.value.value
    return None


def _check_access(ast: nodes.Template) -> None:
    """Refuse what the sandbox would refuse at render time, when the template names it literally:
    a Python-internal attribute (``__class__``, also through ``['...']``, ``|attr``, ``|map``'s
    ``attribute`` and a literal ``'{0.__class__}'.format``) or a method that changes its input."""
    for node in ast.find_all((nodes.Getattr, nodes.Getitem, nodes.Filter, nodes.Call)):
        name: object = None
        if isinstance(node, nodes.Getattr):
            name = node.attr
        elif isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
            name = node.arg.value
        elif isinstance(node, nodes.Filter):
            name = _attribute_argument(node)
        elif isinstance(node, nodes.Call) and isinstance(node.node, nodes.Getattr):
            method, owner = node.node.attr, node.node.node
            if method in _MUTATING:
                raise SecurityError(
                    f"calls .{method}(), which would change the template's input; action "
                    "templates are read-only"
                )
            if method in ("format", "format_map") and isinstance(owner, nodes.Const):
                name = next((f for f in _format_fields(str(owner.value)) if _internal(f)), None)
        internal = _internal(name)
        if internal:
            raise SecurityError(
                f"{internal!r} is not available in action templates (names starting with '__' "
                "reach Python internals)"
            )


def _parsed(source: str) -> tuple[nodes.Template, int]:
    """Parse and enforce the structural limits; the AST and its token count. Raises jinja2
    errors or SecurityError; never compiles."""
    if len(source) > MAX_TEMPLATE_CHARS:
        raise SecurityError(
            f"{len(source)} characters, above the limit of {MAX_TEMPLATE_CHARS} for a template"
        )
    tokens = _scan(source)
    ast = _ENV.parse(source)
    _check_depth(ast)
    for kind, label in _FORBIDDEN.items():
        if ast.find(kind) is not None:
            raise SecurityError(f"{label} is not allowed in action templates")
    for name in ast.find_all(nodes.Name):
        if name.name == "self":
            raise SecurityError("'self' is not available in action templates")
    _check_access(ast)
    loops = list(ast.find_all(nodes.For))
    if len(loops) > MAX_LOOPS:
        raise SecurityError(f"{len(loops)} loops, above the limit of {MAX_LOOPS}")
    if _loop_depth(ast) > MAX_LOOP_DEPTH:
        raise SecurityError(f"loops nest deeper than {MAX_LOOP_DEPTH}")
    for node in ast.find_all(nodes.Filter):
        if node.name not in _ENV.filters:
            raise SecurityError(f"unknown filter {node.name!r} (not available in action templates)")
    for test in ast.find_all(nodes.Test):
        if test.name not in _ENV.tests:
            raise SecurityError(f"unknown test {test.name!r}")
    return ast, tokens


def _checked_ast(source: str) -> nodes.Template:
    """The parsed template, limits enforced, rewritten so loops and ``~`` are bounded."""
    ast, _ = _parsed(source)
    bounded = _Bounding().visit(ast)
    assert isinstance(bounded, nodes.Template)
    return bounded


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


def _json_value(value: Any) -> Any:
    if isinstance(value, Undefined):
        value._fail_with_undefined_error()
    if isinstance(value, Markup):
        return str(value)
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, Mapping):
        return {str(k): _json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_value(v) for v in value]
    raise SecurityError(f"the expression gave a {type(value).__name__}, not JSON data")


def _one_line(text: str, limit: int = 120) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _reason(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "nests too deeply (Python's recursion limit was reached)"
    if isinstance(exc, MemoryError):
        return "ran out of memory"
    return str(exc) or type(exc).__name__


def _fail(where: str, source: str, exc: BaseException) -> TemplateError:
    return TemplateError(
        f"template {where} ({_one_line(source[:200], 80)!r}): {_one_line(_reason(exc))}"
    )


def _render(source: str, context: Mapping[str, Any]) -> Any:
    budget = current_budget()
    ast = _checked_ast(source)
    budget.tick()
    expr = _single_expression(ast)
    if expr is not None:
        native = _NATIVE_ENV.from_string(nodes.Template([nodes.Output([expr])]))
        values = list(native.root_render_func(native.new_context(dict(context))))
        value = values[0] if values else None
        size = approx_len(value, budget.limits.max_output)
        budget.add_output(size)
        return _json_value(value)
    template = _ENV.from_string(ast)
    out: list[str] = []
    for chunk in template.generate(dict(context)):
        budget.add_output(len(chunk))
        budget.tick()
        out.append(chunk)
    return "".join(out)


def render_template(
    source: str,
    context: Mapping[str, Any],
    *,
    where: str = "value",
    limits: TemplateLimits | None = None,
) -> Any:
    """Render one template string: a lone ``{{ expr }}`` gives its native JSON value, anything else
    text. Raises TemplateError (one line) for any failure, including a breached limit."""
    if "{" not in source:
        return source
    try:
        with budget_scope(limits or TemplateLimits()):
            return _render(source, context)
    except TemplateError:
        raise
    except Exception as exc:  # any failure of a user's template is that template's error
        raise _fail(where, source, exc) from None


def _render_value(value: Any, context: Mapping[str, Any], where: str) -> Any:
    if isinstance(value, str):
        return render_template(value, context, where=where)
    if is_wrapped(value):
        try:
            return unwrap(value, lambda s, w: render_template(s, context, where=w), where)
        except TemplateError:
            raise
        except ValueError as exc:
            raise TemplateError(f"template {exc}") from None
    if isinstance(value, Mapping):
        return {k: _render_value(v, context, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_render_value(v, context, f"{where}[{i}]") for i, v in enumerate(value)]
    return value


def render_value(
    value: Any,
    context: Mapping[str, Any],
    *,
    where: str = "value",
    limits: TemplateLimits | None = None,
) -> Any:
    """Render every string inside ``value`` (dicts and lists recursively); raises TemplateError.

    All templates of ``value`` share one time limit and one output cap."""
    limits = limits or TemplateLimits()
    try:
        with budget_scope(limits):
            return _render_value(value, context, where)
    except RecursionError:
        raise TemplateError(f"template {where}: the value nests too deeply") from None


async def arender_value(
    value: Any,
    context: Mapping[str, Any],
    *,
    where: str = "value",
    limits: TemplateLimits | None = None,
) -> Any:
    """:func:`render_value` in a worker thread, so the event loop keeps serving.

    The render stops itself at the time limit (every sandbox step checks it); should one step
    overrun, the caller is answered anyway a moment later and the thread is left to finish."""
    limits = limits or TemplateLimits()
    call = functools.partial(render_value, value, context, where=where, limits=limits)
    with anyio.move_on_after(limits.timeout + _THREAD_GRACE):
        return await anyio.to_thread.run_sync(call, abandon_on_cancel=True)
    raise TemplateError(
        f"template {where}: rendering exceeded the time limit of {seconds(limits.timeout)} "
        "(TIDEFLOW_TEMPLATES_RENDER_TIMEOUT)"
    )


def _undeclared(ast: nodes.Template) -> set[str]:
    """Names read but never assigned in the template (an approximation of Jinja's own analysis,
    which compiles the template; compiling runs filters on constants)."""
    loaded = {n.name for n in ast.find_all(nodes.Name) if n.ctx == "load"}
    stored = {n.name for n in ast.find_all(nodes.Name) if n.ctx in ("store", "param")}
    if ast.find(nodes.For) is not None:
        stored.add("loop")
    return loaded - stored - {"range"}


def _template_problem(
    source: str, where: str, names: frozenset[str] = TEMPLATE_CONTEXT_NAMES
) -> tuple[str | None, int]:
    """The first problem of one template string, or None; and its token count."""
    if "{" not in source:
        return None, 0
    try:
        ast, tokens = _parsed(source)
        unknown = sorted(_undeclared(ast) - names)
    except Exception as exc:  # the check answers with a reason, never a crash (RecursionError…)
        return _one_line(f"{where}: {_reason(exc)}", limit=300), 0
    if unknown:
        known = ", ".join(sorted(names))
        return f"{where}: unknown variable {unknown[0]!r} (templates can use {known})", tokens
    return None, tokens


def _walk(value: Any, where: str) -> list[tuple[str, str]]:
    """Every string inside ``value`` with its path."""
    out: list[tuple[str, str]] = []
    stack: list[tuple[Any, str]] = [(value, where)]
    while stack:
        item, path = stack.pop()
        if isinstance(item, str):
            out.append((item, path))
        elif is_wrapped(item) and item.get(KIND_KEY) != "jinja":
            continue  # a literal value: its strings are not templates
        elif isinstance(item, Mapping):
            stack.extend((v, f"{path}.{k}") for k, v in reversed(list(item.items())))
        elif isinstance(item, list | tuple):
            stack.extend((v, f"{path}[{i}]") for i, v in reversed(list(enumerate(item))))
    return out


def _wrapped_problems(value: Any, where: str) -> list[str]:
    """Problems of the wrapped forms (``__tideflow_kind``) inside ``value``."""
    out: list[str] = []
    stack: list[tuple[Any, str]] = [(value, where)]
    while stack:
        item, path = stack.pop()
        problem = wrapped_problem(item, path)
        if problem:
            out.append(problem)
        elif is_wrapped(item):
            continue  # a well-formed wrapped value: its inside is not walked for more forms
        elif isinstance(item, Mapping):
            stack.extend((v, f"{path}.{k}") for k, v in item.items())
        elif isinstance(item, list | tuple):
            stack.extend((v, f"{path}[{i}]") for i, v in enumerate(item))
    return out


def check_template(
    value: Any, *, where: str = "value", names: frozenset[str] = TEMPLATE_CONTEXT_NAMES
) -> str | None:
    """Parse every template inside ``value`` without rendering; the first problem, or None.
    ``names``: the variables the templates may read (an action's context by default)."""
    wrapped = _wrapped_problems(value, where)
    if wrapped:
        return wrapped[0]
    tokens = 0
    for source, path in _walk(value, where):
        problem, used = _template_problem(source, path, names)
        tokens += used
        if tokens > MAX_AUTOMATION_TOKENS:
            return f"{where}: the templates have more than {MAX_AUTOMATION_TOKENS} tokens in all"
        if problem:
            return problem
    return None


def _action_templates(action: Action) -> dict[str, Any]:
    if isinstance(action, RunDeployment):
        return {"parameters": action.parameters, "job_variables": action.job_variables}
    if isinstance(action, CallWebhook):
        return {"headers": action.headers, "body": action.body}
    if isinstance(action, SendNotification):
        return {"subject": action.subject, "body": action.body}
    if isinstance(action, ChangeFlowRunState):
        return {"message": action.message}
    return {}


def automation_template_problems(automation: AutomationCreate) -> list[str]:
    """Every template problem in an automation's actions, each naming the action and field."""
    problems = []
    tokens = 0
    groups: Sequence[tuple[str, Sequence[Action]]] = (
        ("actions", automation.actions),
        ("actions_on_trigger", automation.actions_on_trigger),
        ("actions_on_resolve", automation.actions_on_resolve),
    )
    for group, actions in groups:
        for i, action in enumerate(actions):
            for field, value in _action_templates(action).items():
                problems.extend(_wrapped_problems(value, f"{group}[{i}].{field}"))
                for source, path in _walk(value, f"{group}[{i}].{field}"):
                    problem, used = _template_problem(source, path)
                    tokens += used
                    if problem:
                        problems.append(problem)
                        break
                if tokens > MAX_AUTOMATION_TOKENS:
                    problems.append(
                        f"{group}[{i}].{field}: the templates of this automation have more than "
                        f"{MAX_AUTOMATION_TOKENS} tokens in all, the limit"
                    )
                    return problems
    return problems


def base_context(
    automation: Mapping[str, Any],
    firing: Firing,
    events: Sequence[Event],
    now: dt.datetime,
    variables: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The template context the action runner starts from (it adds flow_run, flow and deployment):
    ``automation`` (its JSON), ``event`` (the triggering event or None), ``events`` (all events of the
    firing), ``firing``, ``labels`` (for_each values), ``variables`` (the variables the templates
    name, see template_variables) and nothing else."""
    by_id = {e.id: e for e in events}
    trigger_event = firing.triggering_event
    return {
        "automation": dict(automation),
        "event": event_view(trigger_event.model_dump(mode="json") if trigger_event else None),
        "events": [
            event_view(by_id[i].model_dump(mode="json")) for i in firing.event_ids if i in by_id
        ],
        "firing": {
            **firing.model_dump(mode="json", exclude={"triggering_event"}),
            "now": now.isoformat(),
        },
        "labels": dict(firing.labels),
        "flow_run": None,
        "flow": None,
        "deployment": None,
        "variables": dict(variables or {}),
    }
