"""Human durations for options such as ``--start-in``: ``30s``, ``1h30m``, ``2 hours``,
``1 hour 30 minutes``, ``in 10 minutes``, ``1.5 days``, ``2 weeks``, ``90`` (seconds), ``01:30:00``.

Pure and bounded: the text is at most ``MAX_LENGTH`` characters and the result at most
``MAX_SECONDS`` (a run scheduled centuries ahead is a typo).
"""

from __future__ import annotations

import datetime as dt
import re

__all__ = ["MAX_LENGTH", "MAX_SECONDS", "parse_human_duration"]

MAX_LENGTH = 100
MAX_SECONDS = 10 * 366 * 86400  # ten years

_UNITS: dict[str, float] = {}
for _seconds, _names in (
    (1, ("s", "sec", "secs", "second", "seconds")),
    (60, ("m", "min", "mins", "minute", "minutes")),
    (3600, ("h", "hr", "hrs", "hour", "hours")),
    (86400, ("d", "day", "days")),
    (7 * 86400, ("w", "wk", "wks", "week", "weeks")),
):
    _UNITS.update(dict.fromkeys(_names, float(_seconds)))

_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([a-z]+)")
_CLOCK = re.compile(r"^(?:(\d+):)?(\d{1,2}):(\d{2})$")  # [h:]mm:ss


def parse_human_duration(text: str) -> dt.timedelta:
    """The duration ``text`` says; ValueError with one readable line when it says none."""
    if len(text) > MAX_LENGTH:
        raise ValueError(f"a duration is at most {MAX_LENGTH} characters")
    value = " ".join(text.strip().lower().split())
    value = value.removeprefix("in ").replace(",", " ").replace(" and ", " ")
    hint = f"{text.strip()!r} is not a duration; use e.g. 30s, 10m, 1h30m, '2 hours' or 01:30:00"
    seconds: float
    clock = _CLOCK.match(value)
    if clock:
        hours, minutes, secs = clock.groups()
        seconds = int(hours or 0) * 3600 + int(minutes) * 60 + int(secs)
    else:
        try:
            seconds = float(value)
        except ValueError:
            parts = _PART.findall(value)
            rebuilt = " ".join(f"{n}{u}" for n, u in parts)
            if not parts or rebuilt.replace(" ", "") != value.replace(" ", ""):
                raise ValueError(hint) from None
            unknown = [u for _, u in parts if u not in _UNITS]
            if unknown:
                raise ValueError(f"{hint} (unknown unit {unknown[0]!r})") from None
            seconds = sum(float(n) * _UNITS[u] for n, u in parts)
    if not 0 <= seconds <= MAX_SECONDS or seconds != seconds:  # NaN, inf, negative
        raise ValueError(f"{text.strip()!r} is outside 0 seconds .. 10 years")
    return dt.timedelta(seconds=seconds)
