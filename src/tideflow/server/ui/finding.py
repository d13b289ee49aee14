"""Finding things in the event feed and the runs list: the time range a page shows (presets or a
custom from/until), a histogram of the filtered rows over it (counted in SQL in at most
``MAX_BUCKETS`` buckets, drawn as SVG bars that narrow the range when clicked), and what an event
triggered (automation firings and the runs created from it)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from tideflow.schemas.events import EventFilter
from tideflow.server.storage.dialect import dialect_name
from tideflow.server.storage.tables import automation_firings, automations

__all__ = [
    "MAX_BUCKETS",
    "RANGES",
    "Histogram",
    "TimeRange",
    "bucket_counts",
    "firings_for_event",
    "histogram",
    "parse_range",
    "suggestion_filters",
]

MAX_BUCKETS = 60
RANGES: dict[str, tuple[str, dt.timedelta]] = {
    "1h": ("Last hour", dt.timedelta(hours=1)),
    "24h": ("Last 24 hours", dt.timedelta(hours=24)),
    "7d": ("Last 7 days", dt.timedelta(days=7)),
    "30d": ("Last 30 days", dt.timedelta(days=30)),
}
# Bucket widths, smallest first: the first giving at most MAX_BUCKETS buckets over the range.
_WIDTHS = [60, 300, 900, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 7 * 86400, 30 * 86400]
_MAX_SPAN = dt.timedelta(days=366 * 5)


@dataclass(frozen=True)
class TimeRange:
    """What the page filters on: ``since``..``until`` (None: open), and how it was chosen."""

    preset: str  # a RANGES key, "custom" or ""
    since: dt.datetime | None
    until: dt.datetime | None
    since_text: str  # the custom inputs' values (datetime-local, UTC)
    until_text: str

    @property
    def params(self) -> dict[str, str]:
        if self.preset == "custom":
            return {"range": "custom", "since": self.since_text, "until": self.until_text}
        return {"range": self.preset}


def _parse_time(text: str) -> dt.datetime | None:
    try:
        value = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def parse_range(q: Mapping[str, str], now: dt.datetime) -> TimeRange:
    """The range from the query string; values that do not parse are ignored (an open range)."""
    preset = q.get("range", "")
    if preset in RANGES:
        return TimeRange(preset, now - RANGES[preset][1], None, "", "")
    since_text, until_text = q.get("since", "").strip(), q.get("until", "").strip()
    since, until = _parse_time(since_text), _parse_time(until_text)
    if since and until and since > until:
        since, until = until, since
    if since or until:
        return TimeRange("custom", since, until, since_text, until_text)
    return TimeRange("", None, None, "", "")


@dataclass(frozen=True)
class Bar:
    x: float
    height: float
    count: int
    start: dt.datetime
    end: dt.datetime


@dataclass(frozen=True)
class Histogram:
    bars: list[Bar]
    width: float
    height: float
    bar_width: float
    total: int
    peak: int
    start: dt.datetime
    end: dt.datetime
    bucket_seconds: int


def _width(span: float) -> int:
    return next((w for w in _WIDTHS if span / w <= MAX_BUCKETS), _WIDTHS[-1])


def histogram(
    counts: Mapping[int, int], start: dt.datetime, seconds: int, buckets: int,
    *, width: float = 960.0, height: float = 72.0,
) -> Histogram:  # fmt: skip
    """Bars for ``counts`` (bucket index -> rows) of ``buckets`` buckets of ``seconds`` each."""
    slot = width / max(buckets, 1)
    peak = max(counts.values(), default=0)
    bars = []
    for i in range(buckets):
        n = counts.get(i, 0)
        h = 0.0 if not n else max(2.0, n / peak * (height - 4))
        begin = start + dt.timedelta(seconds=i * seconds)
        bars.append(
            Bar(round(i * slot, 2), round(h, 2), n, begin, begin + dt.timedelta(seconds=seconds))
        )
    end = start + dt.timedelta(seconds=buckets * seconds)
    return Histogram(bars, width, height, round(max(slot - 2, 1.0), 2), sum(counts.values()),
                     peak, start, end, seconds)  # fmt: skip


async def bucket_counts(
    session: AsyncSession,
    column: Any,
    where: Sequence[sa.ColumnElement[bool]],
    since: dt.datetime,
    until: dt.datetime,
    from_: Any,
) -> Histogram:
    """Rows of ``from_`` matching ``where`` per bucket of ``column`` between ``since`` and
    ``until``: one grouped query, at most MAX_BUCKETS groups whatever the row count."""
    since = max(since, until - _MAX_SPAN)
    span = max((until - since).total_seconds(), 60.0)
    seconds = _width(span)
    # Align buckets to whole widths (UTC) so the bars are stable while the page refreshes.
    epoch = int(since.timestamp()) // seconds * seconds
    start = dt.datetime.fromtimestamp(epoch, dt.UTC)
    buckets = min(MAX_BUCKETS + 1, int((until - start).total_seconds() // seconds) + 1)
    if dialect_name(session) == "postgresql":
        offset = sa.extract("epoch", column) - epoch
    else:
        # Whole seconds since the epoch (julianday's float loses a few microseconds: 299.99998).
        offset = sa.cast(sa.func.strftime("%s", column), sa.Integer) - epoch
    index = sa.cast(sa.func.floor(offset / seconds), sa.Integer).label("bucket")
    stmt = (
        sa.select(index, sa.func.count())
        .select_from(from_)
        .where(*where, column >= start, column <= until)
        .group_by(index)
    )
    counts = {
        int(i): int(n) for i, n in await session.execute(stmt) if i is not None and 0 <= i < buckets
    }
    return histogram(counts, start, seconds, buckets)


@dataclass(frozen=True)
class Fired:
    automation_id: UUID
    automation_name: str
    kind: str
    fired_at: dt.datetime


async def firings_for_event(
    session: AsyncSession, event_id: UUID, occurred: dt.datetime, received: dt.datetime
) -> list[Fired]:
    """Firings whose triggering event is ``event_id``. Firings are indexed by (automation,
    fired_at), so the lookup reads each automation's firings in the hour after the event arrived."""
    begin = min(occurred, received) - dt.timedelta(minutes=1)
    end = max(occurred, received) + dt.timedelta(hours=1)
    f, a = automation_firings.c, automations.c
    ids = [row[0] for row in await session.execute(sa.select(a.id).limit(2000))]
    if not ids:
        return []
    stmt = (
        sa.select(f.automation_id, a.name, f.kind, f.fired_at)
        .select_from(automation_firings.join(automations, automations.c.id == f.automation_id))
        .where(f.automation_id.in_(ids), f.fired_at >= begin, f.fired_at <= end)
        .where(f.triggering_event_id == event_id)
        .order_by(f.fired_at)
        .limit(50)
    )
    return [Fired(r[0], r[1], r[2], r[3]) for r in await session.execute(stmt)]


