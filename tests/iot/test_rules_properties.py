"""Property-based tests (hypothesis) for hysteresis, duration and state persistence edges."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

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
    Sample,
    Severity,
    StaleCondition,
    ThresholdCondition,
    Transition,
    check_stale,
    evaluate,
    initial_state,
)

T0 = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)

# Integer values hit integer thresholds exactly, which is where off-by-one bugs live.
values = st.one_of(
    st.integers(-20, 120).map(float),
    st.floats(-20.0, 120.0, allow_nan=False, allow_infinity=False),
)
# Integer-second gaps make "exactly D after the breach started" a frequent case.
gaps = st.integers(1, 90)
qualities = st.sampled_from(
    [Quality.GOOD, Quality.GOOD, Quality.GOOD, Quality.UNCERTAIN, Quality.BAD]
)
seconds = st.integers(0, 600).map(lambda s: timedelta(seconds=s))


def make_samples(steps: Sequence[tuple[int, float, str]], start: datetime = T0) -> list[Sample]:
    """Turn (gap seconds, value, quality) steps into samples with cumulative timestamps."""
    out: list[Sample] = []
    ts = start
    for gap, value, quality in steps:
        ts += timedelta(seconds=gap)
        out.append(Sample(ts, value, quality))
    return out


def good_steps(
    min_size: int = 0, max_size: int = 40
) -> st.SearchStrategy[list[tuple[int, float, str]]]:
    """Steps whose readings are all of good quality."""
    return st.lists(
        st.tuples(gaps, values, st.just(Quality.GOOD)), min_size=min_size, max_size=max_size
    )


def mixed_steps(max_size: int = 40) -> st.SearchStrategy[list[tuple[int, float, str]]]:
    """Steps with occasional uncertain and bad readings."""
    return st.lists(st.tuples(gaps, values, qualities), max_size=max_size)


@st.composite
def threshold_conditions(draw: st.DrawFn, metric: Metric | None = None) -> ThresholdCondition:
    """Draw a valid single- or multi-level threshold condition."""
    direction = draw(st.sampled_from(Direction))
    severities = sorted(draw(st.sets(st.sampled_from(Severity), min_size=1)))
    base = draw(st.integers(0, 100))
    steps = draw(
        st.lists(st.integers(1, 30), min_size=len(severities) - 1, max_size=len(severities) - 1)
    )
    sign = 1 if direction is Direction.ABOVE else -1
    thresholds = [base]
    for step in steps:
        thresholds.append(thresholds[-1] + sign * step)
    band = draw(st.none() | st.integers(0, 20))
    clear_at = None if band is None else float(base - sign * band)
    return ThresholdCondition(
        direction,
        tuple(Level(s, float(t)) for s, t in zip(severities, thresholds, strict=True)),
        clear_at,
        draw(st.sampled_from(Metric)) if metric is None else metric,
    )


@st.composite
def rules(draw: st.DrawFn) -> Rule:
    """Draw any non-stale rule with random timing options."""
    condition: Condition = draw(
        st.one_of(threshold_conditions(), st.builds(BadQualityCondition, st.sampled_from(Severity)))
    )
    return Rule(
        "r1",
        "s1",
        condition,
        duration=draw(seconds),
        repeat_count=draw(st.integers(1, 4)),
        clear_duration=draw(seconds),
    )


def feed(
    rule: Rule, samples: Sequence[Sample], state: RuleState | None = None
) -> tuple[RuleState, list[tuple[int, Transition]]]:
    """Evaluate samples in sequence and collect (index, transition) pairs."""
    st_ = initial_state(rule) if state is None else state
    out: list[tuple[int, Transition]] = []
    for i, sample in enumerate(samples):
        st_, transitions, _ = evaluate(rule, st_, sample)
        out.extend((i, t) for t in transitions)
    return st_, out


def assert_well_formed(rule: Rule, events: Sequence[tuple[int, Transition]]) -> None:
    """Alerts follow (Raise Escalate* Clear)* with strictly rising severity inside an episode."""
    active: Severity | None = None
    for _, t in events:
        assert t.rule_id == rule.rule_id
        if isinstance(t, Raise):
            assert active is None, "second raise while an alert is active"
            active = t.severity
        elif isinstance(t, Escalate):
            assert active is not None
            assert t.from_severity is active
            assert t.to_severity > t.from_severity
            active = t.to_severity
        else:
            assert active is not None
            assert t.severity is active
            active = None


# --- hysteresis ------------------------------------------------------------------------------


@given(
    direction=st.sampled_from(Direction),
    limit=st.integers(0, 100),
    band=st.integers(0, 20),
    duration=seconds,
    repeat_count=st.integers(1, 4),
    clear_duration=seconds,
    prefix=good_steps(),
    inside=st.lists(st.tuples(gaps, st.floats(0.0, 1.0)), min_size=1, max_size=40),
)
def test_no_flapping_inside_hysteresis_band(
    direction: Direction,
    limit: int,
    band: int,
    duration: timedelta,
    repeat_count: int,
    clear_duration: timedelta,
    prefix: list[tuple[int, float, str]],
    inside: list[tuple[int, float]],
) -> None:
    """Whatever happened before, values inside [clear_at, limit] never raise nor clear."""
    sign = 1 if direction is Direction.ABOVE else -1
    clear_at = limit - sign * band
    cond = ThresholdCondition(direction, (Level(Severity.MAJOR, limit),), float(clear_at))
    rule = Rule("r1", "s1", cond, duration, repeat_count, clear_duration)
    state, _ = feed(rule, make_samples(prefix))
    lo, hi = min(limit, clear_at), max(limit, clear_at)
    # Fractions map onto the closed band, endpoints included.
    band_steps = [(gap, lo + f * (hi - lo), Quality.GOOD) for gap, f in inside]
    start = state.last_ts or T0
    _, events = feed(rule, make_samples(band_steps, start), state)
    assert events == []


@given(rule=rules(), steps=mixed_steps())
def test_transitions_only_beyond_the_raise_and_clear_levels(
    rule: Rule, steps: list[tuple[int, float, str]]
) -> None:
    """Raises need a breach, clears the strict clear condition, and episodes are well formed."""
    samples = make_samples(steps)
    _, events = feed(rule, samples)
    assert_well_formed(rule, events)
    cond = rule.condition
    if not isinstance(cond, ThresholdCondition) or cond.metric is not Metric.VALUE:
        return
    sign = 1 if cond.direction is Direction.ABOVE else -1
    for i, t in events:
        v = samples[i].value
        assert samples[i].quality != Quality.BAD
        if isinstance(t, Raise | Escalate):
            severity = t.severity if isinstance(t, Raise) else t.to_severity
            limit = next(lv.threshold for lv in cond.levels if lv.severity is severity)
            assert sign * v > sign * limit
        else:
            assert sign * v < sign * cond.clear_level


# --- durations -------------------------------------------------------------------------------


def oracle(
    limit: float,
    clear_at: float,
    duration: timedelta,
    repeat_count: int,
    clear_duration: timedelta,
    samples: Sequence[Sample],
) -> list[tuple[int, str]]:
    """Brute-force restatement of the single-level ABOVE semantics over usable readings."""
    usable = [(i, s) for i, s in enumerate(samples) if s.quality != Quality.BAD]
    out: list[tuple[int, str]] = []
    active = False
    for k, (i, s) in enumerate(usable):
        if not active:
            if s.value <= limit:
                continue
            j = k
            while j > 0 and usable[j - 1][1].value > limit:
                j -= 1
            held = s.timestamp - usable[j][1].timestamp
            if held >= duration and k - j + 1 >= repeat_count:
                out.append((i, "raise"))
                active = True
        else:
            if s.value >= clear_at:
                continue
            j = k
            while j > 0 and usable[j - 1][1].value < clear_at:
                j -= 1
            if s.timestamp - usable[j][1].timestamp >= clear_duration:
                out.append((i, "clear"))
                active = False
    return out


@given(
    limit=st.integers(0, 100),
    band=st.integers(0, 20),
    duration=seconds,
    repeat_count=st.integers(1, 4),
    clear_duration=seconds,
    steps=mixed_steps(max_size=60),
)
@settings(max_examples=300)
def test_duration_and_repeat_match_brute_force_oracle(
    limit: int,
    band: int,
    duration: timedelta,
    repeat_count: int,
    clear_duration: timedelta,
    steps: list[tuple[int, float, str]],
) -> None:
    """Raise exactly at the first reading where the breach has held D (and N readings)."""
    clear_at = float(limit - band)
    cond = ThresholdCondition(Direction.ABOVE, (Level(Severity.WARNING, limit),), clear_at)
    rule = Rule("r1", "s1", cond, duration, repeat_count, clear_duration)
    samples = make_samples(steps)
    _, events = feed(rule, samples)
    got = [(i, "raise" if isinstance(t, Raise) else "clear") for i, t in events]
    assert got == oracle(limit, clear_at, duration, repeat_count, clear_duration, samples)


@given(
    limit=st.integers(0, 100),
    duration=st.integers(1, 600).map(lambda s: timedelta(seconds=s)),
    steps=good_steps(min_size=1),
)
def test_raise_never_before_duration_by_timestamps(
    limit: int, duration: timedelta, steps: list[tuple[int, float, str]]
) -> None:
    """At a raise the breach has held at least D; one reading earlier it had not."""
    cond = ThresholdCondition(Direction.ABOVE, (Level(Severity.CRITICAL, limit),))
    rule = Rule("r1", "s1", cond, duration)
    samples = make_samples(steps)
    _, events = feed(rule, samples)
    for i, t in events:
        if not isinstance(t, Raise):
            continue
        j = i
        while j > 0 and samples[j - 1].value > limit:
            j -= 1
        assert samples[i].timestamp - samples[j].timestamp >= duration
        if i > j:
            assert samples[i - 1].timestamp - samples[j].timestamp < duration


@given(
    duration=st.integers(1, 900),
    gaps_=st.lists(st.integers(1, 120), min_size=1, max_size=30),
)
def test_continuous_breach_raises_at_first_reading_at_or_after_duration(
    duration: int, gaps_: list[int]
) -> None:
    """A breach that never lets up raises exactly once, at the first reading >= D."""
    rule = Rule(
        "r1",
        "s1",
        ThresholdCondition(Direction.ABOVE, (Level(Severity.MAJOR, 80.0),)),
        timedelta(seconds=duration),
    )
    samples = make_samples([(g, 81.0, Quality.GOOD) for g in [0, *gaps_]])
    _, events = feed(rule, samples)
    elapsed = [(s.timestamp - samples[0].timestamp).total_seconds() for s in samples]
    expected = next((i for i, e in enumerate(elapsed) if e >= duration), None)
    assert [i for i, _ in events] == ([] if expected is None else [expected])


# --- persistence and ordering ----------------------------------------------------------------


# Zero and negative gaps produce duplicate and out-of-order arrivals.
unordered_steps = st.lists(st.tuples(st.integers(-60, 90), values, qualities), max_size=50)


@given(rule=rules(), steps=unordered_steps, data=st.data())
def test_state_round_trip_and_restart_mid_stream(
    rule: Rule, steps: list[tuple[int, float, str]], data: st.DataObject
) -> None:
    """Saving and restoring state anywhere gives the same transitions as one go."""
    samples = make_samples(steps)
    one_go_state, one_go = feed(rule, samples)
    split = data.draw(st.integers(0, len(samples)), label="split")
    state, first = feed(rule, samples[:split])
    restored = RuleState.from_dict(json.loads(json.dumps(state.to_dict())))
    assert restored == state
    final, second = feed(rule, samples[split:], restored)
    assert [t for _, t in first] + [t for _, t in second] == [t for _, t in one_go]
    assert final == one_go_state


@given(rule=rules(), steps=unordered_steps)
def test_every_intermediate_state_round_trips(
    rule: Rule, steps: list[tuple[int, float, str]]
) -> None:
    """to_dict/from_dict is lossless for every state the engine can reach."""
    state = initial_state(rule)
    for sample in make_samples(steps):
        state = evaluate(rule, state, sample).state
        assert RuleState.from_dict(json.loads(json.dumps(state.to_dict()))) == state


@given(rule=rules(), steps=mixed_steps(), data=st.data())
def test_out_of_order_samples_never_change_the_outcome(
    rule: Rule, steps: list[tuple[int, float, str]], data: st.DataObject
) -> None:
    """Late (or duplicate) samples injected anywhere are flagged and change nothing."""
    samples = make_samples(steps)
    expected_state, expected = feed(rule, samples)
    state = initial_state(rule)
    got: list[Transition] = []
    for i, sample in enumerate(samples):
        state, transitions, disposition = evaluate(rule, state, sample)
        assert disposition is Disposition.ACCEPTED
        got.extend(transitions)
        late_count = data.draw(st.integers(0, 2), label=f"late@{i}")
        for _ in range(late_count):
            back = data.draw(st.integers(0, 3600), label="seconds back")
            late = Sample(
                sample.timestamp - timedelta(seconds=back),
                data.draw(values, label="late value"),
                data.draw(qualities, label="late quality"),
            )
            result = evaluate(rule, state, late)
            assert result.state is state
            assert result.transitions == []
            assert result.disposition is (
                Disposition.DUPLICATE if back == 0 else Disposition.OUT_OF_ORDER
            )
    assert got == [t for _, t in expected]
    assert state == expected_state


# --- escalation ------------------------------------------------------------------------------


@given(
    condition=threshold_conditions(metric=Metric.VALUE),
    duration=seconds,
    repeat_count=st.integers(1, 4),
    steps=good_steps(max_size=60),
)
def test_escalation_is_monotone(
    condition: ThresholdCondition,
    duration: timedelta,
    repeat_count: int,
    steps: list[tuple[int, float, str]],
) -> None:
    """Within an alert severity only rises, each level is entered once, clear ends it."""
    rule = Rule("r1", "s1", condition, duration, repeat_count)
    _, events = feed(rule, make_samples(steps))
    assert_well_formed(rule, events)
    seen: list[Severity] = []
    for _, t in events:
        if isinstance(t, Raise):
            seen = [t.severity]
        elif isinstance(t, Escalate):
            assert t.to_severity not in seen
            seen.append(t.to_severity)
        assert seen == sorted(seen)
        if isinstance(t, Clear):
            seen = []


# --- stale -----------------------------------------------------------------------------------


@given(
    after=st.integers(1, 600),
    events=st.lists(st.tuples(st.booleans(), st.integers(0, 900)), max_size=40),
)
def test_stale_raises_only_after_silence_and_alternates(
    after: int, events: list[tuple[bool, int]]
) -> None:
    """Offline raises need `after` of silence; readings clear; never two raises in a row."""
    rule = Rule("r1", "s1", StaleCondition(timedelta(seconds=after)))
    state = initial_state(rule, watch_since=T0)
    now = T0
    active = False
    for is_reading, gap in events:
        now += timedelta(seconds=gap)
        if is_reading:
            state, transitions, disposition = evaluate(rule, state, Sample(now, 1.0))
            if disposition is Disposition.ACCEPTED:
                assert [type(t) for t in transitions] == ([Clear] if active else [])
                active = False
            else:
                assert transitions == []
        else:
            reference = state.last_ts or T0
            state, transitions = check_stale(rule, state, now)
            should_raise = not active and now - reference >= timedelta(seconds=after)
            assert [type(t) for t in transitions] == ([Raise] if should_raise else [])
            active = active or should_raise
        assert (state.active is not None) == active
