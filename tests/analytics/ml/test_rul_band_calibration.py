"""The calibrated RUL band: about nominal coverage per horizon on simulated assets with seeds
of their own (neither the calibration's nor the bench's), without absurd widths."""

from __future__ import annotations

import math

import numpy as np
import pytest

from maintainpro.analytics.ml.rul import HORIZON_BUCKETS, estimate_rul, scaled_band
from maintainpro.analytics.ml.rul_calibration import (
    BAND_SCALE,
    band_scale_for,
    band_score,
    conformal_factor,
    fit_band_scale,
)
from maintainpro.analytics.ml.simulated_wear import FAILURE_LEVEL, WEAR_SHAPES, simulate_asset
from maintainpro.analytics.ml.training import rul_method_params

HORIZONS = (2.0, 6.0, 12.0)  # days before failure: buckets <= 3, 4-7 and 8-14 d
ASSETS = 60


@pytest.fixture(scope="module")
def bands() -> dict[float, list[tuple[float, float, float, float, float]]]:
    """Per horizon: (estimate, raw band covered, calibrated low, calibrated high, truth)."""
    rng = np.random.default_rng(2024)
    out: dict[float, list[tuple[float, float, float, float, float]]] = {h: [] for h in HORIZONS}
    factors = band_scale_for(0.8)
    assert factors is not None
    for n in range(ASSETS):
        asset = simulate_asset(WEAR_SHAPES[n % 3], rng)
        for horizon in HORIZONS:
            now = asset.fail_day - horizon
            seen = asset.t <= now
            raw = estimate_rul(
                asset.t[seen],
                asset.y[seen],
                FAILURE_LEVEL,
                now_days=now,
                seed=7000 + n,
                coverage=0.8,
            )
            if raw is None:
                out[horizon].append((math.nan, math.nan, math.nan, math.nan, math.nan))
                continue
            high = math.inf if raw.high_days is None else raw.high_days
            low, top = scaled_band(raw.rul_days, raw.low_days, high, factors)
            raw_covered = float(raw.low_days <= horizon <= high)
            out[horizon].append((raw.rul_days, raw_covered, low, top, horizon))
    return out


def _coverage(rows: list[tuple[float, float, float, float, float]]) -> float:
    return sum(1 for r in rows if r[2] <= r[4] <= r[3]) / len(rows)


def test_coverage_is_near_nominal_at_every_horizon(
    bands: dict[float, list[tuple[float, float, float, float, float]]],
) -> None:
    for horizon, rows in bands.items():
        # Nominal 80 %; with 60 assets a calibrated band lands in 65-95 % nearly always.
        assert 0.65 <= _coverage(rows) <= 0.95, horizon
    # Far out the bootstrap band alone was clearly too narrow; the calibrated one is not.
    far = bands[12.0]
    raw = sum(r[1] for r in far if math.isfinite(r[0])) / len(far)
    assert _coverage(far) > raw


def test_calibrated_band_width_stays_useful(
    bands: dict[float, list[tuple[float, float, float, float, float]]],
) -> None:
    for horizon, rows in bands.items():
        widths = [r[3] - r[2] for r in rows if math.isfinite(r[3])]
        # Half the bands no wider than the time left: a band that says "some time" is useless.
        assert float(np.median(widths)) <= horizon, horizon
        assert all(r[2] >= 0.0 for r in rows if math.isfinite(r[2]))


def test_estimate_with_band_scale_is_the_scaled_bootstrap_band() -> None:
    rng = np.random.default_rng(5)
    asset = simulate_asset("linear", rng)
    now = asset.fail_day - 10
    seen = asset.t <= now
    args = (asset.t[seen], asset.y[seen], FAILURE_LEVEL)
    raw = estimate_rul(*args, now_days=now, coverage=0.8)
    factors = (1.0, 1.5, 2.0, 3.0)
    scaled = estimate_rul(*args, now_days=now, coverage=0.8, band_scale=factors)
    assert raw is not None
    assert scaled is not None
    assert raw.high_days is not None
    assert scaled.rul_days == raw.rul_days
    assert (scaled.low_days, scaled.high_days) == pytest.approx(
        scaled_band(raw.rul_days, raw.low_days, raw.high_days, factors)
    )
    with pytest.raises(ValueError, match="band_scale"):
        estimate_rul(*args, now_days=now, band_scale=(1.0, 2.0))


def test_conformal_factor_and_scores() -> None:
    # The truth 3 days below an estimate of 10 with its low end at 8: 1.5 half-widths.
    assert band_score(10.0, 8.0, 11.0, 7.0) == pytest.approx(1.5)
    assert band_score(10.0, 8.0, 11.0, 12.0) == pytest.approx(2.0)
    assert band_score(10.0, 8.0, None, 50.0) == 0.0
    scores = [i / 100 for i in range(99, 0, -1)]  # 99 scores: rank ceil(100 * 0.8) = 80
    assert conformal_factor(scores, 0.8) == pytest.approx(0.80)
    assert conformal_factor(scores, 0.995) == 10.0  # beyond the last score: the cap
    assert conformal_factor([0.5] * 5, 0.8) == 1.0  # too few: the bootstrap band is kept


def test_calibration_is_reproducible_and_stored_with_the_method() -> None:
    first = fit_band_scale(0.8, assets=6, per_asset=2)
    assert first == fit_band_scale(0.8, assets=6, per_asset=2)
    assert len(first) == len(HORIZON_BUCKETS) + 1
    params = rul_method_params()
    assert params["band_scale"] == {k: list(v) for k, v in BAND_SCALE.items()}
    assert "seed" in params["band_scale_fit"]
