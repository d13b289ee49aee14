"""The bounded Jinja sandbox action templates render in: a time limit and size caps on every step.

Jinja's ``ImmutableSandboxedEnvironment`` stops a template reaching Python internals but not
spending the server's time or memory: one ``'%0100000000d' % 1`` or ``s.replace('', big)`` builds a
100 MB string in a single C call, and a ``recursive`` loop is not bounded by anything. Here every
hook the sandbox offers (attribute and item access, calls, the intercepted operators ``* ** + %``,
every filter, ``~``, loop iteration, buffered blocks and printed values) checks the current
:class:`Budget` first: a deadline, a cap on the size of any one value about to be built (estimated
BEFORE the operation from its operands, so no step allocates much more than the cap), and a cap on
the characters built in all. One render runs with one budget (a context variable, so concurrent
renders in worker threads do not share one); a breach raises :class:`LimitExceeded`.
"""

from __future__ import annotations

import functools
import math
import operator
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from jinja2 import StrictUndefined, nodes
from jinja2.compiler import CodeGenerator, Frame, optimizeconst
from jinja2.exceptions import SecurityError
from jinja2.filters import make_attrgetter
from jinja2.nativetypes import NativeCodeGenerator
from jinja2.runtime import Context, LoopContext, Undefined
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedFormatter
from markupsafe import EscapeFormatter, Markup

__all__ = [
    "DEFAULT_MAX_OUTPUT",
    "DEFAULT_RENDER_TIMEOUT",
    "MAX_LOOP_ITEMS",
    "MAX_POWER_BITS",
    "MAX_RECURSION",
    "MAX_SEQUENCE",
    "MAX_SLOW_INPUT",
    "Budget",
    "LimitExceeded",
    "Method",
    "SandboxEnvironment",
    "TemplateLimits",
    "approx_len",
    "budget_scope",
    "current_budget",
    "make_environment",
    "printable",
    "seconds",
]

DEFAULT_RENDER_TIMEOUT = 2.0
DEFAULT_MAX_OUTPUT = 1_048_576
WORK_FACTOR = 16  # characters built in all, as a multiple of the output cap
MAX_LOOP_ITEMS = 1000
MAX_RECURSION = 10  # depth of a {% for ... recursive %} loop
MAX_SEQUENCE = 100_000  # longest string/list a '*' may build
MAX_POWER_BITS = 4096  # largest integer '**' or '*' may build
MAX_ROUND_PRECISION = 400  # digits; a float has 17, and 10 ** precision is computed exactly
MAX_SLOW_INPUT = 100_000  # items or characters a filter that loops in Python may take
_TIMEOUT_SETTING = "TIDEFLOW_TEMPLATES_RENDER_TIMEOUT"
_OUTPUT_SETTING = "TIDEFLOW_TEMPLATES_MAX_OUTPUT"


@dataclass(frozen=True)
class TemplateLimits:
    """How long one action's templates may render and how much text they may build."""

    timeout: float = DEFAULT_RENDER_TIMEOUT  # seconds for all templates of one action
    max_output: int = DEFAULT_MAX_OUTPUT  # characters of output, and of any one value built

    @property
    def max_work(self) -> int:
        return WORK_FACTOR * self.max_output


def seconds(value: float) -> str:
    return f"{value:g} second" + ("" if value == 1 else "s")


class LimitExceeded(SecurityError):
    """A render ran out of time or would build a value above the cap; the message says which."""


