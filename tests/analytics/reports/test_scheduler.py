"""Cron in a time zone, the days the clocks change, due runs and the catch-up after an outage."""

from __future__ import annotations

import datetime as dt

import pytest

from maintainpro.analytics.reports.periods import PeriodName, report_period
from maintainpro.analytics.reports.scheduler import (
    CATCH_UP_WINDOW,
    ScheduleError,
    ScheduleState,
    checked_cron,
    checked_zone,
    due_runs,
    fire_times,
    latest_due,
    next_fire,
    resolve_wall_time,
)

UTC = dt.UTC
BERLIN = checked_zone("Europe/Berlin")


def utc(*parts: int) -> dt.datetime:
    """An aware UTC datetime."""
    return dt.datetime(*parts, tzinfo=UTC)


def test_local_time_follows_the_offset_of_the_season() -> None:
    # 06:00 Berlin is 05:00 UTC in winter (CET) and 04:00 UTC in summer (CEST).
    assert next_fire("0 6 * * *", BERLIN, utc(2026, 1, 10, 12)) == utc(2026, 1, 11, 5)
    assert next_fire("0 6 * * *", BERLIN, utc(2026, 7, 10, 12)) == utc(2026, 7, 11, 4)


def test_spring_forward_a_missing_time_fires_once_when_the_clock_jumps() -> None:
    # 29 March 2026: 02:00 CET jumps to 03:00 CEST (01:00 UTC); 02:30 does not exist.
    assert next_fire("30 2 * * *", BERLIN, utc(2026, 3, 28, 12)) == utc(2026, 3, 29, 1)
    # The next day 02:30 exists again (CEST, 00:30 UTC).
    assert next_fire("30 2 * * *", BERLIN, utc(2026, 3, 29, 1)) == utc(2026, 3, 30, 0, 30)
    # Every quarter hour of the missing hour collapses into one run at the jump.
    night = list(fire_times("*/15 2 * * *", BERLIN, utc(2026, 3, 28, 23), utc(2026, 3, 29, 4)))
    assert night == [utc(2026, 3, 29, 1)]


def test_spring_forward_hourly_runs_keep_going_without_doubles() -> None:
    hours = list(fire_times("0 * * * *", BERLIN, utc(2026, 3, 28, 23, 30), utc(2026, 3, 29, 3)))
    # 01:00 CET, the jump (02:00 -> 03:00 CEST) once, 04:00 and 05:00 CEST.
    assert hours == [
        utc(2026, 3, 29, 0),
        utc(2026, 3, 29, 1),
        utc(2026, 3, 29, 2),
        utc(2026, 3, 29, 3),
    ]


def test_fall_back_a_repeated_time_fires_once_the_first_time() -> None:
    # 25 October 2026: 03:00 CEST falls back to 02:00 CET; 02:30 happens at 00:30 and 01:30 UTC.
    assert next_fire("30 2 * * *", BERLIN, utc(2026, 10, 24, 12)) == utc(2026, 10, 25, 0, 30)
    after_first = next_fire("30 2 * * *", BERLIN, utc(2026, 10, 25, 0, 30))
    assert after_first == utc(2026, 10, 26, 1, 30)  # not again at 01:30 UTC the same night
    # Asked during the second pass of the hour, the answer is still in the future.
    assert next_fire("30 2 * * *", BERLIN, utc(2026, 10, 25, 1, 15)) == utc(2026, 10, 26, 1, 30)


def test_resolve_wall_time_in_a_half_hour_zone() -> None:
    # Lord Howe Island moves by 30 minutes (02:00 -> 02:30 on 4 October 2026).
    zone = checked_zone("Australia/Lord_Howe")
    jump = resolve_wall_time(dt.datetime(2026, 10, 4, 2, 15), zone)
    assert jump == utc(2026, 10, 3, 15, 30)
    assert jump.astimezone(zone).strftime("%H:%M") == "02:30"


@pytest.mark.parametrize(
    ("expression", "problem"),
    [
        ("* * * *", "five fields"),
        ("0 0 * * * *", "five fields"),
        ("@daily", "five fields"),
        ("61 * * * *", "not a valid"),
        ("0 0 31 2 *", "never fires"),
        ("", "five fields"),
    ],
)
def test_bad_cron_is_refused_without_repeating_it(expression: str, problem: str) -> None:
    with pytest.raises(ScheduleError, match=problem) as caught:
        checked_cron(expression)
    assert expression not in str(caught.value) or not expression


