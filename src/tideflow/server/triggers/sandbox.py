"""The bounded Jinja sandbox action templates render in: a time limit and size caps on every step.

Jinja's ``ImmutableSandboxedEnvironment`` stops a template reaching Python internals but not
spending the server's time or memory: one ``'%0100000000d' % 1`` or ``s.replace('', big)`` builds a
100 MB string in a single C call, and a ``recursive`` loop is not bounded by anything. Here every
hook the sandbox offers (attribute and item access, calls, the intercepted operators ``* ** + %``,
comparisons, every filter and comparing test, ``~``, loop iteration, buffered blocks and printed
values) checks the render's :class:`~tideflow.server.triggers.template_budget.Budget` first: a
deadline, a cap on the size of any one value about to be built (estimated BEFORE the operation
from its operands by ``template_checks``, so no step allocates much more than the cap), and a cap
on the characters built in all; a breach raises ``LimitExceeded``.
"""

from __future__ import annotations

import functools
import math
import operator
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from jinja2 import StrictUndefined, nodes
from jinja2.compiler import CodeGenerator, Frame, optimizeconst
from jinja2.exceptions import SecurityError
from jinja2.nativetypes import NativeCodeGenerator
from jinja2.runtime import Context, LoopContext, Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedFormatter
from markupsafe import EscapeFormatter, Markup

from tideflow.server.triggers.template_budget import (
    MAX_LOOP_ITEMS,
    MAX_POWER_BITS,
    MAX_RECURSION,
    MAX_SEQUENCE,
    Budget,
    LimitExceeded,
    approx_len,
    current_budget,
    printf_size,
    spec_width,
)
from tideflow.server.triggers.template_checks import check_method, checked, guard_filter

__all__ = ["Method", "SandboxEnvironment", "compare", "make_environment", "printable"]

# -- printing -------------------------------------------------------------------------------


class Method:
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


def _wrap(value: Any, name: str) -> Any:
    if callable(value) and not isinstance(value, Undefined | type | Method):
        return Method(value, name)
    return value


def printable(value: Any) -> Any:
    """``value`` if printing it is allowed and small enough; counts it against the budget."""
    if isinstance(value, Undefined):
        value._fail_with_undefined_error()
    if isinstance(value, Iterator) or (callable(value) and not isinstance(value, Method)):
        raise SecurityError(
            f"cannot print a {type(value).__name__}; convert it with a filter such as |list"
        )
    budget = current_budget()
    budget.tick()
    n = len(value) if isinstance(value, str) else approx_len(value, budget.limits.max_output)
    budget.size(n, "printing a value")
    budget.charge(n)
    return value


def _concat(values: tuple[Any, ...]) -> str:
    """``a ~ b``: the parts' sizes are checked before the string is built."""
    budget = current_budget()
    budget.tick()
    cap = budget.limits.max_output
    total = 0
    for value in values:
        printable(value)
        total += len(value) if isinstance(value, str) else approx_len(value, cap)
        budget.size(total, "'~'")
    return "".join(str(v) for v in values)


def _buffer_concat(parts: Iterable[str]) -> str:
    """Joins the output of a captured block (``{% set x %}``, ``{% filter %}``, recursive loops)."""
    items = parts if isinstance(parts, list) else list(parts)
    budget = current_budget()
    budget.tick()
    total = sum(len(p) for p in items)
    budget.size(total, "a captured block")
    budget.charge(total)
    return "".join(items)


def _bounded(value: Any) -> Any:
    """A loop's iterable: at most ``MAX_LOOP_ITEMS`` items, and a deadline check per item."""
    if isinstance(value, Undefined):
        return value
    budget = current_budget()
    budget.tick()
    items = value.items() if isinstance(value, Mapping) else value
    out = []
    for i, item in enumerate(items):
        if i >= MAX_LOOP_ITEMS:
            raise SecurityError(f"a loop may run over at most {MAX_LOOP_ITEMS} items")
        out.append(item)
    seq: Iterable[Any] = dict(out) if isinstance(value, Mapping) else out
    return _ticking(seq, budget)


def _ticking(items: Iterable[Any], budget: Budget) -> Iterator[Any]:
    for item in items:
        budget.tick()
        yield item


def _range(*args: int) -> range:
    result = range(*args)
    if len(result) > MAX_LOOP_ITEMS:
        raise SecurityError(
            f"range() of {len(result)} items is above the limit of {MAX_LOOP_ITEMS}"
        )
    return result


