"""Example-based tests for the pure alert-rule engine."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta, timezone

import pytest

from maintainpro.iot.rules import (
    BadQualityCondition,
    Clear,
    Condition,
    Direction,
    Disposition,
    Escalate,
    Level,
    Metric,
    Quality,
    Raise,
    Rule,
    RuleState,
    RuleTemplate,
    Sample,
    SensorRef,
    Severity,
    StaleCondition,
    ThresholdCondition,
    Transition,
    check_stale,
    evaluate,
    initial_state,
    instantiate_rules,
)

T0 = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)
W, M, C = Severity.WARNING, Severity.MAJOR, Severity.CRITICAL


def at(minutes: float = 0.0, seconds: float = 0.0) -> datetime:
    """Return T0 shifted by the given offset."""
    return T0 + timedelta(minutes=minutes, seconds=seconds)


def above(
    *levels: tuple[Severity, float], clear_at: float | None = None, metric: Metric = Metric.VALUE
) -> ThresholdCondition:
    """Build an upper threshold condition."""
    return ThresholdCondition(
        Direction.ABOVE, tuple(Level(s, t) for s, t in levels), clear_at, metric
    )


def rule(
    condition: Condition,
    *,
    duration: timedelta = timedelta(0),
    repeat_count: int = 1,
    clear_duration: timedelta = timedelta(0),
) -> Rule:
    """Build a rule for sensor s1."""
    return Rule("r1", "s1", condition, duration, repeat_count, clear_duration)


def run(
    r: Rule, samples: Iterable[Sample], state: RuleState | None = None
) -> tuple[RuleState, list[tuple[int, Transition]]]:
    """Feed samples and collect (sample index, transition) pairs."""
    st = initial_state(r) if state is None else state
    out: list[tuple[int, Transition]] = []
    for i, s in enumerate(samples):
        st, transitions, _ = evaluate(r, st, s)
        out.extend((i, t) for t in transitions)
    return st, out


def minutely(values: Sequence[float], start: float = 0.0) -> list[Sample]:
    """Return one good sample per minute with the given values."""
    return [Sample(at(start + i), v) for i, v in enumerate(values)]


def kinds(events: list[tuple[int, Transition]]) -> list[tuple[int, str]]:
    """Summarise transitions as (index, kind/severity)."""
    out: list[tuple[int, str]] = []
    for i, t in events:
        if isinstance(t, Raise):
            out.append((i, f"raise:{t.severity.label}"))
        elif isinstance(t, Escalate):
            out.append((i, f"escalate:{t.from_severity.label}>{t.to_severity.label}"))
        else:
            out.append((i, f"clear:{t.severity.label}"))
    return out


# --- vibration scenario -------------------------------------------------------------------


def test_vibration_scenario_raise_escalate_clear() -> None:
    """Warning above 7 mm/s, critical above 11, for 5 min; clears below 6."""
    r = rule(above((W, 7.0), (C, 11.0), clear_at=6.0), duration=timedelta(minutes=5))
    values = [4.0, 5.0] + [8.0] * 6 + [12.0] * 6 + [9.0, 8.0] + [6.5, 5.5, 5.0]
    _, events = run(r, minutely(values))
    assert kinds(events) == [
        (7, "raise:warning"),
        (13, "escalate:warning>critical"),
        (17, "clear:critical"),
    ]
    raise_ = events[0][1]
    assert isinstance(raise_, Raise)
    assert raise_.at == at(7)
    assert raise_.value == 8.0
    # The reason names the readings that started and completed the breach.
    assert "> 7 (warning)" in raise_.reason
    assert "held 300 s over 6 reading(s)" in raise_.reason
    assert at(2).isoformat() in raise_.reason
    assert at(7).isoformat() in raise_.reason
    esc = events[1][1]
    assert isinstance(esc, Escalate)
    assert (esc.from_severity, esc.to_severity) == (W, C)
    assert esc.at == at(13)


def test_dropping_to_lower_level_does_not_deescalate() -> None:
    """Once critical, a value back in the warning band keeps the alert critical."""
    r = rule(above((W, 7.0), (C, 11.0), clear_at=6.0))
    state, events = run(r, minutely([12.0, 8.0, 8.0, 12.0, 8.0]))
    assert kinds(events) == [(0, "raise:critical")]
    assert state.active is C


def test_escalation_happens_once_per_level() -> None:
    """Repeated breaches of the same higher level escalate once; the next level again."""
    r = rule(above((W, 1.0), (M, 2.0), (C, 3.0)))
    _, events = run(r, minutely([1.5, 2.5, 2.5, 1.5, 2.5, 3.5, 3.5, 0.5]))
    assert kinds(events) == [
        (0, "raise:warning"),
        (1, "escalate:warning>major"),
        (5, "escalate:major>critical"),
        (7, "clear:critical"),
    ]


def test_jump_straight_to_top_level_raises_once_at_that_level() -> None:
    """Skipping levels gives a single raise at the highest qualifying severity."""
    r = rule(above((W, 1.0), (M, 2.0), (C, 3.0)))
    _, events = run(r, minutely([0.0, 5.0]))
    assert kinds(events) == [(1, "raise:critical")]


# --- hysteresis and durations ---------------------------------------------------------------


def test_hysteresis_raise_above_80_clear_below_75() -> None:
    """Values in [75, 80] neither raise nor clear."""
    r = rule(above((M, 80.0), clear_at=75.0))
    values = [70.0, 80.0, 81.0, 79.0, 75.0, 77.0, 80.5, 74.9, 76.0, 80.0, 80.1]
    _, events = run(r, minutely(values))
    assert kinds(events) == [(2, "raise:major"), (7, "clear:major"), (10, "raise:major")]


def test_without_clear_at_clears_below_lowest_threshold() -> None:
    """clear_at defaults to the lowest threshold; the threshold value itself is the band."""
    r = rule(above((W, 10.0)))
    _, events = run(r, minutely([11.0, 10.0, 9.9]))
    assert kinds(events) == [(0, "raise:warning"), (2, "clear:warning")]


def test_lower_threshold_direction() -> None:
    """A BELOW condition raises under the threshold and clears above clear_at."""
    cond = ThresholdCondition(Direction.BELOW, (Level(W, 2.0), Level(C, 1.0)), clear_at=2.5)
    r = rule(cond)
    _, events = run(r, minutely([3.0, 1.9, 0.5, 2.2, 2.6]))
    assert kinds(events) == [
        (1, "raise:warning"),
        (2, "escalate:warning>critical"),
        (4, "clear:critical"),
    ]


def test_duration_held_by_timestamps() -> None:
    """'Above 80 for 5 minutes' uses reading timestamps, irregular spacing included."""
    r = rule(above((M, 80.0)), duration=timedelta(minutes=5))
    samples = [
        Sample(at(0), 81.0),
        Sample(at(4, 59), 82.0),  # 299 s: not yet
        Sample(at(5), 83.0),  # exactly 300 s: raise
        Sample(at(6), 84.0),
    ]
    _, events = run(r, samples)
    assert kinds(events) == [(2, "raise:major")]


def test_duration_restarts_after_interruption() -> None:
    """A single reading back in range restarts the duration."""
    r = rule(above((M, 80.0)), duration=timedelta(minutes=5))
    values = [81.0, 81.0, 81.0, 79.0, 81.0, 81.0, 81.0, 81.0, 81.0, 81.0]
    _, events = run(r, minutely(values))
    assert kinds(events) == [(9, "raise:major")]


def test_clear_duration() -> None:
    """The clear condition must hold for clear_duration; a relapse restarts it."""
    r = rule(above((W, 80.0), clear_at=75.0), clear_duration=timedelta(minutes=2))
    values = [85.0, 70.0, 70.0, 76.0, 70.0, 70.0, 70.0]
    _, events = run(r, minutely(values))
    assert kinds(events) == [(0, "raise:warning"), (6, "clear:warning")]
    clear = events[1][1]
    assert isinstance(clear, Clear)
    assert "< clear level 75" in clear.reason
    assert "for 120 s" in clear.reason


def test_repeat_count_needs_n_readings_in_a_row() -> None:
    """repeat_count=3 raises on the third consecutive breaching reading."""
    r = rule(above((W, 50.0)), repeat_count=3)
    values = [51.0, 52.0, 40.0, 51.0, 52.0, 53.0, 54.0]
    _, events = run(r, minutely(values))
    assert kinds(events) == [(5, "raise:warning")]
    assert "over 3 reading(s)" in events[0][1].reason


def test_repeat_count_and_duration_both_required() -> None:
    """With both options the later of the two conditions decides."""
    r = rule(above((W, 50.0)), repeat_count=3, duration=timedelta(seconds=10))
    samples = [Sample(at(seconds=s), 60.0) for s in (0, 1, 2, 3, 10, 11)]
    _, events = run(r, samples)
    assert kinds(events) == [(4, "raise:warning")]


# --- rate of change ------------------------------------------------------------------------


def test_rate_of_change_per_minute_between_consecutive_readings() -> None:
    """Rate uses the timestamp gap to the previous reading, not the sample index."""
    r = rule(above((W, 2.0), (C, 5.0), clear_at=1.0, metric=Metric.RATE_PER_MINUTE))
    samples = [
        Sample(at(0), 20.0),  # no previous reading: no rate
        Sample(at(1), 21.0),  # 1/min
        Sample(at(1, 30), 24.0),  # 3 / 0.5 min = 6/min -> critical
        Sample(at(3, 30), 26.0),  # 2 / 2 min = 1/min: in band, no clear
        Sample(at(4, 30), 26.5),  # 0.5/min -> clear
    ]
    _, events = run(r, samples)
    assert kinds(events) == [(2, "raise:critical"), (4, "clear:critical")]
    raise_ = events[0][1]
    assert isinstance(raise_, Raise)
    assert raise_.value == pytest.approx(6.0)
    assert "rate 6/min > 5/min (critical)" in raise_.reason
    assert "24 at" in raise_.reason
    assert "after 21 at" in raise_.reason


def test_falling_rate_with_below_direction() -> None:
    """A negative rate limit with BELOW catches fast drops."""
    cond = ThresholdCondition(Direction.BELOW, (Level(M, -10.0),), metric=Metric.RATE_PER_MINUTE)
    _, events = run(rule(cond), minutely([100.0, 95.0, 80.0, 79.0]))
    assert kinds(events) == [(2, "raise:major"), (3, "clear:major")]


def test_rate_skips_bad_quality_reading_as_reference() -> None:
    """The rate reference is the last usable reading, across a bad one."""
    r = rule(above((W, 2.0), metric=Metric.RATE_PER_MINUTE))
    samples = [
        Sample(at(0), 10.0),
        Sample(at(1), 1000.0, Quality.BAD),
        Sample(at(2), 13.0),  # (13 - 10) / 2 min = 1.5/min
    ]
    state, events = run(r, samples)
    assert events == []
    assert state.prev_value == 13.0


# --- quality ---------------------------------------------------------------------------------


def test_bad_quality_n_in_a_row_raises_and_good_clears() -> None:
    """Three bad readings in a row raise; a usable one clears."""
    r = rule(BadQualityCondition(M), repeat_count=3)
    samples = [
        Sample(at(0), 1.0, Quality.BAD),
        Sample(at(1), 1.0, Quality.BAD),
        Sample(at(2), 1.0, Quality.GOOD),
        Sample(at(3), 0.0, Quality.BAD),
        Sample(at(4), 0.0, "comm_failure"),  # unknown qualities count as bad
        Sample(at(5), 0.0, Quality.BAD),
        Sample(at(6), 0.0, Quality.BAD),
        Sample(at(7), 5.0, Quality.UNCERTAIN),
    ]
    _, events = run(r, samples)
    assert kinds(events) == [(5, "raise:major"), (7, "clear:major")]
    assert "bad-quality readings" in events[0][1].reason
    assert "usable again" in events[1][1].reason


def test_bad_quality_readings_are_transparent_to_threshold_rules() -> None:
    """Bad readings neither raise, clear nor break a running duration."""
    r = rule(above((W, 80.0), clear_at=75.0), duration=timedelta(minutes=3))
    samples = [
        Sample(at(0), 85.0),
        Sample(at(1), 0.0, Quality.BAD),  # would clear if trusted
        Sample(at(2), 999.0, Quality.BAD),
        Sample(at(3), 85.0),
    ]
    state, events = run(r, samples)
    assert kinds(events) == [(3, "raise:warning")]
    state, events = run(r, [Sample(at(4), 0.0, Quality.BAD)], state)
    assert events == []
    assert state.active is W
    assert state.last_ts == at(4)


def test_uncertain_quality_is_evaluated() -> None:
    """Uncertain readings are usable for thresholds."""
    _, events = run(rule(above((W, 1.0))), [Sample(at(0), 2.0, Quality.UNCERTAIN)])
    assert kinds(events) == [(0, "raise:warning")]


# --- stale data ------------------------------------------------------------------------------


def test_stale_raises_once_and_clears_on_resume() -> None:
    """No reading for the timeout raises offline once; the next reading clears it."""
    r = rule(StaleCondition(timedelta(seconds=300), C))
    state, events = run(r, [Sample(at(0), 1.0)])
    assert events == []
    state, transitions = check_stale(r, state, at(4, 59))
    assert transitions == []
    state, transitions = check_stale(r, state, at(5))
    assert len(transitions) == 1
    offline = transitions[0]
    assert isinstance(offline, Raise)
    assert (offline.severity, offline.value, offline.at) == (C, None, at(5))
    assert "no reading for 300 s" in offline.reason
    assert at(0).isoformat() in offline.reason
    state, transitions = check_stale(r, state, at(10))
    assert transitions == []  # one active alert per rule
    state, events = run(r, [Sample(at(11), 2.0, Quality.BAD)], state)
    assert kinds(events) == [(0, "clear:critical")]
    assert state.active is None
    assert check_stale(r, state, at(12))[1] == []
    assert len(check_stale(r, state, at(16))[1]) == 1


def test_stale_for_sensor_that_never_reported() -> None:
    """watch_since is the reference when no reading ever arrived; without it nothing fires."""
    r = rule(StaleCondition(timedelta(minutes=1)))
    assert check_stale(r, initial_state(r), at(60)) == (initial_state(r), [])
    state = initial_state(r, watch_since=at(0))
    _, transitions = check_stale(r, state, at(1))
    assert len(transitions) == 1
    assert "monitoring started" in transitions[0].reason


def test_check_stale_ignores_other_rules_and_future_last_reading() -> None:
    """Non-stale rules are untouched, as is a clock behind the last reading."""
    r = rule(above((W, 1.0)))
    state, _ = run(r, [Sample(at(0), 0.0)])
    assert check_stale(r, state, at(600)) == (state, [])
    stale = rule(StaleCondition(timedelta(minutes=1)))
    state, _ = run(stale, [Sample(at(10), 0.0)])
    assert check_stale(stale, state, at(0)) == (state, [])


def test_check_stale_rejects_naive_now() -> None:
    """The timer must pass an aware clock."""
    r = rule(StaleCondition(timedelta(minutes=1)))
    state, _ = run(r, [Sample(at(0), 0.0)])
    with pytest.raises(ValueError, match="aware"):
        check_stale(r, state, datetime(2024, 3, 1, 9, 0))


# --- ordering and input validation ----------------------------------------------------------


def test_out_of_order_sample_is_ignored_and_flagged() -> None:
    """An older sample leaves the state object untouched and is reported."""
    r = rule(above((W, 80.0)), duration=timedelta(minutes=5))
    state, _ = run(r, minutely([81.0, 81.0, 81.0]))
    result = evaluate(r, state, Sample(at(1, 30), 10.0))
    assert result.disposition is Disposition.OUT_OF_ORDER
    assert result.ignored
    assert result.state is state
    assert result.transitions == []
    dup = evaluate(r, state, Sample(at(2), 81.0))
    assert dup.disposition is Disposition.DUPLICATE
    assert dup.state is state
    ok = evaluate(r, state, Sample(at(5), 81.0))
    assert ok.disposition is Disposition.ACCEPTED
    assert not ok.ignored
    assert kinds([(0, t) for t in ok.transitions]) == [(0, "raise:warning")]


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_value_rejected(bad: float) -> None:
    """NaN and infinities raise ValueError and never reach the state."""
    r = rule(above((W, 1.0)))
    with pytest.raises(ValueError, match="finite"):
        evaluate(r, initial_state(r), Sample(at(0), bad))


def test_nan_rejected_even_with_bad_quality() -> None:
    """Quality does not excuse a NaN: the ingest contract is finite values only."""
    r = rule(BadQualityCondition())
    with pytest.raises(ValueError, match="finite"):
        evaluate(r, initial_state(r), Sample(at(0), math.nan, Quality.BAD))


def test_naive_timestamp_rejected() -> None:
    """Naive datetimes are ambiguous and rejected."""
    r = rule(above((W, 1.0)))
    with pytest.raises(ValueError, match="aware"):
        evaluate(r, initial_state(r), Sample(datetime(2024, 1, 1), 0.0))


def test_non_utc_offsets_are_ordered_by_instant() -> None:
    """Aware timestamps in other zones compare by instant."""
    cet = timezone(timedelta(hours=1))
    r = rule(above((W, 1.0)))
    state, _ = run(r, [Sample(at(0), 0.0)])
    earlier = evaluate(r, state, Sample(datetime(2024, 3, 1, 8, 30, tzinfo=cet), 5.0))
    assert earlier.disposition is Disposition.OUT_OF_ORDER
    later = evaluate(r, state, Sample(datetime(2024, 3, 1, 9, 30, tzinfo=cet), 5.0))
    assert len(later.transitions) == 1
    assert "2024-03-01T08:30:00+00:00" in later.transitions[0].reason


def test_accepts_any_object_with_sample_attributes() -> None:
    """evaluate is structural so pipeline reading types need no conversion."""

    class Reading:
        """Stand-in for the pipeline's own reading type."""

        def __init__(self) -> None:
            self.timestamp = at(0)
            self.value = 99.0
            self.quality = "good"
            self.sensor_id = "s1"

    r = rule(above((W, 1.0)))
    assert len(evaluate(r, initial_state(r), Reading()).transitions) == 1


