"""Deployment schedules (cron, interval, RRule) and their pure maths: next run times and summaries.

Nothing here reads the clock: callers pass ``start``/``end``. Results are aware UTC datetimes with
zero microseconds, exact and deterministic, so the scheduler can key runs by (deployment, time).

Schedules are evaluated on the wall clock of an IANA ``timezone``. Around DST changes:

- a wall time that does not exist (spring forward) runs at the same time shifted by the gap
  (02:30 in Europe/Paris on the last Sunday of March runs at 03:30 CEST), and a wall time that exists
  twice (fall back) runs once, at its first occurrence. This is RFC 5545's rule; it applies to RRULEs,
  whole-day intervals and cron expressions with specific hours (``0 2 * * *`` runs exactly once a day).
- cron expressions whose hour field is ``*`` follow elapsed time instead: a wall time that does not
  exist is skipped and one that exists twice runs at both instants (``*/15 * * * *`` keeps running
  every 15 real minutes through both changes).

Every computation is bounded, whatever the rule (issue 19): an RRULE walks at most
``MAX_WALKED_OCCURRENCES`` occurrences and ``MAX_WALKED_YEARS`` of calendar per call (beyond that it
raises ``ScheduleTooExpensive``), a rule with COUNT and one occurrence per period skips ahead
arithmetically, and validation refuses a rule with no occurrence in the ``PROBE_YEARS`` after its
start (``FREQ=SECONDLY;BYMONTH=2;BYMONTHDAY=30``) in milliseconds instead of walking to year 9999.

croniter and dateutil are imported by the functions that use them: together they cost
~40 ms to import, which every process reading a deployment would otherwise pay (issue 6).
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import re
from collections.abc import Iterable, Iterator
from enum import Enum
from typing import Annotated, Any, Literal
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)

__all__ = [
    "DEFAULT_ANCHOR",
    "MAX_CRON_LENGTH",
    "MAX_RRULE_LENGTH",
    "MAX_TIMEZONE_LENGTH",
    "MAX_WALKED_OCCURRENCES",
    "MAX_WALKED_PERIODS",
    "MAX_WALKED_YEARS",
    "PROBE_YEARS",
    "CronSchedule",
    "DeploymentSchedule",
    "DeploymentScheduleCreate",
    "DeploymentScheduleUpdate",
    "IntervalSchedule",
    "RRuleSchedule",
    "Schedule",
    "ScheduleTooExpensive",
    "next_run_times",
    "schedule_summary",
    "scheduled_run_idempotency_key",
]

DEFAULT_ANCHOR = dt.datetime(2020, 1, 1)
"""Wall time (in the schedule's timezone) that fixes an interval's phase or an RRULE's DTSTART."""

MAX_TIMEZONE_LENGTH = 64
"""Longest ``timezone`` accepted; IANA names are at most ~40 characters."""
MAX_CRON_LENGTH = 200
MAX_RRULE_LENGTH = 5000
"""Longest RRULE text (RDATE/EXDATE lists included); each date in it costs work on every call."""
MAX_WALKED_OCCURRENCES = 50_000
"""Occurrences one computation may walk through (before and inside its window): ~0.1-0.5 s."""
MAX_WALKED_PERIODS = 500_000
"""Periods (seconds of a SECONDLY rule…) a rule with COUNT may have to walk from DTSTART when it
cannot skip ahead; dateutil spends work on each even when it yields nothing."""
MAX_WALKED_YEARS = 200
"""Calendar years one RRULE computation may walk from its (rebased) start."""
PROBE_YEARS = 60
"""Validation wants an occurrence within this many years of the rule's start (Feb 29 on a Monday
recurs every 28 to 40 years)."""

# Room around a window for out-of-order DST mappings; no zone shifts its offset by 3 h or more at once.
_MARGIN = dt.timedelta(hours=3)
_DAY = dt.timedelta(days=1)
_LATEST = dt.datetime(9999, 12, 25, tzinfo=dt.UTC)
_UNITS = (("week", 604800), ("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1))
_CRON_ALIASES = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}
_CRON_FIELDS = "minute hour day-of-month month day-of-week"


class _Policy(Enum):
    WALL = "wall"  # gap: shift forward; repeated: first occurrence
    ELAPSED = "elapsed"  # gap: skip; repeated: both instants


class ScheduleTooExpensive(ValueError):
    """Computing a schedule's run times would take more work than the bounds of this module allow."""


def _shown(text: str, width: int = 80) -> str:
    """``text`` quoted for an error message, cut to ``width`` characters."""
    return repr(text) if len(text) <= width else f"{text[:width]!r}… ({len(text)} characters)"


def _zone(name: str) -> ZoneInfo:
    if len(name) > MAX_TIMEZONE_LENGTH:
        raise ValueError(
            f"timezone is too long ({len(name)} characters, at most {MAX_TIMEZONE_LENGTH}): "
            "use an IANA name such as 'Europe/Paris'"
        )
    try:
        return ZoneInfo(name)
    # OSError: a name the OS cannot even look up as a file (too long, odd bytes)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(
            f"unknown timezone {_shown(name)} (use an IANA name such as 'Europe/Paris')"
        ) from None


def _check_timezone(value: str) -> str:
    _zone(value)
    return value


def _require_aware(value: dt.datetime, name: str) -> dt.datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got {value.isoformat()}")
    return value.astimezone(dt.UTC)


def _instants(wall: dt.datetime, tz: dt.tzinfo, policy: _Policy) -> list[dt.datetime]:
    """UTC instants of a naive wall time in ``tz`` under ``policy`` (0, 1 or 2 of them)."""
    first = wall.replace(tzinfo=tz, fold=0).astimezone(dt.UTC)
    second = wall.replace(tzinfo=tz, fold=1).astimezone(dt.UTC)
    if first == second:
        return [first]
    exists = first.astimezone(tz).replace(tzinfo=None) == wall
    if not exists:  # in a gap: the later mapping uses the offset from before the gap
        return [] if policy is _Policy.ELAPSED else [max(first, second)]
    return sorted({first, second}) if policy is _Policy.ELAPSED else [min(first, second)]


def _collect(
    walls: Iterable[tuple[dt.datetime, dt.tzinfo]],
    policy: _Policy,
    start: dt.datetime,
    end: dt.datetime,
    limit: int,
) -> list[dt.datetime]:
    """The first ``limit`` instants in (start, end] of increasing naive wall times in their zones."""
    found: set[dt.datetime] = set()
    stop_after: dt.datetime | None = None
    for walked, (wall, tz) in enumerate(walls):
        if walked >= MAX_WALKED_OCCURRENCES:
            raise ScheduleTooExpensive(
                f"more than {MAX_WALKED_OCCURRENCES} candidate times in one window"
            )
        local_end = end.astimezone(tz).replace(tzinfo=None) + _MARGIN
        if wall > local_end or (stop_after is not None and wall > stop_after):
            break
        for instant in _instants(wall, tz, policy):
            if start < instant <= end:
                found.add(instant)
        if stop_after is None and len(found) >= limit:
            # later wall times can still map before these (DST), but never beyond the margin
            stop_after = wall + _MARGIN
    return sorted(found)[:limit]


def _window(start: dt.datetime, end: dt.datetime, limit: int) -> tuple[dt.datetime, dt.datetime]:
    if limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit}")
    # the maths adds margins and zone offsets: keep clear of datetime's year 9999 limit
    return _require_aware(start, "start"), min(_require_aware(end, "end"), _LATEST)


