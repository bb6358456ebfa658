"""The period a report covers (pure): whole local days before the run, in the schedule's zone.

A report that runs at 06:00 on 1 March in Europe/Berlin with ``previous_month`` covers
1 February 00:00 to 1 March 00:00 Berlin time. Periods count from the run's scheduled time,
not from when it was finally produced, so a retried or caught-up run reports the same days.
"""

from __future__ import annotations

import datetime as dt
import enum
from zoneinfo import ZoneInfo

from dateutil.relativedelta import relativedelta

from maintainpro.analytics.reports.scheduler import resolve_wall_time


class PeriodName(enum.StrEnum):
    """The periods a definition can ask for."""

    PREVIOUS_DAY = "previous_day"
    PREVIOUS_WEEK = "previous_week"
    PREVIOUS_MONTH = "previous_month"
    PREVIOUS_QUARTER = "previous_quarter"
    LAST_7_DAYS = "last_7_days"
    LAST_30_DAYS = "last_30_days"
    LAST_90_DAYS = "last_90_days"
    MONTH_TO_DATE = "month_to_date"
    YEAR_TO_DATE = "year_to_date"


_ROLLING = {
    PeriodName.LAST_7_DAYS: 7,
    PeriodName.LAST_30_DAYS: 30,
    PeriodName.LAST_90_DAYS: 90,
}


def _midnight(day: dt.date, zone: ZoneInfo) -> dt.datetime:
    # Some zones change their clocks at midnight, so midnight itself may not exist.
    return resolve_wall_time(dt.datetime.combine(day, dt.time()), zone)


def report_period(
    name: PeriodName, moment: dt.datetime, zone: ZoneInfo
) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) in aware UTC for a period name, counted from moment's local date."""
    today = moment.astimezone(zone).date()
    if name is PeriodName.PREVIOUS_DAY:
        return _midnight(today - dt.timedelta(days=1), zone), _midnight(today, zone)
    if name is PeriodName.PREVIOUS_WEEK:
        monday = today - dt.timedelta(days=today.weekday())
        return _midnight(monday - dt.timedelta(days=7), zone), _midnight(monday, zone)
    if name is PeriodName.PREVIOUS_MONTH:
        first = today.replace(day=1)
        return _midnight(first - relativedelta(months=1), zone), _midnight(first, zone)
    if name is PeriodName.PREVIOUS_QUARTER:
        first = today.replace(month=(today.month - 1) // 3 * 3 + 1, day=1)
        return _midnight(first - relativedelta(months=3), zone), _midnight(first, zone)
    if name in _ROLLING:
        start = today - dt.timedelta(days=_ROLLING[name])
        return _midnight(start, zone), _midnight(today, zone)
    if name is PeriodName.MONTH_TO_DATE:
        start = _midnight(today.replace(day=1), zone)
    else:
        start = _midnight(today.replace(month=1, day=1), zone)
    # To date: up to the run itself (at least a second, so the period is never empty).
    return start, max(moment.astimezone(dt.UTC), start + dt.timedelta(seconds=1))
