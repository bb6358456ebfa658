"""Split-conformal calibration of the RUL band, per bucket of the estimated RUL.

The bootstrap band of `rul.estimate_rul` is too narrow far from failure (it carries the noise
and the doubt about the path, not wear that has yet to speed up) and a little wide near it.
On simulated degradation runs (`simulated_wear`, seeds of their own, never the evaluation's),
each estimate's band gets a score: how many times its own half-width (below the estimate if the
truth is below, above if above) the true failure time lies from the estimate. Per horizon
bucket (of the true time to failure) the factor is the conformal quantile of those scores, the
ceil((n + 1) · coverage)-th smallest; a new band is scaled by the factor of its estimate's
bucket, so that it covers the truth with about the nominal probability at each horizon, for
assets like the simulated ones (estimates mostly land in their truth's bucket; where they do
not, the guarantee is approximate).

`BAND_SCALE` is the table this code ships; `rul_method_params` (training.py) stores it in the
registry version of target "rul", so every estimate can be traced to the factors it used.
Regenerate it with `.venv/bin/python bench/ml_rul_calibration.py`.
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np

from maintainpro.analytics.ml.rul import HORIZON_BUCKETS, estimate_rul, horizon_bucket
from maintainpro.analytics.ml.simulated_wear import FAILURE_LEVEL, WEAR_SHAPES, simulate_asset

# Seeds of the calibration runs: the evaluation uses rng seeds 42/43 and 7/8, signal and
# bootstrap seeds 0-99 and 100,000-100,099.
CALIBRATION_SEED: Final = 20_261_128
BOOTSTRAP_SEED_OFFSET: Final = 900_000
CALIBRATION_ASSETS: Final = 300
# Days before failure at which each calibration asset is estimated, drawn uniformly.
DAYS_BEFORE_RANGE: Final = (0.5, 24.0)
ESTIMATES_PER_ASSET: Final = 6
# A bucket with fewer calibration scores than this keeps the bootstrap band (factor 1).
MIN_SCORES: Final = 20
# No band is stretched further than this, however rare its bucket's misses.
MAX_FACTOR: Final = 10.0
# Half-widths below this (days) count as this, so a zero-width side gives a finite score.
MIN_HALF_WIDTH: Final = 0.01

# Fitted by `fit_band_scale()` with the defaults above (see bench/ml_rul_calibration.py):
# per nominal coverage, one factor per HORIZON_BUCKETS bucket (<= 3, <= 7, <= 14, > 14 days).
BAND_SCALE: Final[dict[str, tuple[float, ...]]] = {
    "0.8": (1.38, 1.147, 3.425, 5.734),
    "0.9": (1.321, 1.203, 7.186, 5.986),
}


def band_score(rul: float, low: float, high: float | None, truth: float) -> float:
    """The factor each side of the band needs to be stretched by to just cover `truth`."""
    if truth < rul:
        return (rul - truth) / max(rul - low, MIN_HALF_WIDTH)
    if high is None:
        return 0.0  # an open band covers everything above the estimate
    return (truth - rul) / max(high - rul, MIN_HALF_WIDTH)


def conformal_factor(scores: list[float], coverage: float) -> float:
    """The ceil((n + 1) * coverage)-th smallest score (1 when there are too few)."""
    if len(scores) < MIN_SCORES:
        return 1.0
    rank = math.ceil((len(scores) + 1) * coverage)
    if rank > len(scores):
        return MAX_FACTOR
    return min(float(sorted(scores)[rank - 1]), MAX_FACTOR)


def calibration_scores(
    coverage: float,
    *,
    assets: int = CALIBRATION_ASSETS,
    seed: int = CALIBRATION_SEED,
    per_asset: int = ESTIMATES_PER_ASSET,
) -> list[list[float]]:
    """Per HORIZON_BUCKETS bucket, the band scores of simulated estimates at `coverage`."""
    rng = np.random.default_rng(seed)
    scores: list[list[float]] = [[] for _ in range(len(HORIZON_BUCKETS) + 1)]
    for n in range(assets):
        asset = simulate_asset(WEAR_SHAPES[n % len(WEAR_SHAPES)], rng)
        for days_before in rng.uniform(*DAYS_BEFORE_RANGE, per_asset):
            now = asset.fail_day - float(days_before)
            seen = asset.t <= now
            estimate = estimate_rul(
                asset.t[seen],
                asset.y[seen],
                FAILURE_LEVEL,
                now_days=now,
                seed=BOOTSTRAP_SEED_OFFSET + n,
                coverage=coverage,
            )
            if estimate is None:
                continue  # no band to scale
            score = band_score(
                estimate.rul_days, estimate.low_days, estimate.high_days, float(days_before)
            )
            # Bucketed by the true time to failure, so that the band covers about `coverage` of
            # the failures at each horizon; a new estimate then takes its own bucket's factor.
            # (Bucketing by the estimate instead let the few early estimates that said "2 days"
            # two weeks out set the near bucket's factor: 95 % coverage at 1-3 days.)
            scores[horizon_bucket(float(days_before))].append(score)
    return scores


def fit_band_scale(
    coverage: float,
    *,
    assets: int = CALIBRATION_ASSETS,
    seed: int = CALIBRATION_SEED,
    per_asset: int = ESTIMATES_PER_ASSET,
) -> tuple[float, ...]:
    """The per-bucket factors that calibrate the band at `coverage` on simulated runs."""
    scores = calibration_scores(coverage, assets=assets, seed=seed, per_asset=per_asset)
    return tuple(round(conformal_factor(bucket, coverage), 3) for bucket in scores)


def band_scale_for(coverage: float) -> tuple[float, ...] | None:
    """The shipped factors for a nominal coverage, if it was calibrated."""
    return BAND_SCALE.get(f"{coverage:g}")
