"""Checks before a template step that could build a big value: str/bytes/int methods and filters.

Each check estimates, from the operands, the size of what the step would build and refuses it
through the render's :class:`Budget` before anything is allocated; :func:`guard_filter` wraps every
Jinja filter with them, and :func:`checked` counts what a step did build.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

from jinja2.filters import make_attrgetter

from tideflow.server.triggers.template_budget import (
    MAX_LOOP_ITEMS,
    MAX_ROUND_PRECISION,
    MAX_SLOW_INPUT,
    Budget,
    LimitExceeded,
    approx_len,
    arg,
    as_int,
    current_budget,
    materialize,
    printf_size,
)

__all__ = ["check_method", "checked", "guard_filter"]

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


def check_method(
    budget: Budget, func: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Refuse a str/bytes/int method call that would build a value over the cap."""
    owner = getattr(func, "__self__", None)
    name = getattr(func, "__name__", "")
    what = f"{name}()"
    if isinstance(owner, int) and name == "to_bytes":
        budget.size(as_int(arg(args, kwargs, 0, "length")), what, "bytes")
    if not isinstance(owner, str | bytes | bytearray):
        return args, kwargs
    n = len(owner)
    if name in _PAD_METHODS:
        budget.size(max(n, as_int(arg(args, kwargs, 0, "width"))), what)
    elif name == "expandtabs":
        tab = "\t" if isinstance(owner, str) else b"\t"
        size = as_int(arg(args, kwargs, 0, "tabsize")) if args or kwargs else 8
        budget.size(n + owner.count(tab) * max(size, 1), what)  # type: ignore[arg-type]
    elif name == "replace":
        old, new, count = (*args, None, None, None)[:3]
        budget.size(_replace_size(owner, old, new, count), what)
    elif name == "join" and args:
        items = materialize(args[0], budget, what)
        seps = max(len(items) - 1, 0) * n
        budget.size(seps + approx_len(items, budget.limits.max_output), what)
        args = (items, *args[1:])
    elif name == "translate" and args and isinstance(args[0], Mapping):
        widest = max((len(v) if isinstance(v, str) else 1 for v in args[0].values()), default=1)
        budget.size(n * max(widest, 1), what)
    elif name == "encode":
        errors = arg(args, kwargs, 1, "errors")
        budget.size(n * (16 if errors in _WIDE_ERRORS else 4), what, "bytes")
    elif name == "decode":
        errors = arg(args, kwargs, 1, "errors")
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
    items = materialize(value, budget, "|join")
    sep = arg(args, kwargs, 0, "d")
    attribute = arg(args, kwargs, 1, "attribute")
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
    wrapstring = arg(args, kwargs, 2, "wrapstring")
    extra = len(wrapstring) if isinstance(wrapstring, str) else 1
    budget.size(len(text) * (1 + extra), "|wordwrap")
    return value, args


def _filter_batch(
    budget: Budget, env: Any, value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[Any, tuple[Any, ...]]:
    linecount = as_int(arg(args, kwargs, 0, "linecount"))
    budget.size(linecount, "|batch", "items")
    fill = arg(args, kwargs, 1, "fill_with")
    if fill is not None:  # up to linecount references to it, printed as as many copies
        budget.size(linecount * approx_len(fill, budget.limits.max_output), "|batch fill_with")
    return value, args


def _filter_slice(
    budget: Budget, env: Any, value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[Any, tuple[Any, ...]]:
    slices = as_int(arg(args, kwargs, 0, "slices"))
    if slices > MAX_LOOP_ITEMS:
        raise LimitExceeded(f"|slice({slices}) is above the limit of {MAX_LOOP_ITEMS} slices")
    fill = arg(args, kwargs, 1, "fill_with")
    if fill is not None:
        budget.size(slices * approx_len(fill, budget.limits.max_output), "|slice fill_with")
    return value, args


def _filter_tojson(
    budget: Budget, env: Any, value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[Any, tuple[Any, ...]]:
    indent = arg(args, kwargs, 0, "indent")
    width = len(indent) if isinstance(indent, str) else as_int(indent)
    budget.size(min(width, 10**12), "|tojson indent")
    budget.size(approx_len(value, budget.limits.max_output, indent=width), "|tojson")
    return value, args


def _filter_sum(
    budget: Budget, env: Any, value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[Any, tuple[Any, ...]]:
    start = arg(args, kwargs, 1, "start")
    if start is None or isinstance(start, int | float):
        return value, args
    # Summing sequences copies the growing result once per item: bound the whole copying.
    items = materialize(value, budget, "|sum")
    total = approx_len(start, budget.limits.max_output)
    total += sum(len(i) if isinstance(i, str | list | tuple) else 1 for i in items)
    budget.size(total, "|sum")
    budget.charge(total * len(items) // 2)
    return items, args


def _filter_round(
    budget: Budget, env: Any, value: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[Any, tuple[Any, ...]]:
    # 'ceil'/'floor' compute 10 ** precision as an integer: one C call, minutes for 10 ** 10**7.
    precision = as_int(arg(args, kwargs, 0, "precision"))
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


def checked(budget: Budget, result: Any, what: str) -> Any:
    """Count what a step built, and refuse one above the cap (the estimates keep this rare)."""
    if isinstance(result, str | bytes | bytearray):
        budget.size(len(result), what)
        budget.charge(len(result))
    elif isinstance(result, list | tuple | dict | set | frozenset):
        budget.size(len(result), what, "items")
        budget.charge(len(result))
    return result


def guard_filter(env: Any, name: str, func: Callable[..., Any]) -> Callable[..., Any]:
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
        return checked(budget, result, what)

    return guarded
