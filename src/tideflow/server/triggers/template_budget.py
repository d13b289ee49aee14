"""Per-render limits for action templates: the deadline and size caps, and size estimates.

A :class:`Budget` is one render's deadline and counters; the sandbox (``sandbox.py``) and its
pre-call checks (``template_checks.py``) consult the current one (a context variable, so concurrent
renders in worker threads never share one) before each step. :func:`approx_len` estimates how many
characters printing, joining or comparing a value walks, without building anything.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from jinja2.exceptions import SecurityError

__all__ = [
    "DEFAULT_MAX_OUTPUT",
    "DEFAULT_RENDER_TIMEOUT",
    "MAX_LOOP_ITEMS",
    "MAX_POWER_BITS",
    "MAX_RECURSION",
    "MAX_ROUND_PRECISION",
    "MAX_SEQUENCE",
    "MAX_SLOW_INPUT",
    "WORK_FACTOR",
    "Budget",
    "LimitExceeded",
    "TemplateLimits",
    "approx_len",
    "arg",
    "as_int",
    "budget_scope",
    "current_budget",
    "materialize",
    "printf_size",
    "seconds",
    "spec_number",
    "spec_width",
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


def as_int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def arg(args: tuple[Any, ...], kwargs: Mapping[str, Any], index: int, name: str) -> Any:
    if len(args) > index:
        return args[index]
    return kwargs.get(name)


def materialize(items: Iterable[Any], budget: Budget, what: str) -> list[Any]:
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


def spec_number(text: str) -> int:
    return int(text) if len(text) <= 12 else 10**12


def spec_width(format_spec: str) -> int:
    """The largest number in a str.format spec (its width or precision, what it pads to)."""
    return max((spec_number(n) for n in _SPEC_NUMBER.findall(format_spec)), default=0)


def printf_size(fmt: str | bytes, args: Any, limit: int) -> int:
    """About how many characters ``fmt % args`` builds: every width and precision counts."""
    text = fmt.decode("latin-1") if isinstance(fmt, bytes) else fmt
    values = args if isinstance(args, tuple) else (args,)
    star = max((abs(as_int(v)) for v in values), default=0)
    total = len(text) + approx_len(args, limit)
    for match in _PRINTF.finditer(text):
        for group in (match.group(1), match.group(2)):
            if group == "*":
                total += star
            elif group:
                total += spec_number(group)
    return total