class _Schedule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    timezone: str = Field("UTC", description="IANA timezone whose wall clock the schedule follows.")

    @field_validator("timezone")
    @classmethod
    def _check_zone(cls, value: str) -> str:
        return _check_timezone(value)

    @model_validator(mode="after")
    def _tag_is_always_set(self) -> _Schedule:
        # the ``type`` tag must survive ``model_dump(exclude_unset=True)`` of an enclosing update
        self.__pydantic_fields_set__.add("type")
        return self

    @property
    def zone(self) -> ZoneInfo:
        return _zone(self.timezone)


# ---------------------------------------------------------------------------------------------- cron


def _normalise_cron(value: str) -> str:
    expr = " ".join(value.split())
    if not expr:
        raise ValueError("cron expression is empty")
    if expr.startswith("@"):
        if expr.lower() not in _CRON_ALIASES:
            aliases = ", ".join(sorted(_CRON_ALIASES))
            raise ValueError(
                f"invalid cron expression {value!r}: unknown alias (use one of {aliases})"
            )
        return expr.lower()
    fields = expr.split(" ")
    if len(fields) != 5:
        raise ValueError(
            f"invalid cron expression {value!r}: expected 5 fields ({_CRON_FIELDS}), got {len(fields)}"
        )
    return expr


class CronSchedule(_Schedule):
    """Runs at the times a 5-field cron expression matches, on the wall clock of ``timezone``.

    ``day_or`` (True, as in classic cron) runs when day-of-month OR day-of-week match if both are
    restricted; False requires both.
    """

    type: Literal["cron"] = "cron"
    cron: str = Field(examples=["0 2 * * *"])
    day_or: bool = True

    @field_validator("cron")
    @classmethod
    def _check_cron(cls, value: str) -> str:
        from croniter import croniter  # lazy: see the module docstring

        if len(value) > MAX_CRON_LENGTH:
            raise ValueError(
                f"cron expression is too long ({len(value)} characters, at most {MAX_CRON_LENGTH})"
            )
        expr = _normalise_cron(value)
        try:
            croniter(expr, DEFAULT_ANCHOR)
        except (ValueError, KeyError) as exc:  # croniter's errors derive from ValueError
            raise ValueError(f"invalid cron expression {value!r}: {exc}") from None
        return expr

    @model_validator(mode="after")
    def _check_matches(self) -> CronSchedule:
        from croniter import CroniterBadDateError, croniter

        try:
            croniter(self.cron, DEFAULT_ANCHOR, day_or=self.day_or).get_next(dt.datetime)
        except CroniterBadDateError:
            raise ValueError(f"cron expression {self.cron!r} never matches a date") from None
        return self

    def _fields(self) -> list[list[Any]]:
        from croniter import croniter

        expanded: list[list[Any]] = croniter.expand(self.cron)[0]
        return expanded

    def next_run_times(
        self, *, start: dt.datetime, end: dt.datetime, limit: int
    ) -> list[dt.datetime]:
        """Up to ``limit`` aware UTC run times in (start, end], ascending."""
        from croniter import CroniterBadDateError, croniter

        start, end = _window(start, end, limit)
        if limit == 0 or end <= start:
            return []
        tz = self.zone
        policy = _Policy.ELAPSED if self._fields()[1] == ["*"] else _Policy.WALL
        first = start.astimezone(tz).replace(tzinfo=None) - _MARGIN
        it = croniter(self.cron, first, day_or=self.day_or)

        def walls() -> Iterator[tuple[dt.datetime, dt.tzinfo]]:
            while True:
                try:
                    yield it.get_next(dt.datetime), tz
                except CroniterBadDateError:
                    return

        return _collect(walls(), policy, start, end, limit)

    def summary(self) -> str:
        """A short English description, e.g. ``every day at 02:00 (Europe/Paris)``."""
        return _cron_summary(self)


_DAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"]
_MONTHS = [
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
]  # fmt: skip


def _plain(values: list[Any]) -> bool:
    return all(isinstance(v, int) for v in values)


def _cron_summary(schedule: CronSchedule) -> str:
    minute, hour, dom, month, dow = schedule._fields()
    fallback = f"cron {schedule.cron!r} ({schedule.timezone})"
    if not all(_plain(f) or f == ["*"] for f in (minute, hour, dom, month, dow)):
        return fallback
    if hour == ["*"] and dom == month == dow == ["*"]:
        if minute == ["*"]:
            return "every minute"
        if len(minute) == 1:
            return f"every hour at minute {minute[0]}"
        steps = {b - a for a, b in itertools.pairwise(minute)}
        if minute[0] == 0 and len(steps) == 1 and 60 % next(iter(steps)) == 0:
            return f"every {next(iter(steps))} minutes"
        return fallback
    if hour == ["*"] or minute == ["*"] or len(hour) * len(minute) > 6:
        return fallback
    times = ", ".join(f"{h:02d}:{m:02d}" for h in hour for m in minute)
    zone = f" ({schedule.timezone})"
    if dom == month == dow == ["*"]:
        return f"every day at {times}{zone}"
    if dom == month == ["*"]:
        days = [_DAYS[d % 7] for d in dow]
        label = "weekday" if sorted(dow) == [1, 2, 3, 4, 5] else ", ".join(days)
        return f"every {label} at {times}{zone}"
    if dow == ["*"] and dom != ["*"] and len(dom) == 1:
        if month == ["*"]:
            return f"every month on day {dom[0]} at {times}{zone}"
        if len(month) == 1:
            return f"every year on {_MONTHS[month[0] - 1]} {dom[0]} at {times}{zone}"
    return fallback


