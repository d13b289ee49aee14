"""Schedule maths: cron/interval/rrule run times across DST, bounds, determinism, errors, summaries."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter
from dateutil.rrule import rrulestr
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from tideflow.schemas.schedules import (
    CronSchedule,
    DeploymentSchedule,
    DeploymentScheduleCreate,
    DeploymentScheduleUpdate,
    IntervalSchedule,
    RRuleSchedule,
    Schedule,
    next_run_times,
    schedule_summary,
    scheduled_run_idempotency_key,
)

UTC = dt.UTC
PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")
SCHEDULE = TypeAdapter(Schedule)


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


def times(schedule, start: dt.datetime, *, days: float = 10, limit: int = 100) -> list[dt.datetime]:
    return next_run_times(schedule, start=start, end=start + dt.timedelta(days=days), limit=limit)


def local(values: list[dt.datetime], tz: ZoneInfo) -> list[str]:
    return [v.astimezone(tz).strftime("%m-%d %H:%M%z") for v in values]


# ------------------------------------------------------------------------------------- cron + DST


def test_daily_cron_in_paris_keeps_local_time_across_spring_forward() -> None:
    s = CronSchedule(cron="0 9 * * *", timezone="Europe/Paris")
    got = times(s, utc(2024, 3, 29), days=4)
    assert local(got, PARIS) == [
        "03-29 09:00+0100",
        "03-30 09:00+0100",
        "03-31 09:00+0200",
        "04-01 09:00+0200",
    ]
    assert got[2] - got[1] == dt.timedelta(hours=23)


def test_cron_time_in_the_spring_gap_runs_once_shifted_by_the_gap() -> None:
    # 02:30 does not exist in Paris on 2024-03-31: it runs at 03:30 CEST, once
    s = CronSchedule(cron="30 2 * * *", timezone="Europe/Paris")
    got = times(s, utc(2024, 3, 29), days=4)
    assert local(got, PARIS) == [
        "03-29 02:30+0100",
        "03-30 02:30+0100",
        "03-31 03:30+0200",
        "04-01 02:30+0200",
    ]


def test_cron_gap_time_shift_does_not_duplicate_a_real_run() -> None:
    s = CronSchedule(cron="30 2,3 * * *", timezone="Europe/Paris")
    got = times(s, utc(2024, 3, 30, 12), days=1)
    assert local(got, PARIS) == ["03-31 03:30+0200"]


def test_cron_time_repeated_at_fall_back_runs_once_at_first_occurrence() -> None:
    # 01:30 happens twice in New York on 2024-11-03: the run is at 01:30 EDT only
    s = CronSchedule(cron="30 1 * * *", timezone="America/New_York")
    got = times(s, utc(2024, 11, 2), days=3)
    assert local(got, NEW_YORK) == ["11-02 01:30-0400", "11-03 01:30-0400", "11-04 01:30-0500"]
    assert got[2] - got[1] == dt.timedelta(hours=25)


def test_paris_fall_back_runs_once() -> None:
    s = CronSchedule(cron="30 2 * * *", timezone="Europe/Paris")
    got = times(s, utc(2024, 10, 26), days=2)
    assert local(got, PARIS) == ["10-26 02:30+0200", "10-27 02:30+0200"]


def test_new_york_spring_forward_daily_cron() -> None:
    s = CronSchedule(cron="0 2 * * *", timezone="America/New_York")
    got = times(s, utc(2024, 3, 9), days=3)
    assert local(got, NEW_YORK) == ["03-09 02:00-0500", "03-10 03:00-0400", "03-11 02:00-0400"]


def test_hourly_wildcard_cron_follows_elapsed_time_at_fall_back() -> None:
    # every 30 real minutes: both 01:00 and both 01:30 happen
    s = CronSchedule(cron="*/30 * * * *", timezone="America/New_York")
    got = next_run_times(s, start=utc(2024, 11, 3, 4, 0), end=utc(2024, 11, 3, 7, 0), limit=100)
    assert [g.strftime("%H:%M") for g in got] == [
        "04:30",
        "05:00",
        "05:30",
        "06:00",
        "06:30",
        "07:00",
    ]
    assert local(got, NEW_YORK)[1:5] == [
        "11-03 01:00-0400",
        "11-03 01:30-0400",
        "11-03 01:00-0500",
        "11-03 01:30-0500",
    ]


def test_hourly_wildcard_cron_skips_the_missing_hour_at_spring_forward() -> None:
    s = CronSchedule(cron="0 * * * *", timezone="Europe/Paris")
    got = next_run_times(s, start=utc(2024, 3, 30, 23, 30), end=utc(2024, 3, 31, 3, 30), limit=100)
    assert local(got, PARIS) == [
        "03-31 01:00+0100",
        "03-31 03:00+0200",
        "03-31 04:00+0200",
        "03-31 05:00+0200",
    ]
    assert [g.hour for g in got] == [0, 1, 2, 3]


def test_cron_limit_and_end_bound_and_strictly_after_start() -> None:
    s = CronSchedule(cron="*/5 * * * *")
    start = utc(2024, 1, 1, 0, 5)
    assert next_run_times(s, start=start, end=utc(2024, 1, 1, 1), limit=3) == [
        utc(2024, 1, 1, 0, 10),
        utc(2024, 1, 1, 0, 15),
        utc(2024, 1, 1, 0, 20),
    ]
    # end is inclusive, start exclusive
    assert next_run_times(s, start=start, end=utc(2024, 1, 1, 0, 15), limit=10) == [
        utc(2024, 1, 1, 0, 10),
        utc(2024, 1, 1, 0, 15),
    ]
    assert next_run_times(s, start=start, end=start, limit=10) == []
    assert next_run_times(s, start=start, end=utc(2024, 1, 1, 2), limit=0) == []


def test_cron_results_are_utc_with_zero_microseconds_and_deterministic() -> None:
    s = CronSchedule(cron="17 3 * * 1-5", timezone="Europe/Paris")
    start = dt.datetime(2024, 5, 1, 12, 34, 56, 789123, tzinfo=NEW_YORK)
    first = times(s, start, days=30)
    assert first == times(s, start, days=30)
    assert all(t.tzinfo is UTC and t.microsecond == 0 and t.second == 0 for t in first)
    assert all(t.astimezone(PARIS).weekday() < 5 for t in first)


def test_day_or_false_requires_both_day_fields() -> None:
    either = CronSchedule(cron="0 0 13 * 5")  # the 13th OR a Friday
    both = CronSchedule(cron="0 0 13 * 5", day_or=False)  # Friday the 13th
    start = utc(2024, 1, 1)
    assert len(times(either, start, days=31)) > 4
    assert times(both, start, days=365, limit=3) == [utc(2024, 9, 13), utc(2024, 12, 13)]


def test_cron_aliases_and_whitespace_are_normalised() -> None:
    assert CronSchedule(cron="  0   2 * *  * ").cron == "0 2 * * *"
    assert times(CronSchedule(cron="@Daily"), utc(2024, 1, 1, 5), days=2) == [
        utc(2024, 1, 2),
        utc(2024, 1, 3),
    ]


@pytest.mark.parametrize(
    ("expr", "words"),
    [
        ("0 2 * *", "expected 5 fields"),
        ("0 2 * * * 5", "expected 5 fields"),
        ("61 * * * *", "invalid cron expression '61 * * * *'"),
        ("x y z a b", "invalid cron expression 'x y z a b'"),
        ("", "cron expression is empty"),
        ("@fortnightly", "unknown alias"),
        ("0 0 30 2 *", "never matches"),
    ],
)
def test_invalid_cron_is_refused_naming_it(expr: str, words: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(words)):
        CronSchedule(cron=expr)


@pytest.mark.parametrize("cls", [CronSchedule, IntervalSchedule, RRuleSchedule])
def test_unknown_timezone_is_refused(cls) -> None:
    payload = {"cron": "* * * * *", "interval": 60, "rrule": "FREQ=DAILY"}
    field = {CronSchedule: "cron", IntervalSchedule: "interval", RRuleSchedule: "rrule"}[cls]
    with pytest.raises(ValidationError, match="unknown timezone 'Mars/Olympus'"):
        cls(**{field: payload[field]}, timezone="Mars/Olympus")


def test_naive_start_is_refused() -> None:
    with pytest.raises(ValueError, match="start must be timezone-aware"):
        next_run_times(
            CronSchedule(cron="* * * * *"),
            start=dt.datetime(2024, 1, 1),
            end=utc(2024, 2, 1),
            limit=1,
        )
    with pytest.raises(ValueError, match="limit must be >= 0"):
        next_run_times(
            CronSchedule(cron="* * * * *"), start=utc(2024, 1, 1), end=utc(2024, 2, 1), limit=-1
        )


ZONES = st.sampled_from(
    ["UTC", "Europe/Paris", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata"]
)
CRONS = st.sampled_from(
    [
        "0 2 * * *",
        "30 2 * * *",
        "*/15 * * * *",
        "0 * * * *",
        "5 1,2,3 * * *",
        "0 9 * * 1-5",
        "0 0 1 * *",
    ]
)
STARTS = st.datetimes(min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2040, 1, 1)).map(
    lambda d: d.replace(tzinfo=UTC)
)


@settings(max_examples=150, deadline=None)
@given(expr=CRONS, zone=ZONES, start=STARTS)
def test_cron_properties(expr: str, zone: str, start: dt.datetime) -> None:
    s = CronSchedule(cron=expr, timezone=zone)
    got = times(s, start, days=3, limit=12)
    assert got == sorted(set(got))
    assert all(start < t <= start + dt.timedelta(days=3) and t.microsecond == 0 for t in got)
    tz = ZoneInfo(zone)
    for t in got:  # each run is a matching wall time, or a gap time moved forward by the gap
        wall = t.astimezone(tz).replace(tzinfo=None)
        gap = t.astimezone(tz).utcoffset() - (t - dt.timedelta(hours=3)).astimezone(tz).utcoffset()
        shifted = wall - gap  # zero unless the offset just changed
        assert croniter.match(expr, wall) or croniter.match(expr, shifted)
    # walking run by run gives the same sequence (what the scheduler does)
    if len(got) >= 2:
        assert times(s, got[0], days=3, limit=len(got) - 1)[: len(got) - 1] == got[1:]


# ---------------------------------------------------------------------------------------- interval


def test_interval_with_anchor_counts_from_the_anchor() -> None:
    s = IntervalSchedule(interval=dt.timedelta(minutes=10), anchor_date=utc(2024, 1, 1, 0, 3))
    got = next_run_times(s, start=utc(2024, 6, 1, 12, 0, 0), end=utc(2024, 6, 2), limit=3)
    assert got == [utc(2024, 6, 1, 12, 3), utc(2024, 6, 1, 12, 13), utc(2024, 6, 1, 12, 23)]
    # runs at anchor + k*interval also before the anchor (the anchor only sets the phase)
    assert next_run_times(s, start=utc(2023, 1, 1), end=utc(2024, 1, 1), limit=1) == [
        utc(2023, 1, 1, 0, 3)
    ]


def test_interval_accepts_seconds_and_iso_durations() -> None:
    assert IntervalSchedule(interval=300).interval == dt.timedelta(minutes=5)
    assert IntervalSchedule(interval="PT1H").interval == dt.timedelta(hours=1)
    s = IntervalSchedule(interval=300)
    assert times(s, utc(2024, 1, 1, 0, 2, 30, 123), limit=2) == [
        utc(2024, 1, 1, 0, 5),
        utc(2024, 1, 1, 0, 10),
    ]


def test_sub_day_interval_is_elapsed_time_across_dst() -> None:
    s = IntervalSchedule(interval=dt.timedelta(hours=1), timezone="Europe/Paris")
    got = next_run_times(s, start=utc(2024, 3, 31, 0, 0), end=utc(2024, 3, 31, 3, 0), limit=10)
    assert got == [utc(2024, 3, 31, 1), utc(2024, 3, 31, 2), utc(2024, 3, 31, 3)]


def test_daily_interval_keeps_wall_clock_across_dst_both_ways() -> None:
    anchor = dt.datetime(2024, 1, 1, 2, 30, tzinfo=PARIS)
    s = IntervalSchedule(interval=dt.timedelta(days=1), anchor_date=anchor)
    assert s.timezone == "Europe/Paris"  # taken from the anchor's zone
    spring = times(s, utc(2024, 3, 29), days=4)
    assert local(spring, PARIS) == [
        "03-29 02:30+0100",
        "03-30 02:30+0100",
        "03-31 03:30+0200",  # 02:30 does not exist that day
        "04-01 02:30+0200",
    ]
    ny = IntervalSchedule(
        interval=86400, anchor_date=dt.datetime(2024, 1, 1, 1, 30), timezone="America/New_York"
    )
    fall = times(ny, utc(2024, 11, 2), days=3)
    assert local(fall, NEW_YORK) == ["11-02 01:30-0400", "11-03 01:30-0400", "11-04 01:30-0500"]


def test_weekly_interval_with_naive_anchor_read_in_timezone() -> None:
    s = IntervalSchedule(
        interval=dt.timedelta(weeks=2),
        anchor_date=dt.datetime(2024, 1, 1, 9),
        timezone="Europe/Paris",
    )
    assert s.anchor_date == dt.datetime(2024, 1, 1, 9, tzinfo=PARIS)
    got = times(s, utc(2024, 3, 1), days=40)
    assert local(got, PARIS) == ["03-11 09:00+0100", "03-25 09:00+0100", "04-08 09:00+0200"]


def test_default_anchor_is_midnight_2020_in_the_zone() -> None:
    s = IntervalSchedule(interval=86400, timezone="America/New_York")
    assert local(times(s, utc(2024, 7, 1), days=2), NEW_YORK) == [
        "07-01 00:00-0400",
        "07-02 00:00-0400",
    ]


@pytest.mark.parametrize(
    ("interval", "words"),
    [
        (0, "interval must be positive"),
        (-5, "interval must be positive"),
        (1.5, "whole number of seconds"),
    ],
)
def test_invalid_interval_is_refused(interval: float, words: str) -> None:
    with pytest.raises(ValidationError, match=words):
        IntervalSchedule(interval=interval)


@settings(max_examples=150, deadline=None)
@given(
    seconds=st.sampled_from([1, 59, 300, 3600, 5400, 86400, 2 * 86400, 7 * 86400]),
    zone=ZONES,
    start=STARTS,
    anchor=STARTS,
)
def test_interval_properties(
    seconds: int, zone: str, start: dt.datetime, anchor: dt.datetime
) -> None:
    s = IntervalSchedule(interval=seconds, anchor_date=anchor, timezone=zone)
    got = next_run_times(s, start=start, end=start + dt.timedelta(days=30), limit=5)
    if seconds < 86400:
        assert len(got) == 5
    assert got == sorted(set(got)) and all(start < t and t.microsecond == 0 for t in got)
    if seconds < 86400:
        assert all((t - s.anchor) % dt.timedelta(seconds=seconds) == dt.timedelta(0) for t in got)
    if len(got) >= 2:
        assert (
            next_run_times(s, start=got[0], end=start + dt.timedelta(days=30), limit=len(got) - 1)
            == got[1:]
        )


# ------------------------------------------------------------------------------------------- rrule


def test_rrule_with_count_stops_after_count() -> None:
    s = RRuleSchedule(rrule="DTSTART:20240101T090000Z\nRRULE:FREQ=DAILY;COUNT=3")
    assert times(s, utc(2023, 12, 1), days=60) == [
        utc(2024, 1, 1, 9),
        utc(2024, 1, 2, 9),
        utc(2024, 1, 3, 9),
    ]
    assert times(s, utc(2024, 1, 1, 9), days=60) == [utc(2024, 1, 2, 9), utc(2024, 1, 3, 9)]


def test_rrule_with_until_and_naive_dtstart_in_the_zone() -> None:
    s = RRuleSchedule(
        rrule="DTSTART:20240329T023000\nRRULE:FREQ=DAILY;UNTIL=20240401T023000",
        timezone="Europe/Paris",
    )
    got = times(s, utc(2024, 3, 1), days=60)
    assert local(got, PARIS) == [
        "03-29 02:30+0100",
        "03-30 02:30+0100",
        "03-31 03:30+0200",
        "04-01 02:30+0200",
    ]


def test_rrule_utc_until_without_dtstart() -> None:
    s = RRuleSchedule(rrule="FREQ=DAILY;BYHOUR=6;UNTIL=20240103T000000Z", timezone="Europe/Paris")
    assert times(s, utc(2023, 12, 31), days=10) == [
        utc(2023, 12, 31, 5),
        utc(2024, 1, 1, 5),
        utc(2024, 1, 2, 5),
    ]


def test_rrule_tzid_dtstart_sets_the_zone_and_fall_back_runs_once() -> None:
    s = RRuleSchedule(rrule="DTSTART;TZID=America/New_York:20240101T013000\nRRULE:FREQ=DAILY")
    got = times(s, utc(2024, 11, 2), days=3)
    assert local(got, NEW_YORK) == ["11-02 01:30-0400", "11-03 01:30-0400", "11-04 01:30-0500"]


def test_rrule_exdate_and_weekly_byday() -> None:
    s = RRuleSchedule(
        rrule="DTSTART:20240101T090000\nRRULE:FREQ=WEEKLY;BYDAY=MO,WE\nEXDATE:20240103T090000"
    )
    assert times(s, utc(2023, 12, 31), days=9) == [utc(2024, 1, 1, 9), utc(2024, 1, 8, 9)]


def test_rrule_minutely_far_from_dtstart_is_fast_and_exact() -> None:
    # DTSTART defaults to 2020-01-01; the rule is still answered from years later without walking
    s = RRuleSchedule(rrule="FREQ=MINUTELY;INTERVAL=7")
    start = utc(2031, 5, 5, 5, 5)
    got = next_run_times(s, start=start, end=start + dt.timedelta(days=1), limit=3)
    base = utc(2020, 1, 1)
    assert all((t - base) % dt.timedelta(minutes=7) == dt.timedelta(0) for t in got)
    assert got[0] - start <= dt.timedelta(minutes=7) and got[1] - got[0] == dt.timedelta(minutes=7)


def test_rrule_set_minutely_far_from_dtstart_is_fast_and_keeps_exdates() -> None:
    s = RRuleSchedule(
        rrule="RRULE:FREQ=MINUTELY;INTERVAL=5\nEXDATE:20310505T051000\nRDATE:20310505T050700"
    )
    start = utc(2031, 5, 5, 5, 0)
    got = next_run_times(s, start=start, end=start + dt.timedelta(days=1), limit=4)
    assert got == [
        utc(2031, 5, 5, 5, 5),
        utc(2031, 5, 5, 5, 7),
        utc(2031, 5, 5, 5, 15),
        utc(2031, 5, 5, 5, 20),
    ]


@settings(max_examples=60, deadline=None)
@given(
    freq=st.sampled_from(["MINUTELY", "HOURLY", "DAILY", "WEEKLY"]),
    interval=st.integers(1, 5),
    extra=st.sampled_from(["", ";BYMINUTE=0,30", ";BYHOUR=9,17;BYMINUTE=15", ";BYDAY=MO,FR"]),
    start=st.datetimes(min_value=dt.datetime(2020, 1, 1), max_value=dt.datetime(2020, 1, 12)),
)
def test_rrule_matches_dateutil_walked_from_dtstart(
    freq: str, interval: int, extra: str, start: dt.datetime
) -> None:
    text = f"FREQ={freq};INTERVAL={interval}{extra}"
    try:
        s = RRuleSchedule(rrule=text)
    except ValidationError:  # e.g. HOURLY;INTERVAL=2;BYHOUR=9: no hour ever matches
        assume(False)
        raise
    aware = start.replace(tzinfo=UTC)
    end = aware + dt.timedelta(days=20)
    got = next_run_times(s, start=aware, end=end, limit=5)
    walked = rrulestr(text, dtstart=dt.datetime(2020, 1, 1))  # no shortcut: every period
    expected = [o.replace(tzinfo=UTC) for o in walked.xafter(start.replace(microsecond=0), count=5)]
    assert got == [t for t in expected if aware < t <= end]


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("garbage", "invalid rrule 'garbage'"),
        ("FREQ=DAILY;BYFOO=2", "unknown parameter 'BYFOO'"),
        ("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30", "has no occurrences"),
        ("DTSTART;TZID=Nowhere/City:20240101T000000\nRRULE:FREQ=DAILY", "invalid rrule"),
        ("   ", "rrule is empty"),
    ],
)
def test_invalid_rrule_is_refused(text: str, words: str) -> None:
    with pytest.raises(ValidationError, match=re.escape(words)):
        RRuleSchedule(rrule=text)


# ------------------------------------------------------------------------------ union, summaries


def test_schedule_union_is_told_apart_by_type_or_key() -> None:
    assert isinstance(SCHEDULE.validate_python({"cron": "0 2 * * *"}), CronSchedule)
    assert isinstance(SCHEDULE.validate_python({"interval": 60}), IntervalSchedule)
    assert isinstance(
        SCHEDULE.validate_python({"type": "rrule", "rrule": "FREQ=DAILY"}), RRuleSchedule
    )
    with pytest.raises(
        ValidationError, match="a schedule needs one of 'cron', 'interval' or 'rrule'"
    ):
        SCHEDULE.validate_python({"every": 5})
    with pytest.raises(ValidationError, match="timezon"):
        SCHEDULE.validate_python({"cron": "0 2 * * *", "timezon": "Europe/Paris"})


def test_schedules_round_trip_through_json() -> None:
    for s in (
        CronSchedule(cron="0 2 * * *", timezone="Europe/Paris", day_or=False),
        IntervalSchedule(interval=86400, anchor_date=dt.datetime(2024, 1, 1, 2, 30, tzinfo=PARIS)),
        RRuleSchedule(rrule="FREQ=WEEKLY;BYDAY=MO", timezone="America/New_York"),
    ):
        again = SCHEDULE.validate_json(s.model_dump_json())
        start = utc(2024, 3, 1)
        assert again.type == s.type
        assert times(again, start, days=300) == times(s, start, days=300)


def test_deployment_schedule_models() -> None:
    created = DeploymentScheduleCreate.model_validate({"schedule": {"cron": "0 2 * * *"}})
    assert created.active is True
    attached = DeploymentSchedule(schedule=created.schedule)
    assert isinstance(attached.id, uuid.UUID)
    assert DeploymentSchedule.model_validate(attached.model_dump(mode="json")) == attached
    update = DeploymentScheduleUpdate(active=False)
    assert update.model_dump(exclude_unset=True) == {"active": False}
    with pytest.raises(ValidationError, match="invalid cron expression"):
        DeploymentScheduleCreate.model_validate({"schedule": {"cron": "nope"}})


@pytest.mark.parametrize(
    ("schedule", "summary"),
    [
        (
            CronSchedule(cron="0 2 * * *", timezone="Europe/Paris"),
            "every day at 02:00 (Europe/Paris)",
        ),
        (CronSchedule(cron="*/5 * * * *"), "every 5 minutes"),
        (CronSchedule(cron="* * * * *"), "every minute"),
        (CronSchedule(cron="15 * * * *"), "every hour at minute 15"),
        (CronSchedule(cron="0 9 * * 1-5"), "every weekday at 09:00 (UTC)"),
        (CronSchedule(cron="30 8 * * 1"), "every Monday at 08:30 (UTC)"),
        (CronSchedule(cron="0 0 1 * *"), "every month on day 1 at 00:00 (UTC)"),
        (CronSchedule(cron="0 12 25 12 *"), "every year on December 25 at 12:00 (UTC)"),
        (CronSchedule(cron="0 0 L * *"), "cron '0 0 L * *' (UTC)"),
        (IntervalSchedule(interval=300), "every 5 minutes"),
        (IntervalSchedule(interval=5400), "every 90 minutes"),
        (IntervalSchedule(interval=3600), "every hour"),
        (IntervalSchedule(interval=45), "every 45 seconds"),
        (
            IntervalSchedule(interval=86400, anchor_date=dt.datetime(2024, 1, 1, 2, tzinfo=PARIS)),
            "every day at 02:00 (Europe/Paris)",
        ),
        (IntervalSchedule(interval=2 * 86400), "every 2 days at 00:00 (UTC)"),
        (RRuleSchedule(rrule="FREQ=DAILY;BYHOUR=9"), "RRULE:FREQ=DAILY;BYHOUR=9"),
        (
            RRuleSchedule(
                rrule="DTSTART:20240101T090000\nRRULE:FREQ=DAILY", timezone="Europe/Paris"
            ),
            "DTSTART:20240101T090000 RRULE:FREQ=DAILY (Europe/Paris)",
        ),
    ],
)
def test_schedule_summary(schedule, summary: str) -> None:
    assert schedule_summary(schedule) == summary


def test_scheduled_run_idempotency_key_is_exact() -> None:
    dep = uuid.UUID(int=7)
    when = dt.datetime(2024, 3, 31, 3, 30, tzinfo=PARIS)
    key = scheduled_run_idempotency_key(dep, when)
    assert key == f"scheduled {dep} 2024-03-31T01:30:00+00:00"
    assert key == scheduled_run_idempotency_key(dep, utc(2024, 3, 31, 1, 30))
    with pytest.raises(ValueError, match="timezone-aware"):
        scheduled_run_idempotency_key(dep, dt.datetime(2024, 1, 1))
