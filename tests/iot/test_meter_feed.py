"""Sensor-fed meters: runtime hours, cycle counts and totalisers from readings (pure)."""

from __future__ import annotations

import itertools
import json
import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from maintainpro.iot.alerts import MeterSourceKind
from maintainpro.iot.meter_feed import HOUR_MS, FeedSpec, FeedState, advance

RUNTIME = FeedSpec(MeterSourceKind.RUNTIME, threshold=2.0, max_gap_s=300)
CYCLES = FeedSpec(MeterSourceKind.CYCLES, threshold=2.0, max_gap_s=300)
FLOW = FeedSpec(MeterSourceKind.TOTALISER, factor=1.0, max_gap_s=300)
SPECS = [RUNTIME, CYCLES, FLOW]


def _every_minute(values: list[float], start_ms: int = 0) -> list[tuple[int, float]]:
    return [(start_ms + i * 60_000, v) for i, v in enumerate(values)]


def test_runtime_counts_time_above_the_threshold_only() -> None:
    # On for 3 minutes (readings 0..3 above), off for 2, on for 1.
    points = _every_minute([5.0, 5.0, 5.0, 0.5, 0.5, 5.0, 5.0])
    result = advance(RUNTIME, FeedState(), points)
    assert result.increment == pytest.approx(4 / 60)
    assert result.state.last_ts == 6 * 60_000


def test_cycles_count_rising_edges_through_the_threshold() -> None:
    points = _every_minute([0.0, 3.0, 3.0, 1.0, 2.0, 2.5, 0.0, 9.0])
    # 2.0 is not above 2.0: the edges are 0->3, 2->2.5 and 0->9.
    assert advance(CYCLES, FeedState(), points).increment == 3


def test_a_totaliser_integrates_with_the_trapezoid_rule_times_the_factor() -> None:
    spec = FeedSpec(MeterSourceKind.TOTALISER, factor=0.5, max_gap_s=3600)
    # 0 -> 60 m3/h over one hour is 30 m3; halved by the factor.
    result = advance(spec, FeedState(), [(0, 0.0), (HOUR_MS, 60.0)])
    assert result.increment == pytest.approx(15.0)


def test_gaps_longer_than_the_limit_are_not_counted() -> None:
    points = [(0, 10.0), (60_000, 10.0), (60_000 + 301_000, 10.0), (60_000 + 361_000, 10.0)]
    assert advance(RUNTIME, FeedState(), points).increment == pytest.approx(2 / 60)
    assert advance(FLOW, FeedState(), points).increment == pytest.approx(10.0 * 2 / 60)


def test_a_restart_ignores_readings_already_counted_and_keeps_counting() -> None:
    first = advance(RUNTIME, FeedState(), _every_minute([5.0] * 11))
    stored = json.loads(json.dumps(first.state.to_json()))
    again = advance(RUNTIME, FeedState.from_json(stored), _every_minute([5.0] * 11))
    assert again.increment == 0
    assert again.counted == 0
    later = advance(RUNTIME, FeedState.from_json(stored), _every_minute([5.0] * 6, 10 * 60_000))
    assert later.increment == pytest.approx(5 / 60)


def test_bad_values_and_redelivered_timestamps_are_ignored() -> None:
    points = [(0, 5.0), (60_000, math.nan), (60_000, 5.0), (60_000, 0.0), (120_000, 5.0)]
    assert advance(RUNTIME, FeedState(), points).increment == pytest.approx(2 / 60)


def test_an_empty_state_is_a_fresh_start() -> None:
    assert FeedState.from_json({}) == FeedState()
    assert FeedState.from_json(None) == FeedState()


# --------------------------------------------------------------------------- properties

values = st.floats(min_value=-10, max_value=10, allow_nan=False)
streams = st.lists(
    st.tuples(st.integers(min_value=1, max_value=600_000), values), min_size=0, max_size=60
).map(
    # Strictly increasing timestamps from positive steps.
    lambda steps: [(sum(s for s, _ in steps[: i + 1]), v) for i, (_, v) in enumerate(steps)]
)
specs = st.sampled_from(SPECS)


