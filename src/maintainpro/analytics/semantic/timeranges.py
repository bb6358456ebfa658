"""Instants, date ranges and time buckets of queries (pure; naive UTC like the warehouse).

A range is half-open, ``[start, end)``. A date range ``["2026-01-01", "2026-06-30"]`` includes
its last day, as in Cube: it is ``[2026-01-01 00:00, 2026-07-01 00:00)``. An end with a time of
day is included to the microsecond. Relative ranges: ``today``, ``yesterday``, ``this|last
week|month|quarter|year`` and ``last N days|weeks|months|quarters|years`` (whole units before
the current one).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Final

from maintainpro.analytics.semantic.model import Granularity
from maintainpro.analytics.semantic.query import QueryError

MICROSECOND: Final = dt.timedelta(microseconds=1)
_RELATIVE: Final = re.compile(r"^(this|last)\s+(day|week|month|quarter|year)$")
_LAST_N: Final = re.compile(r"^last\s+(\d{1,4})\s+(day|week|month|quarter|year)s?$")
_DATE_ONLY: Final = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True)
class TimeRange:
    """``[start, end)`` in naive UTC."""

    start: dt.datetime
    end: dt.datetime

    def aligned_to(self, granularity: Granularity) -> bool:
        """Whether both ends fall on bucket boundaries of the granularity."""
        return is_aligned(self.start, granularity) and is_aligned(self.end, granularity)


def parse_instant(text: str) -> tuple[dt.datetime, bool]:
    """(the instant in naive UTC, whether it was a date alone); ``QueryError`` if unreadable."""
    try:
        if _DATE_ONLY.match(text):
            day = dt.date.fromisoformat(text)
            return dt.datetime(day.year, day.month, day.day), True
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise QueryError("a date is not an ISO 8601 date or date-time") from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(dt.UTC).replace(tzinfo=None)
    return moment, False


def day_span(text: str) -> TimeRange:
    """The span a single date value covers: a whole day, or one instant."""
    moment, date_only = parse_instant(text)
    if date_only:
        return TimeRange(moment, moment + dt.timedelta(days=1))
    return TimeRange(moment, moment + MICROSECOND)


def date_range(value: str | list[str], today: dt.date) -> TimeRange:
    """A query's dateRange: two values (both ends included) or a relative phrase."""
    if isinstance(value, list):
        start, end = day_span(value[0]), day_span(value[1])
        if end.end <= start.start:
            raise QueryError("a date range ends before it starts")
        return TimeRange(start.start, end.end)
    return relative_range(value.strip().lower(), today)


def relative_range(phrase: str, today: dt.date) -> TimeRange:
    """``today``, ``last 7 days``, ``this month`` ... as a range of whole buckets."""
    now = dt.datetime(today.year, today.month, today.day)
    if phrase == "today":
        return TimeRange(now, now + dt.timedelta(days=1))
    if phrase == "yesterday":
        return TimeRange(now - dt.timedelta(days=1), now)
    if match := _RELATIVE.match(phrase):
        unit = Granularity(match.group(2))
        current = truncate(now, unit)
        if match.group(1) == "this":
            return TimeRange(current, shift(current, unit, 1))
        return TimeRange(shift(current, unit, -1), current)
    if match := _LAST_N.match(phrase):
        count, unit = int(match.group(1)), Granularity(match.group(2))
        if count < 1:
            raise QueryError("a relative date range counts at least one unit")
        current = truncate(now, unit)
        return TimeRange(shift(current, unit, -count), current)
    raise QueryError(
        "a date range is two dates or one of: today, yesterday, this|last "
        "day|week|month|quarter|year, last N days|weeks|months|quarters|years"
    )


def truncate(moment: dt.datetime, granularity: Granularity) -> dt.datetime:
    """The start of the bucket holding ``moment`` (weeks start on Monday)."""
    if granularity is Granularity.HOUR:
        return moment.replace(minute=0, second=0, microsecond=0)
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if granularity is Granularity.DAY:
        return day
    if granularity is Granularity.WEEK:
        return day - dt.timedelta(days=day.weekday())
    if granularity is Granularity.MONTH:
        return day.replace(day=1)
    if granularity is Granularity.QUARTER:
        return day.replace(month=(day.month - 1) // 3 * 3 + 1, day=1)
    return day.replace(month=1, day=1)


def shift(start: dt.datetime, granularity: Granularity, count: int) -> dt.datetime:
    """A bucket start moved by ``count`` buckets."""
    if granularity is Granularity.HOUR:
        return start + dt.timedelta(hours=count)
    if granularity is Granularity.DAY:
        return start + dt.timedelta(days=count)
    if granularity is Granularity.WEEK:
        return start + dt.timedelta(weeks=count)
    months = {Granularity.MONTH: 1, Granularity.QUARTER: 3, Granularity.YEAR: 12}[granularity]
    index = start.year * 12 + start.month - 1 + count * months
    if not 1 <= index // 12 <= 9999:
        raise QueryError("a date range reaches beyond the calendar")
    return start.replace(year=index // 12, month=index % 12 + 1)


def is_aligned(moment: dt.datetime, granularity: Granularity) -> bool:
    """Whether an instant is the start of a bucket."""
    return truncate(moment, granularity) == moment