class Budget:
    """One render's deadline and counters; every sandbox hook calls :meth:`tick` first."""

    __slots__ = ("deadline", "limits", "output", "sizes", "work")

    def __init__(self, limits: TemplateLimits) -> None:
        self.limits = limits
        self.deadline = time.monotonic() + limits.timeout
        self.output = 0  # characters rendered so far (all templates of one render_value call)
        self.work = 0  # characters of intermediate values built so far
        # approx_len results by id, with the object kept alive so its id is not reused
        self.sizes: dict[int, tuple[Any, int]] = {}

    def tick(self) -> None:
        if time.monotonic() > self.deadline:
            raise LimitExceeded(
                f"rendering exceeded the time limit of {seconds(self.limits.timeout)} "
                f"({_TIMEOUT_SETTING})"
            )

    def size(self, n: int, what: str, unit: str = "characters", limit: int | None = None) -> None:
        """Refuse to build ``what`` when it would hold ``n`` characters (or items) over the cap
        (or over ``limit``, a multiple of it, for values that are only walked, never printed)."""
        cap = self.limits.max_output if limit is None else limit
        if n > cap:
            setting = _OUTPUT_SETTING if limit is None else f"{WORK_FACTOR} x {_OUTPUT_SETTING}"
            raise LimitExceeded(
                f"{what} would build {n} {unit}, above the limit of {cap} ({setting})"
            )

    def charge(self, n: int) -> None:
        """Count ``n`` characters built; many medium values kept alive add up like one big one."""
        self.work += n
        if self.work > self.limits.max_work:
            raise LimitExceeded(
                f"the template built more than {self.limits.max_work} characters in all "
                f"({WORK_FACTOR} x {_OUTPUT_SETTING})"
            )

    def add_output(self, n: int) -> None:
        self.output += n
        if self.output > self.limits.max_output:
            raise LimitExceeded(
                f"output is above the limit of {self.limits.max_output} characters "
                f"({_OUTPUT_SETTING})"
            )


_BUDGET: ContextVar[Budget | None] = ContextVar("tideflow_template_budget", default=None)


def current_budget() -> Budget:
    """The render's budget; outside a render (compile-time constant folding) a fresh default one,
    so the size caps hold there too."""
    return _BUDGET.get() or Budget(TemplateLimits())


@contextmanager
def budget_scope(limits: TemplateLimits) -> Iterator[Budget]:
    """Run a block with ``limits``; nested scopes share the outermost budget."""
    existing = _BUDGET.get()
    if existing is not None:
        yield existing
        return
    budget = Budget(limits)
    token = _BUDGET.set(budget)
    try:
        yield budget
    finally:
        _BUDGET.reset(token)


# -- size estimates ------------------------------------------------------------------------


def _scalar_len(item: Any) -> int | None:
    if isinstance(item, str):
        return len(item) + 2
    if isinstance(item, bytes | bytearray):
        return 4 * len(item) + 3
    if item is None or isinstance(item, bool | float):
        return 24
    if isinstance(item, int):
        return item.bit_length() * 10 // 33 + 2
    if isinstance(item, Mapping | list | tuple | set | frozenset):
        return None
    return 64


_REMEMBER_FROM = 4096


def approx_len(value: Any, limit: int, indent: int = 0) -> int:
    """About how many characters ``str(value)`` (or its JSON) has; stops counting past ``limit``.

    Counts without building anything: a list holding the same big string a thousand times counts
    a thousand times (what printing or comparing it walks), but each container is walked once
    (sizes are remembered by identity), so ``[big] * 1000`` costs one walk of ``big``. ``indent``
    adds the per-line indentation pretty-printed JSON would add."""
    scalar = _scalar_len(value)
    if scalar is not None:
        return scalar
    budget = current_budget()
    # Sizes without indentation do not depend on depth: remember them for the whole render.
    shared = budget.sizes if not indent else {}
    memo: dict[tuple[int, int], int] = {}
    sizes: list[int] = []  # sizes of finished children, in order
    # (item, depth, children count or -1 when not yet expanded)
    stack: list[tuple[Any, int, int]] = [(value, 0, -1)]
    steps = 0
    while stack:
        item, depth, count = stack.pop()
        steps += 1
        if steps % 16384 == 0:
            budget.tick()
            if steps > limit:
                return limit + 1
        if count < 0:
            scalar = _scalar_len(item)
            if scalar is not None:
                sizes.append(scalar)
                continue
            known = memo.get((id(item), depth))
            if known is None and id(item) in shared:
                known = shared[id(item)][1]
            if known is not None:
                sizes.append(known)
                continue
            children = [*item.keys(), *item.values()] if isinstance(item, Mapping) else list(item)
            stack.append((item, depth, len(children)))
            stack.extend((child, depth + 1, -1) for child in reversed(children))
            continue
        per_item = (4 if isinstance(item, Mapping) else 2) + (
            1 + indent * (depth + 1) if indent else 0
        )
        entries = len(item)
        total = 2 + entries * per_item + sum(sizes[len(sizes) - count :])
        del sizes[len(sizes) - count :]
        if total > limit:
            return total
        memo[(id(item), depth)] = total
        if not indent and total >= _REMEMBER_FROM:  # small ones are cheaper to walk again
            shared[id(item)] = (item, total)
        sizes.append(total)
    return sizes[0]


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _arg(args: tuple[Any, ...], kwargs: Mapping[str, Any], index: int, name: str) -> Any:
    if len(args) > index:
        return args[index]
    return kwargs.get(name)


