"""Advice for a trigger naming events that never happened: "no event named ... has been stored".

A Prefect user who keeps ``prefect.flow-run.*`` in ``expect`` gets an automation that never fires.
It is saved anyway (the events may simply not have happened yet), but the API answer carries a
warning with a suggestion. A name counts as known when the server itself emits it (the catalogue
below) or when a stored event has it. The lookups use the ``(event, occurred)`` index only: an
exact name is one index probe; a wildcard walks the distinct stored names from its literal prefix
(each step one ``min(event) > last`` probe), at most ``_MAX_STEPS`` steps; and all the lookups of
one automation share ``_MAX_QUERIES``. When the budget runs out, no warning is given (unknown is
not "never"). The prefix walk relies on byte order (SQLite always; PostgreSQL with a C collation,
the default of our databases); under a linguistic collation it may warn where it should not.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from tideflow.schemas.automations import Automation
from tideflow.schemas.matching import name_matches
from tideflow.schemas.triggers import EventTrigger, MetricTrigger, Trigger
from tideflow.server.storage.change_events import CHANGE_EVENTS
from tideflow.server.storage.tables import events

__all__ = ["KNOWN_EVENTS", "unknown_event_warnings"]

_STATES = (
    "Scheduled", "Late", "AwaitingRetry", "AwaitingConcurrencySlot", "Pending", "Running",
    "Retrying", "Completed", "Failed", "Crashed", "Cancelling", "Cancelled", "Paused", "TimedOut",
    "Suspended", "Resuming",
)  # fmt: skip
KNOWN_EVENTS: frozenset[str] = frozenset(
    [f"tideflow.{kind}.{state}" for kind in ("flow-run", "task-run") for state in _STATES]
    + [f"tideflow.deployment.{verb}" for verb in
       ("created", "updated", "changed", "deleted", "ready", "not-ready")]
    + ["tideflow.automation.triggered", "tideflow.automation.resolved",
       "tideflow.automation.paused", "tideflow.automation.action.triggered",
       "tideflow.automation.action.executed", "tideflow.automation.action.failed",
       "tideflow.events.dropped", "tideflow.api-key.created", "tideflow.api-key.revoked",
       "tideflow.auth.failed", *CHANGE_EVENTS]
)  # fmt: skip
"""Event names the server emits itself: known before the first one is stored."""

_MAX_STEPS = 16  # distinct stored names looked at for one wildcard
_MAX_QUERIES = 64  # index probes for one automation
_MAX_WARNINGS = 5
_SAMPLE = 24  # stored names near a pattern, for "did you mean"


class _Budget:
    def __init__(self) -> None:
        self.left = _MAX_QUERIES

    def take(self) -> bool:
        self.left -= 1
        return self.left >= 0


def _leaves(trigger: Trigger | MetricTrigger, path: str) -> Iterator[tuple[str, EventTrigger]]:
    if isinstance(trigger, EventTrigger):
        yield path, trigger
        return
    if isinstance(trigger, MetricTrigger):
        return  # reads stored runs, not event names
    for i, child in enumerate(trigger.triggers):
        yield from _leaves(child, f"{path}.triggers[{i}]")


async def _next_name(session: AsyncSession, after: str, inclusive: bool) -> str | None:
    column = events.c.event
    where = column >= after if inclusive else column > after
    result = await session.execute(sa.select(sa.func.min(column)).where(where))
    value = result.scalar_one_or_none()
    return str(value) if value is not None else None


async def _stored_match(session: AsyncSession, pattern: str, budget: _Budget) -> str | bool | None:
    """A stored name matching ``pattern``; False when none does; None when the budget ran out."""
    if "*" not in pattern:
        if not budget.take():
            return None
        query = sa.select(events.c.event).where(events.c.event == pattern).limit(1)
        return pattern if (await session.execute(query)).first() is not None else False
    prefix = pattern.split("*", 1)[0]
    name: str | None = prefix
    inclusive = True
    for _ in range(_MAX_STEPS):
        if not budget.take():
            return None
        name = await _next_name(session, name or "", inclusive)
        inclusive = False
        if name is None or not name.startswith(prefix):
            return False
        if name_matches(pattern, name):
            return name
    return None


async def _known(session: AsyncSession, pattern: str, budget: _Budget) -> str | bool | None:
    """Like :func:`_stored_match`, the server's own names counting as stored."""
    for name in sorted(KNOWN_EVENTS, key=lambda n: (not n.endswith(".Completed"), n)):
        if name_matches(pattern, name):
            return name
    return await _stored_match(session, pattern, budget)


async def _nearby(session: AsyncSession, pattern: str, budget: _Budget) -> list[str]:
    """Up to ``_SAMPLE`` stored names from the pattern's first dotted segment on."""
    start = pattern.split(".", 1)[0]
    out: list[str] = []
    name: str | None = start
    inclusive = True
    while len(out) < _SAMPLE and budget.take():
        name = await _next_name(session, name or "", inclusive)
        inclusive = False
        if name is None:
            break
        out.append(name)
    return out


async def _suggestion(session: AsyncSession, pattern: str, budget: _Budget) -> str | None:
    head, dot, rest = pattern.partition(".")
    if dot and head != "tideflow":
        renamed = f"tideflow.{rest}"
        found = await _known(session, renamed, budget)
        if isinstance(found, str):
            return renamed if renamed == found else f"{renamed} (e.g. {found})"
    candidates = sorted(KNOWN_EVENTS | set(await _nearby(session, pattern, budget)))
    close = difflib.get_close_matches(pattern, candidates, n=1, cutoff=0.75)
    return close[0] if close else None


async def unknown_event_warnings(session: AsyncSession, automation: Automation) -> list[str]:
    """One warning per ``expect``/``after`` name that no stored event (and no event the server
    emits) has, with a suggestion when one is near; bounded index probes, never a scan."""
    budget = _Budget()
    warnings: list[str] = []
    for path, leaf in _leaves(automation.trigger, "trigger"):
        for field, names in (("expect", leaf.expect), ("after", leaf.after)):
            for pattern in sorted(names):
                if len(warnings) >= _MAX_WARNINGS or budget.left <= 0:
                    return warnings
                if pattern.strip("*") == "":
                    continue
                if await _known(session, pattern, budget) is not False:
                    continue
                hint = await _suggestion(session, pattern, budget)
                advice = f"; did you mean {hint}?" if hint else ""
                warnings.append(
                    f"{path}.{field}: no event named {pattern!r} has been stored{advice} "
                    "(saved anyway: the trigger fires once such an event arrives)"
                )
    return warnings