def _total(spec: FeedSpec, parts: list[list[tuple[int, float]]]) -> tuple[float, FeedState]:
    state = FeedState()
    total = 0.0
    for part in parts:
        result = advance(spec, state, part)
        # Round-trip through JSON as the database does.
        state = FeedState.from_json(json.loads(json.dumps(result.state.to_json())))
        total += result.increment
    return total, state


@settings(max_examples=200, deadline=None)
@given(spec=specs, stream=streams, data=st.data())
def test_splitting_a_stream_anywhere_and_resuming_gives_the_same_total(
    spec: FeedSpec, stream: list[tuple[int, float]], data: st.DataObject
) -> None:
    cuts = sorted(data.draw(st.lists(st.integers(min_value=0, max_value=len(stream)), max_size=5)))
    bounds = [0, *cuts, len(stream)]
    parts = [stream[a:b] for a, b in itertools.pairwise(bounds)]
    whole, whole_state = _total(spec, [stream])
    split, split_state = _total(spec, parts)
    assert split == pytest.approx(whole, rel=1e-9, abs=1e-9)
    assert split_state == whole_state


@settings(max_examples=200, deadline=None)
@given(spec=specs, stream=streams, data=st.data())
def test_overlapping_redeliveries_never_count_twice(
    spec: FeedSpec, stream: list[tuple[int, float]], data: st.DataObject
) -> None:
    cut = data.draw(st.integers(min_value=0, max_value=len(stream)))
    back = data.draw(st.integers(min_value=0, max_value=cut))
    # The second batch repeats readings the first already counted (an MQTT redelivery).
    total, _ = _total(spec, [stream[:cut], stream[back:]])
    whole, _ = _total(spec, [stream])
    assert total == pytest.approx(whole, rel=1e-9, abs=1e-9)


@settings(max_examples=200, deadline=None)
@given(stream=streams, shuffled=st.randoms())
def test_order_within_a_batch_does_not_matter(
    stream: list[tuple[int, float]], shuffled: random.Random
) -> None:
    mixed = list(stream)
    shuffled.shuffle(mixed)
    for spec in SPECS:
        assert advance(spec, FeedState(), mixed) == advance(spec, FeedState(), stream)


@settings(max_examples=200, deadline=None)
@given(stream=streams)
def test_runtime_never_exceeds_the_elapsed_time(stream: list[tuple[int, float]]) -> None:
    hours = advance(RUNTIME, FeedState(), stream).increment
    elapsed = (stream[-1][0] - stream[0][0]) / HOUR_MS if stream else 0.0
    assert 0.0 <= hours <= elapsed + 1e-12


@settings(max_examples=200, deadline=None)
@given(stream=streams)
def test_cycles_never_exceed_half_the_threshold_crossings(stream: list[tuple[int, float]]) -> None:
    above = [v > CYCLES.threshold for _, v in stream]
    crossings = sum(a != b for a, b in itertools.pairwise(above))
    cycles = advance(CYCLES, FeedState(), stream).increment
    assert cycles == int(cycles)
    assert cycles <= (crossings + 1) // 2


@settings(max_examples=100, deadline=None)
@given(
    level=st.floats(min_value=0, max_value=100),
    steps=st.lists(st.integers(min_value=1, max_value=300_000), min_size=1, max_size=50),
)
def test_a_constant_flow_totalises_to_flow_times_time(level: float, steps: list[int]) -> None:
    stream = [(0, level)] + [(sum(steps[: i + 1]), level) for i in range(len(steps))]
    volume = advance(FLOW, FeedState(), stream).increment
    assert volume == pytest.approx(level * sum(steps) / HOUR_MS, rel=1e-9, abs=1e-9)