# --- state persistence -----------------------------------------------------------------------


def test_state_round_trips_through_json_mid_alert() -> None:
    """A state with active alert, runs and clear run survives JSON."""
    r = rule(above((W, 7.0), (C, 11.0), clear_at=6.0), clear_duration=timedelta(minutes=5))
    state, _ = run(r, minutely([8.0, 12.0, 5.0, 5.0]))
    assert state.active is C
    assert state.clear_since == at(2)
    restored = RuleState.from_dict(json.loads(json.dumps(state.to_dict())))
    assert restored == state
    a = run(r, minutely([5.0] * 5, start=4), state)
    b = run(r, minutely([5.0] * 5, start=4), restored)
    assert a == b
    assert kinds(a[1]) == [(3, "clear:critical")]


def test_state_from_dict_rejects_malformed() -> None:
    """Malformed persisted state raises ValueError rather than misbehaving later."""
    good = RuleState(last_ts=at(0)).to_dict()
    for patch in (
        {"version": 99},
        {"last_ts": "2024-01-01T00:00:00"},
        {"last_ts": 5},
        {"active": "fatal"},
        {"prev_value": "x"},
        {"prev_value": True},
        {"runs": "nope"},
        {"runs": [{"since": None, "first_value": 1.0, "count": 1}]},
        {"runs": [{"since": at(0).isoformat(), "first_value": 1.0, "count": 0}]},
        {"runs": [3]},
    ):
        with pytest.raises(ValueError):  # noqa: PT011 - any ValueError is the contract
            RuleState.from_dict({**good, **patch})


