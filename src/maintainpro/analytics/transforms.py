"""The ETL's explicit transforms, pure: cleaning, unit and code normalisation, keys, durations.

Nothing here reads a database or the clock; the jobs pass in what they extracted and the run's
time, so each rule can be tested on its own and reads the same in the documentation.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

import pyarrow as pa
import pyarrow.compute as pc

from maintainpro.supply.fx import AppliedRate
from maintainpro.supply.money import Money, line_total, sum_money

# --------------------------------------------------------------------------- keys


def date_key(moment: dt.datetime | dt.date) -> int:
    """yyyymmdd of a UTC datetime or a date."""
    if isinstance(moment, dt.datetime):
        moment = moment.astimezone(dt.UTC)
    return moment.year * 10000 + moment.month * 100 + moment.day


def time_key(moment: dt.datetime) -> int:
    """Minute of the UTC day: hour * 60 + minute."""
    utc = moment.astimezone(dt.UTC)
    return utc.hour * 60 + utc.minute


def date_keys(timestamps: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """yyyymmdd of each (naive UTC) timestamp, as int32."""
    year = pc.cast(pc.year(timestamps), pa.int32())
    month = pc.cast(pc.month(timestamps), pa.int32())
    day = pc.cast(pc.day(timestamps), pa.int32())
    return pc.add(pc.add(pc.multiply(year, 10000), pc.multiply(month, 100)), day)


def time_keys(timestamps: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """hour * 60 + minute of each (naive UTC) timestamp, as int32."""
    hour = pc.cast(pc.hour(timestamps), pa.int32())
    minute = pc.cast(pc.minute(timestamps), pa.int32())
    return pc.add(pc.multiply(hour, 60), minute)


def utc(moment: dt.datetime | None) -> dt.datetime | None:
    """An aware datetime as naive UTC (the warehouse's time type); None stays None."""
    if moment is None:
        return None
    return moment.astimezone(dt.UTC).replace(tzinfo=None)


def hours_between(start: dt.datetime | None, end: dt.datetime | None) -> float | None:
    """Hours from start to end; None when either is missing or end is before start."""
    if start is None or end is None or end < start:
        return None
    return (end - start).total_seconds() / 3600.0


# --------------------------------------------------------------------------- codes and units


def code(value: str | None) -> str | None:
    """A code as the warehouse keeps it: trimmed, lower case, blanks as None."""
    if value is None:
        return None
    cleaned = value.strip().lower()
    return cleaned or None


@dataclass(frozen=True)
class UnitRule:
    """A unit's canonical spelling and its linear map: canonical = value * scale + offset."""

    canonical: str
    scale: float = 1.0
    offset: float = 0.0

    def apply(self, value: float | None) -> float | None:
        """The value in the canonical unit."""
        return None if value is None else value * self.scale + self.offset


_FAHRENHEIT: Final = UnitRule("°C", 5.0 / 9.0, -32.0 * 5.0 / 9.0)
# Aliases people type for the same unit, and the units converted to a common one so that one
# sensor type reads the same across devices. Keys are compared in lower case without spaces.
UNIT_RULES: Final[dict[str, UnitRule]] = {
    **dict.fromkeys(("°c", "degc", "c", "celsius", "deg c", "℃"), UnitRule("°C")),
    **dict.fromkeys(("°f", "degf", "f", "fahrenheit", "℉"), _FAHRENHEIT),
    "k": UnitRule("°C", 1.0, -273.15),
    "bar": UnitRule("bar"),
    "mbar": UnitRule("bar", 0.001),
    "kpa": UnitRule("bar", 0.01),
    "pa": UnitRule("bar", 0.00001),
    "psi": UnitRule("bar", 0.0689475729),
    **dict.fromkeys(("mm/s", "mms"), UnitRule("mm/s")),
    **dict.fromkeys(("in/s", "ips"), UnitRule("mm/s", 25.4)),
    **dict.fromkeys(("rpm", "1/min"), UnitRule("rpm")),
    **dict.fromkeys(("a", "amp", "amps", "ampere"), UnitRule("A")),
    **dict.fromkeys(("v", "volt", "volts"), UnitRule("V")),
    **dict.fromkeys(("kw",), UnitRule("kW")),
    **dict.fromkeys(("w",), UnitRule("kW", 0.001)),
    **dict.fromkeys(("%", "percent", "pct"), UnitRule("%")),
    **dict.fromkeys(("h", "hr", "hrs", "hour", "hours"), UnitRule("h")),
    **dict.fromkeys(("l/min", "lpm"), UnitRule("L/min")),
    **dict.fromkeys(("m3/h", "m³/h", "cmh"), UnitRule("m³/h")),
}


def unit_rule(unit: str | None) -> UnitRule:
    """The rule for a unit as configured; unknown units pass through unchanged (trimmed)."""
    raw = (unit or "").strip()
    rule = UNIT_RULES.get(raw.lower().replace(" ", ""))
    if rule is None:
        rule = UNIT_RULES.get(raw.lower())
    return rule if rule is not None else UnitRule(raw)


# --------------------------------------------------------------------------- sensor hours

SENSOR_HOUR_INPUT: Final = pa.schema(
    [
        ("sensor_id", pa.int64()),
        ("bucket", pa.int64()),
        ("reading_count", pa.int64()),
        ("value_sum", pa.float64()),
        ("value_min", pa.float64()),
        ("value_max", pa.float64()),
        ("last_value", pa.float64()),
        ("asset_id", pa.int64()),
        ("site_id", pa.int64()),
        ("unit", pa.string()),
        ("min_value", pa.float64()),
        ("max_value", pa.float64()),
    ]
)


def _is_finite(values: pa.ChunkedArray) -> pa.ChunkedArray:
    return pc.fill_null(pc.is_finite(values), False)


def clean_sensor_hours(raw: pa.Table) -> tuple[pa.Table, int]:
    """Hourly rollups -> fact rows in canonical units; returns (rows, rejected count).

    Dropped: buckets with no readings and buckets whose sum, min, max or last value is not a
    finite number (NaN or infinity cannot be averaged or compared). Kept but flagged
    ``out_of_range``: buckets whose min or max lies outside the sensor's configured range.
    """
    valid = pc.and_(
        pc.and_(pc.greater(raw["reading_count"], 0), _is_finite(raw["value_sum"])),
        pc.and_(
            pc.and_(_is_finite(raw["value_min"]), _is_finite(raw["value_max"])),
            _is_finite(raw["last_value"]),
        ),
    )
    kept = raw.filter(pc.fill_null(valid, False))
    rejected = raw.num_rows - kept.num_rows
    units = kept["unit"]
    distinct = pc.unique(units).to_pylist()
    rules = [unit_rule(u) for u in distinct]
    position = pc.index_in(units, value_set=pa.array(distinct, pa.string()))
    scale = pc.take(pa.array([r.scale for r in rules], pa.float64()), position)
    offset = pc.take(pa.array([r.offset for r in rules], pa.float64()), position)
    canonical = pc.take(pa.array([r.canonical for r in rules], pa.string()), position)

    def convert(values: pa.ChunkedArray) -> pa.ChunkedArray:
        return pc.add(pc.multiply(values, scale), offset)

    average = pc.divide(kept["value_sum"], pc.cast(kept["reading_count"], pa.float64()))
    low, high = convert(kept["value_min"]), convert(kept["value_max"])
    range_low, range_high = convert(kept["min_value"]), convert(kept["max_value"])
    # A unit with a negative scale would swap min and max; none of UNIT_RULES has one.
    out_of_range = pc.or_(
        pc.fill_null(pc.less(low, range_low), False),
        pc.fill_null(pc.greater(high, range_high), False),
    )
    hour_start = pc.cast(pc.cast(kept["bucket"], pa.timestamp("ms")), pa.timestamp("us"))
    table = pa.table(
        {
            "sensor_key": kept["sensor_id"],
            "asset_key": kept["asset_id"],
            "site_key": kept["site_id"],
            "hour_start": hour_start,
            "date_key": date_keys(hour_start),
            "time_key": time_keys(hour_start),
            "reading_count": kept["reading_count"],
            "value_avg": convert(average),
            "value_min": low,
            "value_max": high,
            "last_value": convert(kept["last_value"]),
            "unit": canonical,
            "out_of_range": out_of_range,
        }
    )
    return table, rejected


# --------------------------------------------------------------------------- work orders

FAILURE_TYPES: Final = frozenset({"corrective", "condition_based"})


def downtime_hours(
    wo_type: str,
    created_at: dt.datetime,
    started_at: dt.datetime | None,
    completed_at: dt.datetime | None,
) -> float | None:
    """Hours the asset was out: a failure from report to completion, planned work while done."""
    if completed_at is None:
        return None
    if wo_type in FAILURE_TYPES:
        return hours_between(created_at, completed_at)
    return hours_between(started_at or created_at, completed_at)


@dataclass(frozen=True)
class StatusChange:
    """A work order's move from one status to another, when it happened."""

    at: dt.datetime
    from_status: str
    to_status: str


@dataclass(frozen=True)
class StatusInterval:
    """A stretch of time a work order spent in one status."""

    seq: int
    status: str
    entered_at: dt.datetime
    left_at: dt.datetime | None

    @property
    def hours(self) -> float | None:
        """Length in hours, None while still current."""
        return hours_between(self.entered_at, self.left_at)


def status_intervals(
    created_at: dt.datetime,
    changes: Sequence[StatusChange],
    current: str | None = None,
    settled_at: dt.datetime | None = None,
) -> list[StatusInterval]:
    """The status intervals of a work order opened at ``created_at`` with these changes.

    Changes are taken in the order they were recorded (the events' ids), which is the order
    the moves were made; the first interval is "open" from creation. A change stamped before
    the previous one (clock skew between processes) starts when the previous ended, so no
    interval is negative. When the recorded changes do not end in the order's
    ``current`` status (history missing, rows loaded by hand), the last interval is closed at
    ``settled_at`` (when it was completed, closed or last changed) and the current status
    begins there.
    """
    intervals: list[StatusInterval] = []
    status, entered = "open", created_at
    for change in changes:
        at = max(change.at, entered)
        intervals.append(StatusInterval(len(intervals), status, entered, at))
        status, entered = change.to_status, at
    if current is not None and current != status:
        at = max(settled_at or entered, entered)
        intervals.append(StatusInterval(len(intervals), status, entered, at))
        status, entered = current, at
    intervals.append(StatusInterval(len(intervals), status, entered, None))
    return intervals


def hours_in(intervals: Iterable[StatusInterval], status: str) -> float:
    """Completed hours spent in a status (the current interval not counted)."""
    return sum((i.hours or 0.0) for i in intervals if i.status == status)


# The rate from a currency to base currency on the day in question, or None when there is none.
RateLookup = Callable[[str], AppliedRate | None]


def parts_cost(
    consumed: Iterable[tuple[Decimal, Decimal | None, str]],
    base_currency: str,
    rate_for: RateLookup,
) -> tuple[Decimal, bool]:
    """Cost of consumed parts (quantity, unit cost, currency) in base currency.

    Returns the sum and whether it is complete: a part without a unit cost, or a currency
    without an exchange rate, is left out and makes the figure incomplete.
    """
    lines: list[Money] = []
    complete = True
    for quantity, unit_cost, currency in consumed:
        if unit_cost is None:
            complete = False
            continue
        amount = line_total(Money.of(unit_cost, currency), quantity)
        rate = rate_for(currency)
        if rate is None:
            complete = False
            continue
        lines.append(rate.convert(amount))
    return sum_money(lines, base_currency).amount, complete


# --------------------------------------------------------------------------- PM compliance

MIN_GRACE: Final = dt.timedelta(days=1)


def grace_period(interval_count: int | None, interval_unit: str | None) -> dt.timedelta:
    """How late a PM may be done and still count as on time: 10 % of its interval, >= 1 day.

    Months count as 30 days; meter-only schedules (no calendar interval) get the minimum.
    """
    if not interval_count or not interval_unit:
        return MIN_GRACE
    days_per = {"days": 1, "weeks": 7, "months": 30}.get(interval_unit, 1)
    return max(dt.timedelta(days=interval_count * days_per * 0.1), MIN_GRACE)


def pm_outcome(
    *,
    status: str,
    due_at: dt.datetime | None,
    completed_at: dt.datetime | None,
    grace: dt.timedelta,
    now: dt.datetime,
) -> str:
    """on_time, late, missed or pending for one preventive occurrence.

    Completed (or closed) within due + grace: on time; completed after: late; cancelled, or
    still open after due + grace: missed; open and not yet past due + grace: pending. An
    occurrence without a due date counts as on time once done.
    """
    if status == "cancelled":
        return "missed"
    if completed_at is not None:
        if due_at is None or completed_at <= due_at + grace:
            return "on_time"
        return "late"
    if due_at is not None and now > due_at + grace:
        return "missed"
    return "pending"