def _materialize(items: Iterable[Any], budget: Budget, what: str) -> list[Any]:
    out: list[Any] = []
    cap = budget.limits.max_output
    for item in items:
        out.append(item)
        if len(out) > cap:
            budget.size(len(out), what, "items")
        if len(out) % 1024 == 0:
            budget.tick()
    return out


_PRINTF = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?(.)", re.DOTALL)
_SPEC_NUMBER = re.compile(r"\d+")


def _number(text: str) -> int:
    return int(text) if len(text) <= 12 else 10**12


def printf_size(fmt: str | bytes, args: Any, limit: int) -> int:
    """About how many characters ``fmt % args`` builds: every width and precision counts."""
    text = fmt.decode("latin-1") if isinstance(fmt, bytes) else fmt
    values = args if isinstance(args, tuple) else (args,)
    star = max((abs(_int(v)) for v in values), default=0)
    total = len(text) + approx_len(args, limit)
    for match in _PRINTF.finditer(text):
        for group in (match.group(1), match.group(2)):
            if group == "*":
                total += star
            elif group:
                total += _number(group)
    return total


# -- checks before a call --------------------------------------------------------------------

_PAD_METHODS = frozenset({"center", "ljust", "rjust", "zfill"})
_WIDE_ERRORS = frozenset({"xmlcharrefreplace", "backslashreplace", "namereplace"})


def _replace_size(text: str | bytes | bytearray, old: Any, new: Any, count: Any) -> int:
    if not isinstance(old, str | bytes) or not isinstance(new, str | bytes):
        return len(text)
    hits = text.count(old) if old else len(text) + 1  # type: ignore[arg-type]
    if isinstance(count, int) and count >= 0:
        hits = min(hits, count)
    return len(text) + hits * max(0, len(new) - len(old))