def test_state_from_rule_with_other_levels_is_tolerated() -> None:
    """After a rule edit changes the level count, stale runs are dropped, not misapplied."""
    old = rule(above((W, 7.0)))
    state, _ = run(old, minutely([8.0]))
    new = rule(above((W, 7.0), (C, 11.0)))
    state, events = run(new, minutely([12.0], start=1), state)
    assert kinds(events) == [(0, "escalate:warning>critical")]
    assert len(state.runs) == 2


# --- configuration and templates ------------------------------------------------------------


def test_levels_are_sorted_by_severity() -> None:
    """Levels may be given in any order."""
    cond = above((C, 11.0), (W, 7.0))
    assert cond.severities == (W, C)
    assert cond.thresholds == (7.0, 11.0)


@pytest.mark.parametrize(
    ("levels", "clear_at", "message"),
    [
        ((), None, "at least one level"),
        (((W, 7.0), (W, 8.0)), None, "only once"),
        (((W, 7.0), (C, 7.0)), None, "strictly further"),
        (((W, 7.0), (C, 6.0)), None, "strictly further"),
        (((W, math.nan),), None, "finite"),
        (((W, 7.0),), 8.0, "clear_at"),
        (((W, 7.0),), math.inf, "finite"),
    ],
)
def test_invalid_threshold_conditions(
    levels: tuple[tuple[Severity, float], ...], clear_at: float | None, message: str
) -> None:
    """Inconsistent thresholds are rejected at definition time."""
    with pytest.raises(ValueError, match=message):
        above(*levels, clear_at=clear_at)