# -- str.format ------------------------------------------------------------------------------


class _BoundedFormatter(SandboxedFormatter):
    """str.format in the sandbox, refusing widths/precisions and totals above the cap."""

    def __init__(self, env: Any, **kwargs: Any) -> None:
        super().__init__(env, **kwargs)
        self._total = 0

    def vformat(self, format_string: str, args: Any, kwargs: Any) -> str:
        self._total = len(format_string)
        return super().vformat(format_string, args, kwargs)

    def format_field(self, value: Any, format_spec: str) -> Any:
        budget = current_budget()
        budget.tick()
        cap = budget.limits.max_output
        self._total += spec_width(format_spec) + approx_len(value, cap)
        budget.size(self._total, "format()")
        return super().format_field(value, format_spec)


class _BoundedEscapeFormatter(_BoundedFormatter, EscapeFormatter):
    pass


# -- comparisons ---------------------------------------------------------------------------

_SEQUENCES = (str, bytes, list, tuple)
_COMPARE_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "eq": operator.eq, "ne": operator.ne, "gt": operator.gt, "gteq": operator.ge,
    "lt": operator.lt, "lteq": operator.le,
    "in": lambda a, b: a in b, "notin": lambda a, b: a not in b,
}  # fmt: skip
_CONTAINERS = (list, tuple, dict, set, frozenset)