def _leaves(trigger: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    children = trigger.get("triggers")
    if isinstance(children, list):
        return [leaf for c in children if isinstance(c, Mapping) for leaf in _leaves(c)]
    return [trigger]


def suggestion_filters(trigger: Mapping[str, Any], limit: int = 8) -> list[EventFilter]:
    """Filters for stored events worth explaining the trigger against, most specific first: per
    event trigger, its ``expect`` names (``*`` patterns kept) with its ``match`` and first
    ``match_related`` labels, then the names alone (the labels may be templates or too strict)."""
    specific, loose = [], []
    for leaf in _leaves(trigger):
        names = [str(n) for n in leaf.get("expect") or []]
        if not names:
            continue
        by_name: dict[str, Any] = {}
        exact = [n for n in names if "*" not in n]
        patterns = [n for n in names if "*" in n]
        if exact:
            by_name["event_names"] = exact
        if patterns:
            by_name["event_patterns"] = patterns
        match = leaf.get("match") or {}
        related = leaf.get("match_related") or []
        related = related if isinstance(related, list) else [related]
        labelled = dict(by_name)
        if match:
            labelled["resource_labels"] = match
        if related and isinstance(related[0], Mapping) and related[0]:
            labelled["related_labels"] = related[0]
        try:
            if labelled != by_name:
                specific.append(EventFilter(**labelled, limit=limit))
            loose.append(EventFilter(**by_name, limit=limit))
        except ValueError:
            continue
    return specific + loose