def _check_method(
    budget: Budget, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Refuse a str/bytes/int method call that would build a value over the cap."""
    owner = getattr(func, "__self__", None)
    name = getattr(func, "__name__", "")
    what = f"{name}()"
    if isinstance(owner, int) and name == "to_bytes":
        budget.size(_int(_arg(args, kwargs, 0, "length")), what, "bytes")
    if not isinstance(owner, str | bytes | bytearray):
        return args, kwargs
    n = len(owner)
    if name in _PAD_METHODS:
        budget.size(max(n, _int(_arg(args, kwargs, 0, "width"))), what)
    elif name == "expandtabs":
        tab = "\t" if isinstance(owner, str) else b"\t"
        size = _int(_arg(args, kwargs, 0, "tabsize")) if args or kwargs else 8
        budget.size(n + owner.count(tab) * max(size, 1), what)  # type: ignore[arg-type]
    elif name == "replace":
        old, new, count = (*args, None, None, None)[:3]
        budget.size(_replace_size(owner, old, new, count), what)
    elif name == "join" and args:
        items = _materialize(args[0], budget, what)
        seps = max(len(items) - 1, 0) * n
        budget.size(seps + approx_len(items, budget.limits.max_output), what)
        args = (items, *args[1:])
    elif name == "translate" and args and isinstance(args[0], Mapping):
        widest = max((len(v) if isinstance(v, str) else 1 for v in args[0].values()), default=1)
        budget.size(n * max(widest, 1), what)
    elif name == "encode":
        errors = _arg(args, kwargs, 1, "errors")
        budget.size(n * (16 if errors in _WIDE_ERRORS else 4), what, "bytes")
    elif name == "decode":
        errors = _arg(args, kwargs, 1, "errors")
        budget.size(n * (4 if errors in _WIDE_ERRORS else 1), what)
    return args, kwargs


FilterCheck = Callable[
    [Budget, Any, Any, tuple[Any, ...], dict[str, Any]], tuple[Any, tuple[Any, ...]]
]


def _filter_replace(
    budget: Budget, env: Any, value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[Any, tuple[Any, ...]]:
    # The arguments' printed sizes were checked already (|replace stringifies), so str() is cheap.
    old, new, count = (*args, None, None, None)[:3]
    budget.size(_replace_size(str(value), str(old), str(new), count), "|replace")
    return value, args


def _filter_join(
    budget: Budget, env: Any, value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[Any, tuple[Any, ...]]:
    # |join(d, attribute): take the attributes here so the estimate is of what is joined.
    items = _materialize(value, budget, "|join")
    sep = _arg(args, kwargs, 0, "d")
    attribute = _arg(args, kwargs, 1, "attribute")
    if attribute is not None:
        getter = make_attrgetter(env, attribute)
        items = [getter(item) for item in items]
        args = args[:1]
        kwargs.pop("attribute", None)
    sep_len = approx_len(sep, budget.limits.max_output) if sep is not None else 0
    budget.size(approx_len(items, budget.limits.max_output) + sep_len * len(items), "|join")
    return items, args


def _filter_format(
    budget: Budget, env: Any, value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[Any, tuple[Any, ...]]:
    fmt = str(value)
    budget.size(printf_size(fmt, kwargs or args, budget.limits.max_output), "|format")
    return value, args


def _filter_wordwrap(
    budget: Budget, env: Any, value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[Any, tuple[Any, ...]]:
    text = str(value)
    wrapstring = _arg(args, kwargs, 2, "wrapstring")
    extra = len(wrapstring) if isinstance(wrapstring, str) else 1
    budget.size(len(text) * (1 + extra), "|wordwrap")
    return value, args


def _filter_batch(
    budget: Budget, env: Any, value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[Any, tuple[Any, ...]]:
    linecount = _int(_arg(args, kwargs, 0, "linecount"))
    budget.size(linecount, "|batch", "items")
    fill = _arg(args, kwargs, 1, "fill_with")
    if fill is not None:  # up to linecount references to it, printed as as many copies
        budget.size(linecount * approx_len(fill, budget.limits.max_output), "|batch fill_with")
    return value, args


def _filter_slice(
    budget: Budget, env: Any, value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[Any, tuple[Any, ...]]:
    slices = _int(_arg(args, kwargs, 0, "slices"))
    if slices > MAX_LOOP_ITEMS:
        raise LimitExceeded(f"|slice({slices}) is above the limit of {MAX_LOOP_ITEMS} slices")
    fill = _arg(args, kwargs, 1, "fill_with")
    if fill is not None:
        budget.size(slices * approx_len(fill, budget.limits.max_output), "|slice fill_with")
    return value, args


def _filter_tojson(
    budget: Budget, env: Any, value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[Any, tuple[Any, ...]]:
    indent = _arg(args, kwargs, 0, "indent")
    width = len(indent) if isinstance(indent, str) else _int(indent)
    budget.size(min(width, 10**12), "|tojson indent")
    budget.size(approx_len(value, budget.limits.max_output, indent=width), "|tojson")
    return value, args


def _filter_sum(
    budget: Budget, env: Any, value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[Any, tuple[Any, ...]]:
    start = _arg(args, kwargs, 1, "start")
    if start is None or isinstance(start, int | float):
        return value, args
    # Summing sequences copies the growing result once per item: bound the whole copying.
    items = _materialize(value, budget, "|sum")
    total = approx_len(start, budget.limits.max_output)
    total += sum(len(i) if isinstance(i, str | list | tuple) else 1 for i in items)
    budget.size(total, "|sum")
    budget.charge(total * len(items) // 2)
    return items, args


def _filter_round(
    budget: Budget, env: Any, value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[Any, tuple[Any, ...]]:
    # 'ceil'/'floor' compute 10 ** precision as an integer: one C call, minutes for 10 ** 10**7.
    precision = _int(_arg(args, kwargs, 0, "precision"))
    if precision > MAX_ROUND_PRECISION:
        raise LimitExceeded(
            f"|round precision {precision} is above the limit of {MAX_ROUND_PRECISION}"
        )
    return value, args


_FILTER_CHECKS: dict[str, FilterCheck] = {
    "round": _filter_round,
    "replace": _filter_replace,
    "join": _filter_join,
    "format": _filter_format,
    "wordwrap": _filter_wordwrap,
    "batch": _filter_batch,
    "slice": _filter_slice,
    "tojson": _filter_tojson,
    "sum": _filter_sum,
}
# Filters that turn their arguments into text: what they would print is estimated first.
_STRINGIFYING = frozenset(
    {
        "capitalize", "e", "escape", "forceescape", "format", "lower", "replace", "safe",
        "string", "striptags", "title", "trim", "truncate", "upper", "urlencode", "urlize",
        "wordcount", "wordwrap",
    }
)  # fmt: skip


# Filters that run Python code per item or word (sorting keys, textwrap, urlize): their input is
# bounded so one call ends soon after the deadline even though it cannot check it itself.
_SLOW = frozenset(
    {
        "dictsort", "groupby", "list", "map", "max", "min", "reject", "rejectattr", "select",
        "selectattr", "sort", "sum", "unique", "urlize", "wordwrap",
    }
)  # fmt: skip


# Filters that compare items (in C, holding the GIL): nested lists make each comparison long.
_COMPARING = frozenset({"dictsort", "groupby", "max", "min", "sort", "unique"})
# Filters whose result may hold many references to one big value (map('default', big), ...).
_COLLECTING = frozenset({"batch", "list", "reverse", "select", "selectattr", "reject", "slice"})


def _check_slow(value: Any, what: str) -> None:
    n = len(value) if isinstance(value, str | bytes | list | tuple | dict | set | frozenset) else 0
    if n > MAX_SLOW_INPUT:
        unit = "characters" if isinstance(value, str | bytes) else "items"
        raise LimitExceeded(f"{what} of {n} {unit} is above the limit of {MAX_SLOW_INPUT}")


def _checked(budget: Budget, result: Any, what: str) -> Any:
    """Count what a step built, and refuse one above the cap (the estimates keep this rare)."""
    if isinstance(result, str | bytes | bytearray):
        budget.size(len(result), what)
        budget.charge(len(result))
    elif isinstance(result, list | tuple | dict | set | frozenset):
        budget.size(len(result), what, "items")
        budget.charge(len(result))
    return result


def _guard_filter(env: Any, name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    skip = 1 if getattr(func, "jinja_pass_arg", None) is not None else 0
    check = _FILTER_CHECKS.get(name)
    stringifies = name in _STRINGIFYING
    slow = name in _SLOW
    collects = name in _COLLECTING
    what = f"|{name}"

    @functools.wraps(func)  # keeps jinja_pass_arg, so Jinja still passes the context first
    def guarded(*args: Any, **kwargs: Any) -> Any:
        budget = current_budget()
        budget.tick()
        if len(args) > skip and (check is not None or stringifies or slow or name in _COMPARING):
            head, value, rest = args[:skip], args[skip], args[skip + 1 :]
            if slow:
                _check_slow(value, what)
            if name in _COMPARING:
                cap = budget.limits.max_work
                budget.size(approx_len(value, cap), f"comparing the items of {what}", limit=cap)
            if stringifies:
                cap = budget.limits.max_output
                budget.size(approx_len((value, rest, list(kwargs.values())), cap), what)
            if check is not None:
                value, rest = check(budget, env, value, rest, kwargs)
            args = (*head, value, *rest)
        result = func(*args, **kwargs)
        if collects and isinstance(result, list | tuple):
            cap = budget.limits.max_work
            budget.size(approx_len(result, cap), what, limit=cap)
        return _checked(budget, result, what)

    return guarded


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
        widths = [_number(n) for n in _SPEC_NUMBER.findall(format_spec)]
        self._total += max(widths, default=0) + approx_len(value, cap)
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
            args, kwargs = _check_method(budget, func, args, kwargs)
        name = getattr(func, "__name__", type(func).__name__)
        return _checked(budget, super().call(context, func, *args, **kwargs), f"{name}()")

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
        return _checked(budget, super().call_binop(context, operator, left, right), repr(operator))


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
    env.filters = {name: _guard_filter(env, name, func) for name, func in env.filters.items()}
    for name, op in _COMPARING_TESTS.items():  # `x is eq(y)`, select('in', big), ...
        env.tests[name] = functools.partial(_compare_test, op)  # type: ignore[assignment]
    env.filters["_tf_bounded"] = _bounded
    env.filters["_tf_concat"] = _concat
    env.concat = _buffer_concat  # type: ignore[method-assign]
    return env