def _compare_cost(op: str, left: Any, right: Any, limit: int) -> int:
    """About how many element comparisons ``left op right`` makes (Python does them in C)."""
    if op in ("in", "notin"):
        if isinstance(right, list | tuple):
            return len(right) * max(approx_len(left, limit // max(len(right), 1) + 1), 1)
        return 0
    if isinstance(left, _CONTAINERS) and isinstance(right, _CONTAINERS):
        return min(approx_len(left, limit), approx_len(right, limit))
    return 0


def compare(*parts: Any) -> Any:
    """``a op b [op c ...]`` from a template, refusing comparisons of huge nested values."""
    budget = current_budget()
    budget.tick()
    cap = budget.limits.max_work
    left = parts[0]
    result: Any = True
    for i in range(1, len(parts), 2):
        op, right = parts[i], parts[i + 1]
        budget.size(_compare_cost(op, left, right, cap), "a comparison", "steps", limit=cap)
        result = _COMPARE_OPS[op](left, right)
        if not result:
            return result
        left = right
    return result


class _BoundedCompare(CodeGenerator):
    """Compiles ``a < b`` to ``environment.compare(a, 'lt', b)`` so the sandbox can check it."""

    @optimizeconst
    def visit_Compare(self, node: nodes.Compare, frame: Frame) -> None:
        self.write("environment.compare(")
        self.visit(node.expr, frame)
        for operand in node.ops:
            self.write(f", {operand.op!r}, ")
            self.visit(operand.expr, frame)
        self.write(")")


class _CodeGenerator(_BoundedCompare):
    pass


class _NativeCodeGenerator(_BoundedCompare, NativeCodeGenerator):
    pass


# -- the environment -------------------------------------------------------------------------


class SandboxEnvironment(ImmutableSandboxedEnvironment):
    """The immutable sandbox with every hook checking the current :class:`Budget`."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})
    code_generator_class: type[CodeGenerator] = _CodeGenerator
    compare = staticmethod(compare)

    def getattr(self, obj: Any, attribute: str) -> Any:
        current_budget().tick()
        return _wrap(super().getattr(obj, attribute), attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        current_budget().tick()
        name = argument if isinstance(argument, str) else "item"
        return _wrap(super().getitem(obj, argument), name)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        if getattr(value, "__name__", None) not in ("format", "format_map"):
            return None
        owner = getattr(value, "__self__", None)
        if not isinstance(owner, str) or super().wrap_str_format(value) is None:
            return None
        is_map = value.__name__ == "format_map"
        formatter: _BoundedFormatter = (
            _BoundedEscapeFormatter(self, escape=owner.escape)
            if isinstance(owner, Markup)
            else _BoundedFormatter(self)
        )
        str_type = type(owner)

        def bounded_format(*args: Any, **kwargs: Any) -> str:
            if is_map:
                if kwargs or len(args) != 1:
                    raise TypeError("format_map() takes exactly one mapping argument")
                kwargs = dict(args[0])
                args = ()
            return str_type(formatter.vformat(owner, args, kwargs))

        return bounded_format

    def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        budget = current_budget()
        budget.tick()
        func = obj._func if isinstance(obj, Method) else obj
        if isinstance(func, LoopContext):
            if func.depth >= MAX_RECURSION:
                raise LimitExceeded(f"a recursive loop may nest at most {MAX_RECURSION} deep")
            if args:
                args = (_bounded(args[0]), *args[1:])
        else:
            args, kwargs = check_method(budget, func, args, kwargs)
        name = getattr(func, "__name__", type(func).__name__)
        return checked(budget, super().call(context, func, *args, **kwargs), f"{name}()")

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        budget = current_budget()
        budget.tick()
        if operator == "*":
            _check_multiply(budget, left, right)
        elif operator == "**":
            _check_power(left, right)
        elif operator == "+":
            if any(isinstance(left, k) and isinstance(right, k) for k in _SEQUENCES):
                budget.size(len(left) + len(right), "'+'")
            if isinstance(left, list | tuple) and isinstance(right, list | tuple):
                cap = budget.limits.max_work
                budget.size(approx_len((left, right), cap), "'+'", limit=cap)
        elif operator == "%" and isinstance(left, str | bytes):
            budget.size(printf_size(left, right, budget.limits.max_output), "'%'")
        return checked(budget, super().call_binop(context, operator, left, right), repr(operator))


def _check_multiply(budget: Budget, left: Any, right: Any) -> None:
    for seq, times in ((left, right), (right, left)):
        if isinstance(seq, str | bytes | list | tuple) and isinstance(times, int):
            if len(seq) * times > MAX_SEQUENCE:
                raise LimitExceeded(
                    f"'*' would build {len(seq) * times} items, above {MAX_SEQUENCE}"
                )
            if isinstance(seq, list | tuple) and times > 0:
                # [big] * n is small but prints (and compares) like n copies of big.
                budget.size(approx_len(seq, budget.limits.max_output // times + 1) * times, "'*'")
    if isinstance(left, int) and isinstance(right, int):
        if left.bit_length() + right.bit_length() > MAX_POWER_BITS:
            raise LimitExceeded(f"'*' result would exceed {MAX_POWER_BITS} bits")


def _check_power(left: Any, right: Any) -> None:
    if isinstance(left, int) and isinstance(right, int) and right > 0 and abs(left) > 1:
        if right * math.log2(abs(left)) > MAX_POWER_BITS:
            raise LimitExceeded(f"'**' result would exceed {MAX_POWER_BITS} bits")


class _NativeSandboxEnvironment(SandboxEnvironment):
    # Leaves output values as they are (no str()), for templates that are one expression.
    code_generator_class = _NativeCodeGenerator


_COMPARING_TESTS = {
    "in": "in", "==": "eq", "eq": "eq", "equalto": "eq", "!=": "ne", "ne": "ne", ">": "gt",
    "gt": "gt", "greaterthan": "gt", "ge": "gteq", ">=": "gteq", "<": "lt", "lt": "lt",
    "lessthan": "lt", "<=": "lteq", "le": "lteq",
}  # fmt: skip


def _compare_test(op: str, value: Any, other: Any) -> Any:
    return compare(value, op, other)


# Filters that can build huge strings from a small width and that no action needs.
_REMOVED_FILTERS = ("center", "indent", "pprint", "xmlattr")


def make_environment(native: bool, finalize: Callable[[Any], Any] | None) -> SandboxEnvironment:
    """A bounded sandbox: no globals but a capped ``range``, every filter guarded."""
    kind = _NativeSandboxEnvironment if native else SandboxEnvironment
    env = kind(undefined=StrictUndefined, autoescape=False, finalize=finalize)
    env.globals.clear()
    env.globals["range"] = _range
    for name in _REMOVED_FILTERS:
        env.filters.pop(name, None)
    env.filters = {name: guard_filter(env, name, func) for name, func in env.filters.items()}
    for name, op in _COMPARING_TESTS.items():  # `x is eq(y)`, select('in', big), ...
        env.tests[name] = functools.partial(_compare_test, op)  # type: ignore[assignment]
    env.filters["_tf_bounded"] = _bounded
    env.filters["_tf_concat"] = _concat
    env.concat = _buffer_concat  # type: ignore[method-assign]
    return env
