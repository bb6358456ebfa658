"""The ETL's pure transforms: cleaning, units, keys, status intervals, PM outcomes, costs."""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal

import pyarrow as pa
import pytest

from maintainpro.analytics.jobs.dimensions import Place, asset_hierarchy, calendar_rows
from maintainpro.analytics.schema import FACT_SENSOR_HOUR
from maintainpro.analytics.transforms import (
    SENSOR_HOUR_INPUT,
    StatusChange,
    clean_sensor_hours,
    date_key,
    downtime_hours,
    grace_period,
    hours_in,
    parts_cost,
    pm_outcome,
    status_intervals,
    time_key,
    unit_rule,
)
from maintainpro.supply.fx import AppliedRate

T = dt.datetime(2026, 3, 1, 8, 0, tzinfo=dt.UTC)


def hours(n: float) -> dt.datetime:
    return T + dt.timedelta(hours=n)


def _raw(rows: list[tuple[object, ...]]) -> pa.Table:
    columns = list(zip(*rows, strict=True))
    return pa.table(
        [pa.array(c, f.type) for c, f in zip(columns, SENSOR_HOUR_INPUT, strict=True)],
        schema=SENSOR_HOUR_INPUT,
    )


def test_sensor_hours_drop_non_finite_buckets_convert_units_and_flag_the_range() -> None:
    bucket = int(T.timestamp() * 1000)
    raw = _raw(
        [
            # sensor, bucket, count, sum, min, max, last, asset, site, unit, range min, max
            (1, bucket, 2, 424.0, 200.0, 224.0, 224.0, 7, 1, "°F", 32.0, 212.0),
            (2, bucket, 2, math.nan, 1.0, 2.0, 2.0, 7, 1, "bar", 0.0, 10.0),
            (3, bucket, 0, 0.0, 0.0, 0.0, 0.0, 7, 1, "bar", 0.0, 10.0),
            (4, bucket, 1, 150.0, 150.0, 150.0, 150.0, None, None, "kPa", None, None),
            (5, bucket, 1, 5.0, 5.0, math.inf, 5.0, 7, 1, "bar", 0.0, 10.0),
        ]
    )
    table, rejected = clean_sensor_hours(raw)
    assert rejected == 3
    assert table.schema.names == FACT_SENSOR_HOUR.column_names
    first, second = table.to_pylist()
    assert first["sensor_key"] == 1
    assert first["value_avg"] == pytest.approx((212.0 - 32) * 5 / 9)  # 100 °C
    assert first["value_max"] == pytest.approx((224.0 - 32) * 5 / 9)
    assert first["unit"] == "°C"
    assert first["out_of_range"] is True  # 106.7 °C above the 100 °C maximum
    assert (first["date_key"], first["time_key"]) == (20260301, 480)
    assert first["hour_start"] == T.replace(tzinfo=None)
    assert second["value_avg"] == pytest.approx(1.5)  # 150 kPa = 1.5 bar
    assert (second["unit"], second["out_of_range"], second["asset_key"]) == ("bar", False, None)


def test_units_are_normalised_and_unknown_units_pass_through() -> None:
    assert unit_rule(" DegC ").canonical == "°C"
    assert unit_rule("K").apply(273.15) == pytest.approx(0.0)
    assert unit_rule("psi").apply(14.5037738) == pytest.approx(1.0, rel=1e-6)
    assert unit_rule("in/s").apply(1.0) == pytest.approx(25.4)
    assert unit_rule("W").canonical == "kW"
    odd = unit_rule(" furlongs ")
    assert (odd.canonical, odd.apply(3.0)) == ("furlongs", 3.0)
    assert unit_rule(None).canonical == ""


def test_keys_are_utc() -> None:
    evening_in_new_york = dt.datetime(
        2026, 3, 1, 20, 30, tzinfo=dt.timezone(dt.timedelta(hours=-5))
    )
    assert date_key(evening_in_new_york) == 20260302
    assert time_key(evening_in_new_york) == 1 * 60 + 30
    assert date_key(dt.date(2026, 12, 31)) == 20261231