def test_cron_whitespace_is_normalised() -> None:
    assert checked_cron("  0   6 *  * 1 ") == "0 6 * * 1"


@pytest.mark.parametrize(
    "name", ["Mars/Olympus", "../../etc/passwd", "", "x" * 65, "Europe/Ber lin"]
)
def test_bad_zones_are_refused(name: str) -> None:
    with pytest.raises(ScheduleError, match="IANA name"):
        checked_zone(name)


def state(next_run_at: dt.datetime | None, *, enabled: bool = True) -> ScheduleState:
    """A daily 06:00 Berlin schedule."""
    return ScheduleState(7, "0 6 * * *", "Europe/Berlin", enabled, next_run_at)


def test_a_schedule_due_now_makes_one_run_and_moves_on() -> None:
    now = utc(2026, 3, 2, 5, 0, 20)
    (run,) = due_runs([state(utc(2026, 3, 2, 5))], now)
    assert (run.scheduled_for, run.next_run_at) == (utc(2026, 3, 2, 5), utc(2026, 3, 3, 5))
    assert (run.missed, run.catch_up) == (0, False)
    assert due_runs([state(utc(2026, 3, 3, 5))], now) == []
    assert due_runs([state(utc(2026, 3, 2, 5), enabled=False), state(None)], now) == []


def test_runs_missed_while_down_become_exactly_one_catch_up() -> None:
    # Down from 1 March 04:00 UTC to 4 March 12:00: 06:00 Berlin passed on 1, 2, 3 and 4 March.
    now = utc(2026, 3, 4, 12)
    (run,) = due_runs([state(utc(2026, 3, 1, 5))], now)
    assert run.scheduled_for == utc(2026, 3, 4, 5)  # the latest passed time
    assert run.next_run_at == utc(2026, 3, 5, 5)  # the first one after now
    assert (run.missed, run.catch_up) == (3, True)


def test_one_late_run_is_a_catch_up_too() -> None:
    (run,) = due_runs([state(utc(2026, 3, 2, 5))], utc(2026, 3, 2, 9))
    assert (run.missed, run.catch_up) == (0, True)


def test_a_long_outage_of_a_frequent_schedule_is_not_walked_minute_by_minute() -> None:
    start, now = utc(2025, 1, 1), utc(2026, 3, 4, 12, 0, 30)
    latest, missed = latest_due("* * * * *", BERLIN, start, now)
    assert latest == utc(2026, 3, 4, 12)
    assert missed >= 1
    # Within the window the count is exact: 2 days of minutes.
    recent = now - CATCH_UP_WINDOW + dt.timedelta(minutes=1)
    assert latest_due("* * * * *", BERLIN, recent.replace(second=0), now)[1] == 2 * 24 * 60 - 1


@pytest.mark.parametrize(
    ("name", "start", "end"),
    [
        (PeriodName.PREVIOUS_MONTH, utc(2026, 1, 31, 23), utc(2026, 2, 28, 23)),
        (PeriodName.PREVIOUS_DAY, utc(2026, 2, 28, 23), utc(2026, 2, 28, 23) + dt.timedelta(0)),
        (PeriodName.PREVIOUS_WEEK, utc(2026, 2, 15, 23), utc(2026, 2, 22, 23)),
        (PeriodName.LAST_7_DAYS, utc(2026, 2, 21, 23), utc(2026, 2, 28, 23)),
        (PeriodName.PREVIOUS_QUARTER, utc(2025, 9, 30, 22), utc(2025, 12, 31, 23)),
        (PeriodName.MONTH_TO_DATE, utc(2026, 2, 28, 23), utc(2026, 3, 1, 5)),
    ],
)
def test_periods_are_local_days_before_the_run(
    name: PeriodName, start: dt.datetime, end: dt.datetime
) -> None:
    # Sunday 1 March 2026, 06:00 in Berlin.
    run_at = utc(2026, 3, 1, 5)
    if name is PeriodName.PREVIOUS_DAY:
        start, end = utc(2026, 2, 27, 23), utc(2026, 2, 28, 23)
    assert report_period(name, run_at, BERLIN) == (start, end)


def test_a_month_across_the_clock_change_is_an_hour_short() -> None:
    start, end = report_period(PeriodName.PREVIOUS_MONTH, utc(2026, 4, 1, 4), BERLIN)
    assert (start, end) == (utc(2026, 2, 28, 23), utc(2026, 3, 31, 22))
    assert end - start == dt.timedelta(days=31, hours=-1)
