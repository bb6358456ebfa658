"""Pure tests of the rolling features, anomaly models, RUL estimates and the model registry."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import numpy as np
import pytest

from maintainpro.analytics.ml.anomaly import AnomalyModel, alarms, train
from maintainpro.analytics.ml.degradation_paths import candidates, crossing, fit_best
from maintainpro.analytics.ml.features import (
    FEATURES,
    MEMORY,
    cycle_deviation,
    cycle_profile,
    local_features,
    rolling_features,
    season_length,
)
from maintainpro.analytics.ml.registry import ModelRegistry, RegistryError, TamperedModel
from maintainpro.analytics.ml.rul import estimate_rul, learned_threshold

RNG = np.random.default_rng(3)
NOW = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)


def _normal(n: int, rng: np.random.Generator = RNG) -> np.ndarray:
    return 5.0 + 0.5 * np.sin(np.arange(n) / 20) + rng.normal(0, 0.1, n)


def _cyclic(n: int, rng: np.random.Generator, period: int = 120) -> np.ndarray:
    return 10.0 + 1.0 * np.sin(2 * np.pi * np.arange(n) / period) + rng.normal(0, 0.1, n)


def _rises(model: AnomalyModel, values: np.ndarray) -> list[int]:
    """Reading indices at which an alert is raised."""
    raised = alarms(model, values)
    return [
        i + model.window for i in range(raised.size) if raised[i] and (i == 0 or not raised[i - 1])
    ]


# --------------------------------------------------------------------------- features


def test_features_see_a_spike_and_not_the_noise() -> None:
    values = _normal(300)
    values[200] += 3.0
    rows = rolling_features(values, 60)
    assert rows.shape == (240, len(FEATURES))
    z = np.abs(rows[:, 0])
    assert z[200 - 60] > 10
    assert np.median(np.delete(z, 200 - 60)) < 2


def test_a_one_reading_spike_stays_visible_for_memory_readings_only() -> None:
    values = _normal(400)
    values[300] += 3.0
    peak = local_features(values, 60)[:, 0]
    at = 300 - 60
    typical = float(np.median(peak))
    assert all(peak[at + k] > 10 * typical for k in range(MEMORY))
    assert peak[at - 1] < 5 * typical


def test_local_features_of_a_stuck_sensor_have_no_residual() -> None:
    values = _normal(300)
    values[200:] = values[200]
    rms = local_features(values, 60)[:, 1]
    assert np.all(rms[200 - 60 + 40 :] < 1e-9)
    assert np.all(rms[: 200 - 60] > 0.01)


@pytest.mark.parametrize("period", [90, 120, 300])
def test_the_period_of_a_cycle_is_found(period: int) -> None:
    values = _cyclic(6000, np.random.default_rng(period), period)
    assert season_length(values, 600) == period
    assert season_length(np.random.default_rng(1).normal(0, 1, 6000), 600) == 0


def test_cycle_deviation_is_flat_on_the_cycle_and_shows_an_offset() -> None:
    rng = np.random.default_rng(5)
    profile = cycle_profile(_cyclic(6000, rng), 120)
    fresh = _cyclic(2000, rng)
    window = 359
    normal = cycle_deviation(fresh, window, profile)
    assert np.abs(normal).max() < 0.3  # the mean of 10 readings: noise sd 0.03
    shifted = fresh.copy()
    # 1.5: the phase slack (10 readings) can explain up to about 0.5 of an offset away on
    # this short, steep cycle; what is left must show.
    shifted[1500:] += 1.5
    deviation = cycle_deviation(shifted, window, profile)
    assert np.median(deviation[1520 - window : 1600 - window]) > 0.9


# --------------------------------------------------------------------------- anomalies


@pytest.mark.parametrize("kind", ["isolation_forest", "robust_z", "local_z"])
def test_models_alarm_on_an_injected_shift_only(kind: str) -> None:
    model = train(_normal(3000), kind)  # type: ignore[arg-type]
    assert not alarms(model, _normal(1000)).any()
    shifted = _normal(1000)
    shifted[900:910] += 2.0
    raised = alarms(model, shifted)
    w = model.window  # longer than 60 when the model found the sine's cycle
    assert raised[900 - w : 920 - w].any()
    assert not raised[: 900 - w].any()


@pytest.mark.parametrize("seed", range(4))
def test_pure_noise_gives_few_alarms(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    model = train(_cyclic(6000, rng))
    assert model.kind == "local_z"
    # 10,000 fresh normal readings: at most one alert (about one per 10,000 is the design).
    assert len(_rises(model, _cyclic(10_000, rng))) <= 1


def test_a_sensor_without_a_cycle_gets_no_profile_and_stays_quiet() -> None:
    rng = np.random.default_rng(13)
    model = train(20 + rng.normal(0, 0.5, 4000))
    assert model.profile is None
    assert model.window == 60
    assert len(_rises(model, 20 + rng.normal(0, 0.5, 10_000))) <= 1
    values = 20 + rng.normal(0, 0.5, 500)
    values[300] += 8.0  # a one-reading spike of 16 sigmas
    assert any(300 <= r <= 303 for r in _rises(model, values))


def test_a_stuck_sensor_is_caught_while_it_is_stuck() -> None:
    rng = np.random.default_rng(11)
    model = train(_cyclic(6000, rng))
    values = _cyclic(1500, rng)
    values[1000:1100] = values[1000]
    rises = _rises(model, values)
    assert any(1000 <= r < 1100 for r in rises)
    assert not any(r < 1000 for r in rises)


def test_a_slow_drift_under_a_cycle_is_caught_and_the_baseline_misses_it() -> None:
    rng = np.random.default_rng(12)
    training = _cyclic(6000, rng)
    new, baseline = train(training), train(training, "robust_z", feature_set=1)
    values = _cyclic(1600, rng)
    # Up 1.5 (15 noise sigmas, 0.75 of the cycle's swing) over 200 readings, then back.
    values[1000:1400] += 1.5 * np.concatenate([np.linspace(0, 1, 200), np.linspace(1, 0, 200)])
    assert any(1000 <= r <= 1400 for r in _rises(new, values))
    assert not any(1000 <= r <= 1400 for r in _rises(baseline, values))


def test_a_model_saved_before_feature_set_2_still_loads_and_scores_the_same(
    tmp_path: Path,
) -> None:
    old = train(_normal(3000), "isolation_forest", feature_set=1)
    expected = old.score(_normal(500, np.random.default_rng(8)))
    # An old pickle has none of the fields added since: drop them as such a file would.
    for name in ("feature_set", "noise_scale", "short_window", "profile"):
        old.__dict__.pop(name, None)
    for name in ("feature_center", "feature_scale", "scored"):
        old.__dict__.pop(name, None)
    registry = ModelRegistry(tmp_path)
    window = (NOW - dt.timedelta(days=7), NOW)
    record = registry.register("sensor:1", old.kind, old, window=window, features=[], metrics={})
    loaded = registry.load(registry.get(record.id))
    assert isinstance(loaded, AnomalyModel)
    assert loaded.feature_set == 1
    assert loaded.feature_matrix(_normal(200)).shape[1] == len(FEATURES) + 1
    assert np.allclose(loaded.score(_normal(500, np.random.default_rng(8))), expected)


# --------------------------------------------------------------------------- RUL


@pytest.mark.parametrize("method", ["auto", "linear"])
def test_an_exact_linear_trend_gives_the_exact_crossing(method: str) -> None:
    t = np.arange(0, 12, 1 / 24)
    estimate = estimate_rul(t, 4 + 0.3 * t, 10.0, method=method)  # type: ignore[arg-type]
    assert estimate is not None
    true_rul = 20 - t[-1]
    assert estimate.rul_days == pytest.approx(true_rul, abs=1e-6)
    assert estimate.low_days == pytest.approx(true_rul, abs=1e-6)
    assert estimate.high_days == pytest.approx(true_rul, abs=1e-6)
    assert estimate.slope_per_day == pytest.approx(0.3)
    assert estimate.model == "linear"


def test_a_falling_indicator_crosses_a_lower_limit_exactly() -> None:
    t = np.arange(0, 5, 1 / 24)
    estimate = estimate_rul(t, 9 - 0.5 * t, 2.0, "below")
    assert estimate is not None
    assert estimate.rul_days == pytest.approx(14 - t[-1], abs=1e-6)


def test_an_exact_exponential_on_the_grid_gives_the_exact_crossing() -> None:
    tau = np.arange(-7, 0 + 1e-9, 1 / 24)
    cands = candidates(tau, ("exponential",))
    rate = cands[len(cands) // 2].shape
    y = 2.0 + 0.5 * np.exp(rate * tau)
    fit = fit_best(cands, y[:, None])
    best = cands[int(fit.index[0])]
    assert best.shape == rate
    assert crossing(best, fit.coef[0], 7.0) == pytest.approx(math.log(5.0 / 0.5) / rate, rel=1e-6)


def _exponential_wear(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, float]:
    fail = rng.uniform(25, 40)
    t = np.arange(0, fail - 5, 1 / 24)
    curvature = rng.uniform(2.0, 3.5)
    u = t / fail
    health = 2 + 5 * np.expm1(curvature * u) / np.expm1(curvature)
    return t, health + rng.normal(0, 0.15, t.size), fail - t[-1]


def test_noisy_exponential_wear_lands_in_the_80_percent_band_most_of_the_time() -> None:
    covered, covered_linear, errors = 0, 0, []
    seeds = range(25)
    for seed in seeds:
        t, y, truth = _exponential_wear(np.random.default_rng(1000 + seed))
        estimate = estimate_rul(t, y, 7.0, coverage=0.8, seed=seed)
        linear = estimate_rul(t, y, 7.0, coverage=0.8, seed=seed, method="linear", span_days=7)
        assert estimate is not None
        assert linear is not None
        high = estimate.high_days if estimate.high_days is not None else math.inf
        covered += estimate.low_days <= truth <= high
        linear_high = linear.high_days if linear.high_days is not None else math.inf
        covered_linear += linear.low_days <= truth <= linear_high
        errors.append(abs(estimate.rul_days - truth))
    # Nominal 80 %: with 25 draws, 14 or fewer would be a clear sign of a miscalibrated band.
    assert covered >= 15
    assert covered > covered_linear
    assert float(np.median(errors)) < 1.5


def test_a_flat_noisy_indicator_is_rarely_read_as_failing_soon() -> None:
    rng = np.random.default_rng(21)
    t = np.arange(-14, 0, 1 / 24)
    soon = 0
    for _ in range(30):
        # AR(1) noise: hourly sensor noise is correlated, which invites spurious bends.
        noise = np.empty(t.size)
        noise[0] = rng.normal(0, 0.2)
        for k in range(1, t.size):
            noise[k] = 0.5 * noise[k - 1] + rng.normal(0, 0.2 * math.sqrt(0.75))
        estimate = estimate_rul(t, 50 + noise, 55.0, now_days=0.0, resamples=50)
        soon += estimate is not None and estimate.rul_days < 30
    assert soon <= 2


def test_no_rul_without_a_trend_toward_the_threshold() -> None:
    t = np.arange(0, 10, 1 / 24)
    assert estimate_rul(t, 4 + RNG.normal(0, 0.1, t.size) - 0.2 * t, 10.0) is None


def test_a_bad_coverage_is_refused() -> None:
    t = np.arange(0, 10, 1 / 24)
    with pytest.raises(ValueError, match="coverage"):
        estimate_rul(t, 4 + 0.3 * t, 10.0, coverage=1.5)


def test_failure_level_is_learned_from_history_only_with_enough_failures() -> None:
    assert learned_threshold([9.0]) is None
    assert learned_threshold([9.0, 11.0, 10.0]) == 10.0


# --------------------------------------------------------------------------- registry


def test_registry_promote_rollback_and_tampered_file_refused(tmp_path: Path) -> None:
    registry = ModelRegistry(tmp_path)
    window = (NOW - dt.timedelta(days=7), NOW)
    first = registry.register(
        "sensor:1", "robust_z", {"v": 1}, window=window, features=[], metrics={"a": 1.0}
    )
    second = registry.register(
        "sensor:1", "robust_z", {"v": 2}, window=window, features=[], metrics={}
    )
    assert (first.version, second.version) == (1, 2)
    live = registry.live("sensor:1")
    assert live is not None
    assert live.id == second.id
    assert registry.rollback("sensor:1").id == first.id
    assert registry.load(registry.get(first.id)) == {"v": 1}
    registry.promote(second.id)
    with pytest.raises(RegistryError):
        registry.rollback("sensor:2")
    path = tmp_path / second.file
    path.write_bytes(path.read_bytes() + b"\x00")
    with pytest.raises(TamperedModel):
        registry.load(registry.get(second.id))