def test_status_intervals_follow_the_changes_and_survive_skewed_clocks() -> None:
    changes = [
        StatusChange(hours(1), "open", "waiting_for_parts"),
        StatusChange(hours(3), "waiting_for_parts", "in_progress"),
        StatusChange(hours(2.5), "in_progress", "completed"),  # stamped before the previous
    ]
    intervals = status_intervals(hours(0), changes)
    assert [(i.status, i.hours) for i in intervals] == [
        ("open", 1.0),
        ("waiting_for_parts", 2.0),
        ("in_progress", 0.0),
        ("completed", None),
    ]
    assert hours_in(intervals, "waiting_for_parts") == pytest.approx(2.0)


def test_status_intervals_close_a_missing_history_at_the_settled_time() -> None:
    intervals = status_intervals(hours(0), [], "completed", hours(5))
    assert [(i.status, i.hours) for i in intervals] == [("open", 5.0), ("completed", None)]
    assert [i.status for i in status_intervals(hours(0), [], "open")] == ["open"]


def test_downtime_is_report_to_completion_for_failures_and_work_time_for_planned_work() -> None:
    assert downtime_hours("corrective", hours(0), hours(2), hours(5)) == pytest.approx(5.0)
    assert downtime_hours("preventive", hours(0), hours(2), hours(5)) == pytest.approx(3.0)
    assert downtime_hours("inspection", hours(0), None, hours(1)) == pytest.approx(1.0)
    assert downtime_hours("corrective", hours(0), None, None) is None


@pytest.mark.parametrize(
    ("status", "completed", "now", "expected"),
    [
        ("completed", hours(30), hours(99), "on_time"),  # within due + 1 day
        ("closed", hours(60), hours(99), "late"),
        ("cancelled", None, hours(1), "missed"),
        ("open", None, hours(49), "missed"),
        ("in_progress", None, hours(47), "pending"),
    ],
)
def test_pm_outcomes(
    status: str, completed: dt.datetime | None, now: dt.datetime, expected: str
) -> None:
    due = hours(24)
    grace = grace_period(1, "weeks")
    assert grace == dt.timedelta(days=1)  # 10 % of a week is less than the one-day minimum
    assert pm_outcome(status=status, due_at=due, completed_at=completed, grace=grace, now=now) == (
        expected
    )


def test_grace_is_a_tenth_of_the_interval_at_least_a_day() -> None:
    assert grace_period(3, "months") == dt.timedelta(days=9)
    assert grace_period(20, "days") == dt.timedelta(days=2)
    assert grace_period(None, None) == dt.timedelta(days=1)


def test_parts_cost_converts_each_line_and_says_when_it_is_incomplete() -> None:
    eur = AppliedRate("EUR", "USD", Decimal("1.08"), T.date(), "ECB", T.date())
    usd = AppliedRate("USD", "USD", Decimal(1), T.date(), "identity", T.date())
    rates = {"EUR": eur, "USD": usd}
    consumed = [
        (Decimal("3"), Decimal("0.3333"), "USD"),  # 0.9999 -> 1.00
        (Decimal("1"), Decimal("10.005"), "EUR"),  # 10.01 EUR -> 10.81 USD
    ]
    assert parts_cost(consumed, "USD", rates.get) == (Decimal("11.81"), True)
    missing = [*consumed, (Decimal(1), None, "USD"), (Decimal(1), Decimal(5), "GBP")]
    assert parts_cost(missing, "USD", rates.get) == (Decimal("11.81"), False)


def test_the_calendar_and_the_location_walk() -> None:
    days = calendar_rows(dt.date(2024, 12, 30), dt.date(2025, 1, 5)).to_pylist()
    assert [d["date_key"] for d in days][:3] == [20241230, 20241231, 20250101]
    assert (days[0]["iso_week"], days[0]["day_name"], days[0]["quarter"]) == (1, "Monday", 4)
    assert [d["is_weekend"] for d in days][-2:] == [True, True]
    places = {
        1: Place("AREA", "Area", "area", None),
        2: Place("L1", "Line", "line", 1),
        3: Place("CELL", "Cell", "building", 2),
        4: Place("LOOP", "Loop", "line", 4),  # a cycle in the data
    }
    own, line, area = asset_hierarchy(3, places)
    assert (own and own.code, line and line.code, area and area.code) == ("CELL", "L1", "AREA")
    assert asset_hierarchy(4, places)[1] == places[4]
    assert asset_hierarchy(None, places) == (None, None, None)
