"""Schedule maths stay bounded whatever the rule (issue 19): COUNT skips ahead exactly, impossible
rules are refused without walking to year 9999, too expensive ones raise ScheduleTooExpensive, and
timezones the OS cannot read are a ValueError naming the timezone."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from dateutil.rrule import rrulestr
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from tideflow import flow
from tideflow.schemas.schedules import (
    MAX_WALKED_PERIODS,
    PROBE_YEARS,
    CronSchedule,
    IntervalSchedule,
    RRuleSchedule,
    ScheduleTooExpensive,
    _parse_rrule,
    _prepared,
    _walk,
    next_run_times,
)

UTC = dt.UTC
UTC_ZONE = ZoneInfo("UTC")


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


def window(schedule, start: dt.datetime, *, days: float = 2, limit: int = 5) -> list[dt.datetime]:
    return next_run_times(schedule, start=start, end=start + dt.timedelta(days=days), limit=limit)


def walked(text: str, tz: str, start: dt.datetime, days: float, limit: int) -> list[dt.datetime]:
    """The same window by dateutil alone, walking every occurrence from DTSTART."""
    zone = ZoneInfo(tz)
    rule = rrulestr(text, dtstart=dt.datetime(2020, 1, 1), tzids=ZoneInfo, cache=False)
    end = start + dt.timedelta(days=days)
    out = []
    for occurrence in rule:
        at = (occurrence if occurrence.tzinfo else occurrence.replace(tzinfo=zone)).astimezone(UTC)
        if at > end:
            break
        if at > start:
            out.append(at)
    return sorted(set(out))[:limit]


# ------------------------------------------------------------------------------ COUNT skips ahead


def test_secondly_rule_with_a_billion_count_gives_the_next_seconds() -> None:
    s = RRuleSchedule(rrule="FREQ=SECONDLY;INTERVAL=1;COUNT=1000000000")
    assert window(s, utc(2026, 12, 3, 8), limit=3) == [
        utc(2026, 12, 3, 8, 0, 1),
        utc(2026, 12, 3, 8, 0, 2),
        utc(2026, 12, 3, 8, 0, 3),
    ]


def test_count_skipping_ahead_still_ends_at_the_count() -> None:
    # 2020-01-01 + 10**8 s = 2023-03-03 09:46:40: the last occurrence is one second before
    s = RRuleSchedule(rrule="FREQ=SECONDLY;COUNT=100000000")
    last = utc(2020, 1, 1) + dt.timedelta(seconds=10**8 - 1)
    assert window(s, last - dt.timedelta(seconds=3)) == [
        last - dt.timedelta(seconds=2),
        last - dt.timedelta(seconds=1),
        last,
    ]
    assert window(s, utc(2026, 1, 1)) == []


@settings(max_examples=40, deadline=None)
@given(
    freq=st.sampled_from(["MINUTELY", "HOURLY", "DAILY", "WEEKLY"]),
    interval=st.integers(1, 5),
    count=st.integers(1, 3000),
    offset_hours=st.integers(0, 24 * 400),
    tz=st.sampled_from(["UTC", "Europe/Paris", "America/New_York"]),
)
def test_count_skip_matches_dateutil_walking_every_occurrence(
    freq: str, interval: int, count: int, offset_hours: int, tz: str
) -> None:
    text = f"FREQ={freq};INTERVAL={interval};COUNT={count}"
    start = utc(2020, 1, 1) + dt.timedelta(hours=offset_hours)
    s = RRuleSchedule(rrule=text, timezone=tz)
    assert window(s, start, days=3, limit=10) == walked(text, tz, start, 3, 10)


def test_count_skip_in_a_zone_with_dst_matches_dateutil() -> None:
    text = "DTSTART;TZID=Europe/Paris:20240101T023000\nRRULE:FREQ=HOURLY;COUNT=5000"
    s = RRuleSchedule(rrule=text)
    start = utc(2024, 3, 30, 22)
    rule = rrulestr(text, tzids=ZoneInfo, cache=False)
    expected = sorted(
        {o.astimezone(UTC) for o in rule if start < o.astimezone(UTC) <= start + dt.timedelta(1)}
    )
    assert window(s, start, days=1, limit=100) == expected


@settings(max_examples=60, deadline=None)
@given(
    freq=st.sampled_from(["YEARLY", "MONTHLY", "WEEKLY", "DAILY"]),
    interval=st.integers(1, 15),
    by=st.sampled_from(["", ";BYMONTHDAY=1", ";BYMONTHDAY=-1", ";BYDAY=MO,FR", ";BYMONTH=2,11"]),
    count=st.sampled_from(["", ";COUNT=40"]),
    offset_days=st.integers(0, 365 * 15),
    days=st.integers(1, 800),
)
def test_bounded_walks_match_dateutil_walking_every_period(
    freq: str, interval: int, by: str, count: str, offset_days: int, days: int
) -> None:
    # long steps (every 12 months, every 3 years) must not stop the walk before the window's end
    text = f"FREQ={freq};INTERVAL={interval}{by}{count}"
    try:
        s = RRuleSchedule(rrule=text)
    except ValidationError:
        assume(False)
    start = utc(2020, 1, 1) + dt.timedelta(days=offset_days)
    assert window(s, start, days=days, limit=4) == walked(text, "UTC", start, days, 4)


@pytest.mark.parametrize("days", [1, 40, 400])
def test_rule_sets_walk_each_member_on_its_own_budget(days: int) -> None:
    text = (
        "RRULE:FREQ=MONTHLY;INTERVAL=5;BYMONTHDAY=3\nRRULE:FREQ=YEARLY;INTERVAL=2;BYMONTH=7\n"
        "EXRULE:FREQ=MONTHLY;INTERVAL=10;BYMONTHDAY=3"
    )
    start = utc(2031, 5, 20)
    got = window(RRuleSchedule(rrule=text), start, days=days, limit=50)
    assert got == walked(text, "UTC", start, days, 50)
    assert got or days < 400


# ------------------------------------------------------------------------------- impossible rules


@pytest.mark.parametrize(
    "text",
    [
        "FREQ=SECONDLY;BYMONTH=2;BYMONTHDAY=30",
        "FREQ=HOURLY;BYMONTH=2;BYMONTHDAY=30",
        "FREQ=DAILY;BYMONTH=4;BYMONTHDAY=31",
        "FREQ=WEEKLY;BYMONTH=2;BYMONTHDAY=30",
        "FREQ=MONTHLY;BYMONTH=11;BYMONTHDAY=-31",
        "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30",
        "DTSTART:20210101T000000\nRRULE:FREQ=YEARLY;INTERVAL=4;BYMONTH=2;BYMONTHDAY=29",
    ],
)
def test_rule_with_no_occurrence_is_refused_naming_the_problem(text: str) -> None:
    with pytest.raises(ValidationError) as info:
        RRuleSchedule(rrule=text)
    message = str(info.value)
    assert f"has no occurrences within {PROBE_YEARS} years of its start" in message
    assert "BYMONTH=2;BYMONTHDAY=30 never does" in message


def test_the_probe_stops_on_its_month_budget_not_at_year_9999() -> None:
    # dateutil alone walks every day to 9999; the walked rule counts months and gives up
    rule = _prepared(_parse_rrule("FREQ=DAILY;BYMONTH=2;BYMONTHDAY=30", UTC_ZONE), None, None)
    assert rule.budget.months == PROBE_YEARS * 12
    assert list(_walk(rule, None)) == []
    assert -2 <= rule.budget.months < 0  # stopped right after its months, not at year 9999


def test_a_rare_but_possible_rule_is_accepted_and_found() -> None:
    s = RRuleSchedule(rrule="FREQ=DAILY;BYMONTH=2;BYMONTHDAY=29;BYDAY=MO")
    assert window(s, utc(2026, 1, 1), days=365 * 20) == [utc(2044, 2, 29)]
    assert window(s, utc(2026, 1, 1), days=100) == []


def test_cron_that_never_matches_is_refused() -> None:
    with pytest.raises(ValidationError, match="never matches a date"):
        CronSchedule(cron="0 0 30 2 *")


# ------------------------------------------------------------------------------ too expensive


def test_count_with_by_parts_far_from_dtstart_is_too_expensive() -> None:
    s = RRuleSchedule(rrule="FREQ=SECONDLY;COUNT=1000000000;BYMINUTE=0")
    with pytest.raises(ScheduleTooExpensive) as info:
        window(s, utc(2026, 12, 3))
    message = str(info.value)
    assert "rrule 'FREQ=SECONDLY;COUNT=1000000000;BYMINUTE=0' is too expensive" in message
    assert f"at most {MAX_WALKED_PERIODS}" in message and "UNTIL" in message


def test_count_with_by_parts_near_dtstart_is_computed() -> None:
    s = RRuleSchedule(rrule="DTSTART:20261201T000000\nRRULE:FREQ=MINUTELY;COUNT=100000;BYSECOND=0")
    assert window(s, utc(2026, 12, 3), limit=2) == [utc(2026, 12, 3, 0, 1), utc(2026, 12, 3, 0, 2)]


def test_a_rule_starting_centuries_ago_without_skip_is_too_expensive() -> None:
    s = RRuleSchedule(rrule="DTSTART:17000101T000000\nRRULE:FREQ=MONTHLY;BYMONTHDAY=1")
    with pytest.raises(ScheduleTooExpensive, match="use a later DTSTART"):
        window(s, utc(2026, 12, 3))


def test_rrule_text_length_is_limited() -> None:
    with pytest.raises(ValidationError, match="rrule is too long"):
        RRuleSchedule(rrule="FREQ=DAILY;" + "BYHOUR=1;" * 1000)


# ------------------------------------------------------------------------------------- timezones


@pytest.mark.parametrize("cls", [CronSchedule, IntervalSchedule, RRuleSchedule])
def test_a_5000_character_timezone_is_a_value_error_naming_it(cls: type) -> None:
    field = {CronSchedule: "cron", IntervalSchedule: "interval", RRuleSchedule: "rrule"}[cls]
    value = {"cron": "0 9 * * *", "interval": 60, "rrule": "FREQ=DAILY"}[field]
    with pytest.raises(ValidationError) as info:
        cls(**{field: value, "timezone": "x" * 5000})
    message = str(info.value)
    assert "timezone is too long (5000 characters, at most 64)" in message
    assert "x" * 100 not in message


@pytest.mark.parametrize("zone", ["Not/AZone", "x" * 64, "../../etc/passwd"])
def test_unknown_timezones_are_value_errors(zone: str) -> None:
    with pytest.raises(ValidationError, match="unknown timezone"):
        CronSchedule(cron="0 9 * * *", timezone=zone)


def test_to_deployment_refuses_a_5000_character_timezone_in_one_line() -> None:
    @flow
    def zoned() -> None:
        pass

    with pytest.raises(ValueError, match="timezone is too long") as info:
        zoned.to_deployment(name="z", schedules=[{"cron": "0 9 * * *", "timezone": "x" * 5000}])
    assert "x" * 100 not in str(info.value)


# --------------------------------------------------------------------------------- year 9999


def test_interval_whose_next_run_is_after_year_9999_has_none() -> None:
    s = IntervalSchedule(interval=dt.timedelta(days=999_999_999))
    assert window(s, utc(2026, 1, 1)) == []


def test_window_ending_after_year_9999_is_clamped() -> None:
    s = RRuleSchedule(rrule="FREQ=DAILY", timezone="Europe/Paris")
    got = next_run_times(
        s, start=utc(9999, 12, 20), end=dt.datetime.max.replace(tzinfo=UTC), limit=3
    )
    assert len(got) == 3
