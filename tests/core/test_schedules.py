"""Schedule arithmetic: intervals, fixed and floating anchors, meters, whichever comes first."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from maintainpro.core.schedules import (
    Anchor,
    IntervalUnit,
    MeterKind,
    MeterReadingRejected,
    add_interval,
    check_meter_reading,
    due_now,
    next_calendar_due,
    next_meter_due,
)

T0 = dt.datetime(2026, 1, 31, 6, 0, tzinfo=dt.UTC)


def test_months_clamp_to_the_end_of_the_month() -> None:
    assert add_interval(T0, 1, IntervalUnit.MONTHS) == dt.datetime(2026, 2, 28, 6, tzinfo=dt.UTC)
    assert add_interval(T0, 2, IntervalUnit.WEEKS) == T0 + dt.timedelta(days=14)
    with pytest.raises(ValueError, match="at least 1"):
        add_interval(T0, 0, IntervalUnit.DAYS)


def test_fixed_keeps_its_rhythm_and_skips_missed_periods() -> None:
    due = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    on_time = next_calendar_due(
        anchor=Anchor.FIXED,
        previous_due=due,
        completed_at=due - dt.timedelta(days=1),
        count=7,
        unit=IntervalUnit.DAYS,
    )
    assert on_time == due + dt.timedelta(days=7)
    very_late = next_calendar_due(
        anchor=Anchor.FIXED,
        previous_due=due,
        completed_at=due + dt.timedelta(days=16),
        count=7,
        unit=IntervalUnit.DAYS,
    )
    assert very_late == due + dt.timedelta(days=21)


def test_floating_counts_from_completion() -> None:
    done = dt.datetime(2026, 3, 5, 14, tzinfo=dt.UTC)
    result = next_calendar_due(
        anchor=Anchor.FLOATING,
        previous_due=dt.datetime(2026, 3, 1, tzinfo=dt.UTC),
        completed_at=done,
        count=2,
        unit=IntervalUnit.WEEKS,
    )
    assert result == done + dt.timedelta(weeks=2)


@given(
    st.integers(min_value=1, max_value=60),
    st.integers(min_value=0, max_value=400),
    st.sampled_from(list(IntervalUnit)),
)
def test_fixed_next_due_is_always_after_completion(
    count: int, late_days: int, unit: IntervalUnit
) -> None:
    due = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    done = due + dt.timedelta(days=late_days)
    result = next_calendar_due(
        anchor=Anchor.FIXED, previous_due=due, completed_at=done, count=count, unit=unit
    )
    assert result > done
    assert result > due


def test_meter_due_steps_and_floats() -> None:
    assert (
        next_meter_due(anchor=Anchor.FIXED, previous_due=500, completed_meter=480, interval=500)
        == 1000
    )
    assert (
        next_meter_due(anchor=Anchor.FIXED, previous_due=500, completed_meter=1200, interval=500)
        == 1500
    )
    assert (
        next_meter_due(anchor=Anchor.FLOATING, previous_due=500, completed_meter=530, interval=500)
        == 1030
    )
    with pytest.raises(ValueError, match="positive"):
        next_meter_due(anchor=Anchor.FIXED, previous_due=0, completed_meter=0, interval=0)


def test_time_or_meter_whichever_comes_first() -> None:
    now = T0
    later = now + dt.timedelta(days=30)
    assert (
        due_now(
            next_due_at=later,
            lead_days=0,
            next_due_meter=500,
            meter_lead=25,
            meter_value=474,
            now=now,
        )
        is None
    )
    by_meter = due_now(
        next_due_at=later, lead_days=0, next_due_meter=500, meter_lead=25, meter_value=475, now=now
    )
    assert by_meter is not None
    assert (by_meter.by_meter, by_meter.by_calendar) == (True, False)
    by_time = due_now(
        next_due_at=now + dt.timedelta(days=2),
        lead_days=2,
        next_due_meter=500,
        meter_lead=0,
        meter_value=10,
        now=now,
    )
    assert by_time is not None
    assert by_time.describe() == "calendar"


def test_counter_readings_only_grow_unless_reset() -> None:
    check_meter_reading(MeterKind.COUNTER, 100.0, 100.5)
    with pytest.raises(MeterReadingRejected, match="only grow"):
        check_meter_reading(MeterKind.COUNTER, 100.0, 99.0)
    check_meter_reading(MeterKind.COUNTER, 100.0, 3.0, reset=True)
    check_meter_reading(MeterKind.GAUGE, 100.0, 3.0)
    for bad in (float("nan"), float("inf")):
        with pytest.raises(MeterReadingRejected, match="finite"):
            check_meter_reading(MeterKind.GAUGE, None, bad)