# ------------------------------------------------------------------------------------------ interval


class IntervalSchedule(_Schedule):
    """Runs at ``anchor_date + k * interval`` for every integer k (the anchor fixes the phase only).

    ``interval`` is a whole number of seconds (a number is read as seconds). Whole-day intervals keep
    the anchor's wall-clock time in ``timezone`` across DST; shorter ones are exact elapsed time. A
    naive anchor is read in ``timezone``; with no anchor the phase is 2020-01-01 00:00 there. When
    ``timezone`` is omitted and the anchor carries a ZoneInfo, that zone is used.
    """

    type: Literal["interval"] = "interval"
    interval: dt.timedelta = Field(examples=[300])
    anchor_date: dt.datetime | None = None

    @model_validator(mode="before")
    @classmethod
    def _zone_from_anchor(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("timezone") is None:
            anchor = data.get("anchor_date")
            if isinstance(anchor, dt.datetime) and isinstance(anchor.tzinfo, ZoneInfo):
                data = {**data, "timezone": anchor.tzinfo.key}
            elif "timezone" in data:
                data = {k: v for k, v in data.items() if k != "timezone"}
        return data

    @field_validator("interval")
    @classmethod
    def _check_interval(cls, value: dt.timedelta) -> dt.timedelta:
        if value <= dt.timedelta(0):
            raise ValueError(f"interval must be positive, got {value.total_seconds():g} seconds")
        if value.microseconds:
            raise ValueError(
                f"interval must be a whole number of seconds, got {value.total_seconds():g}"
            )
        return value

    @model_validator(mode="after")
    def _localise_anchor(self) -> IntervalSchedule:
        if self.anchor_date is not None:
            anchor = self.anchor_date.replace(microsecond=0)
            if anchor.tzinfo is None:
                anchor = anchor.replace(tzinfo=self.zone)
            self.anchor_date = anchor
        return self

    @property
    def anchor(self) -> dt.datetime:
        """The effective, aware anchor."""
        if self.anchor_date is not None:
            return self.anchor_date
        return DEFAULT_ANCHOR.replace(tzinfo=self.zone)

    def next_run_times(
        self, *, start: dt.datetime, end: dt.datetime, limit: int
    ) -> list[dt.datetime]:
        """Up to ``limit`` aware UTC run times in (start, end], ascending."""
        start, end = _window(start, end, limit)
        if limit == 0 or end <= start:
            return []
        try:
            return self._run_times(start, end, limit)
        except OverflowError:  # the next run would be after year 9999
            return []

    def _run_times(self, start: dt.datetime, end: dt.datetime, limit: int) -> list[dt.datetime]:
        if self.interval % _DAY:
            anchor = self.anchor.astimezone(dt.UTC)
            k = (start - anchor) // self.interval + 1
            out: list[dt.datetime] = []
            at = anchor + k * self.interval
            while at <= end and len(out) < limit:
                out.append(at)
                at += self.interval
            return out
        tz = self.zone
        anchor_wall = self.anchor.astimezone(tz).replace(tzinfo=None)
        k = (start.astimezone(tz).replace(tzinfo=None) - anchor_wall) // self.interval - 1

        def walls() -> Iterator[tuple[dt.datetime, dt.tzinfo]]:
            step = k
            while True:
                yield anchor_wall + step * self.interval, tz
                step += 1

        return _collect(walls(), _Policy.WALL, start, end, limit)

    def summary(self) -> str:
        """``every 5 minutes``, ``every day at 02:00 (Europe/Paris)``…"""
        seconds = int(self.interval.total_seconds())
        unit, size = next((u, n) for u, n in _UNITS if seconds % n == 0)
        count = seconds // size
        text = f"every {unit}" if count == 1 else f"every {count} {unit}s"
        if seconds % 86400 == 0:
            wall = self.anchor.astimezone(self.zone)
            text += f" at {wall:%H:%M} ({self.timezone})"
        return text


# ------------------------------------------------------------------------------------------- rrule

_UTC_NAMES = {"UTC": dt.UTC, "Z": dt.UTC}
# Frequencies with a fixed length on the wall clock (dateutil FREQ constants 3..6: DAILY..SECONDLY).
_FIXED_PERIODS = {
    2: dt.timedelta(weeks=1),
    3: dt.timedelta(days=1),
    4: dt.timedelta(hours=1),
    5: dt.timedelta(minutes=1),
    6: dt.timedelta(seconds=1),
}


def _parse_rrule(text: str, tz: ZoneInfo) -> Any:
    """The dateutil rrule/rruleset of ``text``; DTSTART defaults to 2020-01-01 00:00 in ``tz``."""
    from dateutil.rrule import rrulestr  # lazy: see the module docstring

    kwargs: dict[str, Any] = {"tzids": ZoneInfo, "tzinfos": _UTC_NAMES, "cache": False}
    try:
        try:
            return rrulestr(text, dtstart=DEFAULT_ANCHOR, **kwargs)
        except ValueError as exc:
            if "UNTIL" not in str(exc):
                raise
            # an UNTIL in UTC needs an aware DTSTART: use the default one in the schedule's zone
            return rrulestr(text, dtstart=DEFAULT_ANCHOR.replace(tzinfo=tz), **kwargs)
    except (ValueError, KeyError, TypeError, OverflowError) as exc:
        raise ValueError(f"invalid rrule {text!r}: {exc}") from None


class _HorizonReached(Exception):
    """The walk went through all the calendar months it was given."""


class _Budget:
    """Calendar months an RRULE walk may still go through.

    Running out means either that the window is passed (``too_far`` is None: nothing more to
    find) or that the walk would be too long (``too_far`` is the reason, raised as
    ``ScheduleTooExpensive``).
    """

    def __init__(self, months: float, too_far: str | None = None) -> None:
        self.months = months
        self.too_far = too_far

    def spend(self, months: float) -> None:
        self.months -= months
        if self.months < 0:
            if self.too_far is not None:
                raise ScheduleTooExpensive(self.too_far)
            raise _HorizonReached


def _months_per_step(rule: Any) -> int:
    """Calendar months one step of ``rule``'s walk covers, at least (one table rebuild)."""
    from dateutil.rrule import MONTHLY, YEARLY

    return {YEARLY: 12, MONTHLY: 1}.get(rule._freq, 0) * rule._interval or 1


@functools.cache
def _walked_rule_class() -> type:
    """An rrule subclass that reports each calendar month of its walk to a ``_Budget``.

    dateutil walks period by period and yields nothing for periods that do not match: a rule whose
    BY parts never match together walks every day up to year 9999 (10 s and more). Its per-walk
    tables are rebuilt at least once per month walked, matching or not, and each rebuild reads
    ``_bynweekday`` once (twice when it is set): reading it is the one place that sees the walk
    progress, so this class counts those reads. ``tests/unit/test_schedules_bounds.py`` fails if a
    dateutil release stops doing so.
    """
    from dateutil.rrule import rrule

    class _WalkedRule(rrule):  # type: ignore[misc]
        budget: _Budget | None = None

        @property
        def _bynweekday(self) -> Any:
            value = self.__dict__["_walked_bynweekday"]
            if self.budget is not None:
                months = _months_per_step(self)
                self.budget.spend(months / 2 if value else months)
            return value

        @_bynweekday.setter
        def _bynweekday(self, value: Any) -> None:
            self.__dict__["_walked_bynweekday"] = value

    return _WalkedRule


def _copy(rule: Any, **changes: Any) -> Any:
    """``rule`` (an rrule) as a walked rule (no budget yet), with ``changes`` applied."""
    kwargs = {
        "freq": rule._freq,
        "dtstart": rule._dtstart,
        "interval": rule._interval,
        "wkst": rule._wkst,
        "count": rule._count,
        "until": rule._until,
        "cache": False,
        **rule._original_rule,  # only the BY parts given, as dateutil's own replace() does
        **changes,
    }
    return _walked_rule_class()(**kwargs)


def _one_per_period(rule: Any) -> bool:
    """Whether every period of a fixed-length ``rule`` yields exactly one occurrence (no BY parts)."""
    return (
        rule._freq in _FIXED_PERIODS
        and not rule._bysetpos
        and not any(rule._original_rule.values())  # defaults derived from DTSTART are None here
    )


def _skipped(rule: Any, after: dt.datetime) -> dict[str, Any]:
    """Changes that move ``rule``'s DTSTART forward by whole periods to just before ``after``.

    dateutil walks every period from DTSTART; moving it by whole INTERVALs of a fixed-length
    frequency keeps the same occurrences and spares walking years of seconds. With COUNT, that is
    only exact when each period yields one occurrence: then the n-th occurrence is DTSTART + n
    periods, and COUNT drops by the periods skipped. A COUNT rule that cannot skip and would walk
    more than ``MAX_WALKED_PERIODS`` periods to reach ``after`` raises ``ScheduleTooExpensive``.
    """
    period = _FIXED_PERIODS.get(rule._freq)
    dtstart: dt.datetime = rule._dtstart
    if period is None or (dtstart.tzinfo is None) != (after.tzinfo is None):
        return {}
    step = period * rule._interval
    wall_after = after.replace(tzinfo=None)
    if dtstart.tzinfo is not None:  # whole periods on the wall clock of DTSTART's zone
        wall_after = after.astimezone(dtstart.tzinfo).replace(tzinfo=None)
    periods = (wall_after - dtstart.replace(tzinfo=None)) // step - 1
    if periods <= 0:
        return {}
    if rule._count is not None and not _one_per_period(rule):
        if periods > MAX_WALKED_PERIODS:
            raise ScheduleTooExpensive(
                f"COUNT with BY parts: {periods} periods to walk from DTSTART to now "
                f"(at most {MAX_WALKED_PERIODS}); use UNTIL or a later DTSTART"
            )
        return {}
    changes: dict[str, Any] = {"dtstart": dtstart + periods * step}
    if rule._count is not None:
        changes["count"] = max(rule._count - periods, 0)
    return changes


def _walk_budget(rule: Any, end: dt.datetime | None) -> _Budget:
    """The months a walked ``rule`` may go through: to ``end`` (aware), or ``PROBE_YEARS``."""
    if end is None:
        return _Budget(PROBE_YEARS * 12)
    start: dt.datetime = rule._dtstart
    if start.tzinfo is not None:
        end = end.astimezone(start.tzinfo)
    # +2 for zones and margins; a step is charged when it begins: one more step, so the last is walked
    needed = _months(start.replace(tzinfo=None), end.replace(tzinfo=None)) + 2
    needed += _months_per_step(rule)
    cap = MAX_WALKED_YEARS * 12
    if needed <= cap:
        return _Budget(needed)
    return _Budget(
        cap,
        f"the rule starts {needed // 12} years before the end of the window "
        f"(at most {MAX_WALKED_YEARS} are walked); use a later DTSTART",
    )


def _prepared(rule: Any, after: dt.datetime | None, end: dt.datetime | None) -> Any:
    """``rule`` (rrule or rruleset) skipped ahead to ``after``, each of its walks with its own
    budget of months (``_walk_budget``): a shared one would run out twice as fast."""
    from dateutil.rrule import rrule, rruleset

    if isinstance(rule, rruleset):
        rebuilt = rruleset(cache=False)
        for member in rule._rrule:
            rebuilt.rrule(_prepared(member, after, end))
        for member in rule._exrule:
            rebuilt.exrule(_prepared(member, after, end))
        for when in rule._rdate:
            rebuilt.rdate(when)
        for when in rule._exdate:
            rebuilt.exdate(when)
        return rebuilt
    if not isinstance(rule, rrule):
        return rule
    walked = _copy(rule, **(_skipped(rule, after) if after is not None else {}))
    walked.budget = _walk_budget(walked, end)
    return walked


def _starts(rule: Any) -> list[dt.datetime]:
    """Where ``rule`` begins: each member's DTSTART and each RDATE."""
    from dateutil.rrule import rruleset

    if isinstance(rule, rruleset):
        return [m._dtstart for m in (*rule._rrule, *rule._exrule)] + list(rule._rdate)
    return [rule._dtstart]


def _months(start: dt.datetime, end: dt.datetime) -> int:
    return (end.year - start.year) * 12 + end.month - start.month


def _walk(rule: Any, after: dt.datetime | None) -> Iterator[dt.datetime]:
    """The occurrences of a prepared ``rule`` after ``after``, at most the walk bound from its start.

    Ends quietly when the budget's months run out without a ``too_far`` reason.
    """
    try:
        for walked, occurrence in enumerate(rule):
            if walked >= MAX_WALKED_OCCURRENCES:
                raise ScheduleTooExpensive(
                    f"more than {MAX_WALKED_OCCURRENCES} occurrences to walk from DTSTART; "
                    "use UNTIL, a smaller COUNT or a later DTSTART"
                )
            if after is None or occurrence > after:
                yield occurrence
    except _HorizonReached:
        return


class RRuleSchedule(_Schedule):
    """Runs at the occurrences of an RFC 5545 recurrence rule (dateutil ``rrulestr``).

    A DTSTART with TZID (or UTC ``Z``) sets the rule's zone; a naive or missing DTSTART is read in
    ``timezone`` (missing: 2020-01-01 00:00, which also sets the default BYHOUR/BYMINUTE/BYSECOND).
    A rule must have an occurrence within ``PROBE_YEARS`` of its start.
    """

    type: Literal["rrule"] = "rrule"
    rrule: str = Field(examples=["FREQ=WEEKLY;BYDAY=MO,WE,FR;BYHOUR=9;BYMINUTE=0"])

    @field_validator("rrule")
    @classmethod
    def _check_text(cls, value: str) -> str:
        if len(value) > MAX_RRULE_LENGTH:
            raise ValueError(
                f"rrule is too long ({len(value)} characters, at most {MAX_RRULE_LENGTH})"
            )
        text = "\n".join(line.strip() for line in value.strip().splitlines() if line.strip())
        if not text:
            raise ValueError("rrule is empty")
        return text

    @model_validator(mode="after")
    def _check_rule(self) -> RRuleSchedule:
        rule = _parse_rrule(self.rrule, self.zone)
        shown = _shown(self.rrule)
        probe = _prepared(rule, None, None)
        try:
            first = next(_walk(probe, None), None)
        except (TypeError, ValueError) as exc:  # ScheduleTooExpensive included
            raise ValueError(f"invalid rrule {shown}: {exc}") from None
        if first is None:
            starts = ", ".join(sorted({s.isoformat() for s in _starts(rule)})) or "none"
            raise ValueError(
                f"rrule {shown} has no occurrences within {PROBE_YEARS} years of its start "
                f"({starts}): check that its parts can match together "
                "(BYMONTH=2;BYMONTHDAY=30 never does) and that UNTIL is after DTSTART"
            )
        return self

    def next_run_times(
        self, *, start: dt.datetime, end: dt.datetime, limit: int
    ) -> list[dt.datetime]:
        """Up to ``limit`` aware UTC run times in (start, end], ascending.

        Raises ``ScheduleTooExpensive`` when that needs more than ``MAX_WALKED_OCCURRENCES``
        occurrences or ``MAX_WALKED_YEARS`` of calendar walked from the rule's start.
        """
        start, end = _window(start, end, limit)
        if limit == 0 or end <= start:
            return []
        try:
            return self._run_times(start, end, limit)
        except ScheduleTooExpensive as exc:
            raise ScheduleTooExpensive(
                f"rrule {_shown(self.rrule)} is too expensive: {exc}"
            ) from None

    def _run_times(self, start: dt.datetime, end: dt.datetime, limit: int) -> list[dt.datetime]:
        tz = self.zone
        rule = _parse_rrule(self.rrule, tz)
        aware = any(s.tzinfo is not None for s in _starts(rule))
        if aware:
            after = start - _MARGIN
        else:
            after = start.astimezone(tz).replace(tzinfo=None) - _MARGIN
        rule = _prepared(rule, after, end)

        def walls() -> Iterator[tuple[dt.datetime, dt.tzinfo]]:
            for occurrence in _walk(rule, after):
                zone = occurrence.tzinfo or tz
                yield occurrence.replace(tzinfo=None), zone

        return _collect(walls(), _Policy.WALL, start, end, limit)

    def summary(self) -> str:
        """The rule itself, ``RRULE:``-prefixed, with its zone when not UTC."""
        text = " ".join(self.rrule.splitlines())
        if not re.match(r"(RRULE|DTSTART|RDATE|EXRULE|EXDATE)", text, re.IGNORECASE):
            text = f"RRULE:{text}"
        return text if self.timezone == "UTC" else f"{text} ({self.timezone})"


# ------------------------------------------------------------------------------------------- union


def _schedule_kind(value: Any) -> str | None:
    """The union member of a payload: its ``type``, else the one key that names a kind."""
    if isinstance(value, BaseModel):
        return getattr(value, "type", None)
    if not isinstance(value, dict):
        return None
    if "type" in value:
        return str(value["type"])
    kinds = [kind for kind in ("cron", "interval", "rrule") if kind in value]
    return kinds[0] if len(kinds) == 1 else None


Schedule = Annotated[
    Annotated[CronSchedule, Tag("cron")]
    | Annotated[IntervalSchedule, Tag("interval")]
    | Annotated[RRuleSchedule, Tag("rrule")],
    Discriminator(
        _schedule_kind,
        custom_error_type="invalid_schedule",
        custom_error_message="a schedule needs one of 'cron', 'interval' or 'rrule'",
    ),
]
"""Any schedule; a payload is told apart by ``type`` or by its ``cron``/``interval``/``rrule`` key."""


def next_run_times(
    schedule: CronSchedule | IntervalSchedule | RRuleSchedule,
    *,
    start: dt.datetime,
    end: dt.datetime,
    limit: int,
) -> list[dt.datetime]:
    """Up to ``limit`` run times of ``schedule`` strictly after ``start`` and at most ``end``.

    ``start`` and ``end`` must be aware; results are aware UTC, ascending, microseconds zero.
    """
    return schedule.next_run_times(start=start, end=end, limit=limit)


def schedule_summary(schedule: CronSchedule | IntervalSchedule | RRuleSchedule) -> str:
    """One line for UIs and the CLI: ``every day at 02:00 (Europe/Paris)``, ``every 5 minutes``…"""
    return schedule.summary()


def scheduled_run_idempotency_key(deployment_id: UUID, scheduled_time: dt.datetime) -> str:
    """The idempotency key of the run a schedule creates: one run per (deployment, time)."""
    when = _require_aware(scheduled_time, "scheduled_time").replace(microsecond=0)
    return f"scheduled {deployment_id} {when.isoformat()}"


# ------------------------------------------------------------------------------------ attachments


class DeploymentSchedule(BaseModel):
    """A schedule attached to a deployment; only active ones create runs."""

    model_config = ConfigDict(from_attributes=True, extra="ignore")

    id: UUID = Field(default_factory=uuid4)
    schedule: Schedule
    active: bool = True


class DeploymentScheduleCreate(BaseModel):
    """A schedule to attach to a deployment."""

    model_config = ConfigDict(extra="forbid")

    schedule: Schedule
    active: bool = True


class DeploymentScheduleUpdate(BaseModel):
    """Change a deployment's schedule; unset fields are left as they are."""

    model_config = ConfigDict(extra="forbid")

    schedule: Schedule | None = None
    active: bool | None = None