def test_invalid_rules() -> None:
    """Timing options are validated; stale rules take none."""
    cond = above((W, 1.0))
    with pytest.raises(ValueError, match="repeat_count"):
        rule(cond, repeat_count=0)
    with pytest.raises(ValueError, match="negative"):
        rule(cond, duration=timedelta(seconds=-1))
    with pytest.raises(ValueError, match="empty"):
        Rule("", "s1", cond)
    with pytest.raises(ValueError, match="stale rules"):
        rule(StaleCondition(timedelta(minutes=1)), duration=timedelta(minutes=1))
    with pytest.raises(ValueError, match="positive"):
        StaleCondition(timedelta(0))


def test_template_instantiates_rules_for_matching_sensors() -> None:
    """A template applies to sensors matching its type and asset class."""
    sensors = [
        SensorRef("p1-vib", "vibration", "pump"),
        SensorRef("p2-vib", "vibration", "pump"),
        SensorRef("f1-vib", "vibration", "fan"),
        SensorRef("p1-temp", "temperature", "pump"),
        SensorRef("x-vib", "vibration"),
    ]
    tpl = RuleTemplate(
        "pump-vib",
        above((W, 7.0), (C, 11.0), clear_at=6.0),
        sensor_type="vibration",
        asset_class="pump",
        duration=timedelta(minutes=5),
    )
    rules = instantiate_rules(tpl, sensors)
    assert [r.sensor_id for r in rules] == ["p1-vib", "p2-vib"]
    assert rules[0].rule_id == "pump-vib:p1-vib"
    assert all(r.duration == timedelta(minutes=5) and r.condition is tpl.condition for r in rules)
    by_type = RuleTemplate("vib", above((W, 7.0)), sensor_type="vibration")
    assert len(instantiate_rules(by_type, sensors)) == 4
    by_class = RuleTemplate(
        "pumps-offline", StaleCondition(timedelta(minutes=5)), asset_class="pump"
    )
    assert [r.sensor_id for r in instantiate_rules(by_class, sensors)] == [
        "p1-vib",
        "p2-vib",
        "p1-temp",
    ]


def test_template_requires_selector() -> None:
    """A template without selector would match every sensor and is rejected."""
    with pytest.raises(ValueError, match="sensor_type"):
        RuleTemplate("all", above((W, 1.0)))
    with pytest.raises(ValueError, match="repeat_count"):
        RuleTemplate("t", above((W, 1.0)), sensor_type="x", repeat_count=0)
