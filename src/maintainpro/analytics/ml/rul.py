"""Remaining useful life: a degradation path fitted to a health indicator, extrapolated to
the level at which the asset fails, with a bootstrap band.

Over the most recent `span_days` of hourly values, four path families are fitted by least
squares (see `degradation_paths`): a straight line, an exponential (accelerating wear), a line
that bends at a break (wear that started or sped up inside the window) and a line with a jump
and a bend (a shock). The path with the lowest BIC is extrapolated to the failure level.

The band comes from a moving-block bootstrap of the chosen path's residuals: blocks keep the
hour-to-hour correlation of real sensor noise, which an ordinary bootstrap would ignore and so
draw too narrow a band. Every resample goes through the whole procedure again, the choice of
path included, so the band carries the doubt about which path is right as well as the noise;
the band is the central `coverage` share of the resamples' crossing times. `method="linear"`
keeps the earlier straight-line model (for comparison).

The bootstrap band carries the noise and the doubt about the path, not a change of wear still
to come, so far from failure it is too narrow. `band_scale` (one factor per bucket of the
estimated RUL, see `HORIZON_BUCKETS`, fitted by split-conformal calibration in
`rul_calibration`) stretches or shrinks each side of the band about the estimate.

The failure level is learned from the asset's failure history when it has some (the median
level seen just before past failures), else the configured critical level of its alert rule.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

import numpy as np

from maintainpro.analytics.ml.degradation_paths import (
    PATH_KINDS,
    PathKind,
    candidates,
    crossing,
    effective_size,
    fit_best,
    fitted_values,
    level_and_rate,
)
from maintainpro.analytics.ml.features import Array

Direction = Literal["above", "below"]
Method = Literal["auto", "linear"]
SPAN_DAYS: Final = 14.0
MIN_POINTS: Final = 24
BOOTSTRAP: Final = 300
BLOCK: Final = 12
COVERAGE: Final = 0.9
HORIZON_DAYS: Final = 365.0
# Fewer past failures than this and their levels say too little; the configured level is used.
MIN_FAILURES: Final = 2
# Upper ends (days of estimated RUL) of the buckets a calibrated band has one factor for each;
# the last factor is for estimates beyond the last end.
HORIZON_BUCKETS: Final = (3.0, 7.0, 14.0)


@dataclass(frozen=True)
class RulEstimate:
    """Days from `now` to the predicted failure, with the band's low and high ends.

    `high_days` is None when some resamples never reach the failure level within the horizon.
    `model` names the degradation path that was extrapolated.
    """

    rul_days: float
    low_days: float
    high_days: float | None
    slope_per_day: float
    level: float
    threshold: float
    points: int
    model: str = "linear"


def _block_resamples(residuals: Array, count: int, rng: np.random.Generator) -> Array:
    """`count` moving-block resamples of the residuals, as the columns of an n x count matrix."""
    n = residuals.size
    block = min(BLOCK, n)
    blocks_needed = math.ceil(n / block)
    starts = rng.integers(0, n - block + 1, (count, blocks_needed))
    index = (starts[:, :, None] + np.arange(block)[None, None, :]).reshape(count, -1)[:, :n]
    drawn: Array = residuals[index].T
    return drawn


def estimate_rul(
    times_days: Sequence[float] | Array,
    values: Sequence[float] | Array,
    threshold: float,
    direction: Direction = "above",
    *,
    now_days: float | None = None,
    span_days: float = SPAN_DAYS,
    coverage: float = COVERAGE,
    resamples: int = BOOTSTRAP,
    seed: int = 0,
    method: Method = "auto",
    band_scale: Sequence[float] | None = None,
) -> RulEstimate | None:
    """The RUL of a health indicator heading for `threshold`, or None with no usable trend."""
    if not 0.0 < coverage < 1.0:
        raise ValueError("coverage must be between 0 and 1")
    if band_scale is not None:
        _check_scale(band_scale)
    t = np.asarray(times_days, dtype=np.float64)
    y = np.asarray(values, dtype=np.float64)
    keep = np.isfinite(t) & np.isfinite(y)
    t, y = t[keep], y[keep]
    if t.size < MIN_POINTS:
        return None
    now = float(t.max()) if now_days is None else now_days
    recent = (t >= now - span_days) & (t <= now)
    t, y = t[recent], y[recent]
    if t.size < MIN_POINTS:
        return None
    sign = 1.0 if direction == "above" else -1.0
    y, limit = sign * y, sign * threshold
    kinds: tuple[PathKind, ...] = ("linear",) if method == "linear" else PATH_KINDS
    cands = candidates(t - now, kinds)
    n_eff = effective_size(cands, y)
    fit = fit_best(cands, y[:, None], n_eff)
    best = cands[int(fit.index[0])]
    coef = fit.coef[0]
    rul = crossing(best, coef, limit)
    if rul > HORIZON_DAYS:
        return None
    fitted = fitted_values(best, coef)
    residuals = y - fitted
    # Least squares leaves residuals smaller than the noise by the parameters it spent.
    residuals *= math.sqrt(t.size / max(t.size - best.params, 1))
    rng = np.random.default_rng(seed)
    drawn = fitted[:, None] + _block_resamples(residuals, resamples, rng)
    refits = fit_best(cands, drawn, n_eff)
    crossings = np.array(
        [crossing(cands[int(i)], c, limit) for i, c in zip(refits.index, refits.coef, strict=True)]
    )
    tail = (1.0 - coverage) / 2
    # Quantiles that are sample values: interpolating toward an infinite crossing gives nan.
    low = float(np.quantile(crossings, tail, method="inverted_cdf"))
    high = float(np.quantile(crossings, 1.0 - tail, method="inverted_cdf"))
    level, rate = level_and_rate(best, coef)
    low, high = min(low, rul), max(high, rul)
    if band_scale is not None:
        low, high = scaled_band(rul, low, high, band_scale)
    return RulEstimate(
        rul_days=rul,
        low_days=low,
        high_days=high if math.isfinite(high) and high <= HORIZON_DAYS else None,
        slope_per_day=sign * rate,
        level=sign * level,
        threshold=threshold,
        points=int(t.size),
        model=best.kind,
    )


def horizon_bucket(rul_days: float) -> int:
    """The index of the HORIZON_BUCKETS bucket (len of it: beyond the last) of an estimate."""
    return next(
        (i for i, end in enumerate(HORIZON_BUCKETS) if rul_days <= end), len(HORIZON_BUCKETS)
    )


def scaled_band(
    rul_days: float, low_days: float, high_days: float, band_scale: Sequence[float]
) -> tuple[float, float]:
    """The band with each side's distance from the estimate times its bucket's factor.

    The low end never goes below now (0); an open high end (inf) stays open.
    """
    factor = band_scale[horizon_bucket(rul_days)]
    low = max(rul_days - factor * (rul_days - low_days), 0.0)
    high = rul_days + factor * (high_days - rul_days) if math.isfinite(high_days) else high_days
    return low, high


def _check_scale(band_scale: Sequence[float]) -> None:
    if len(band_scale) != len(HORIZON_BUCKETS) + 1:
        raise ValueError(f"band_scale needs {len(HORIZON_BUCKETS) + 1} factors")
    if not all(math.isfinite(f) and f > 0 for f in band_scale):
        raise ValueError("band_scale factors must be positive numbers")


def learned_threshold(levels_before_failures: Sequence[float]) -> float | None:
    """The failure level learned from the indicator just before past failures, if enough."""
    levels = [v for v in levels_before_failures if math.isfinite(v)]
    if len(levels) < MIN_FAILURES:
        return None
    return statistics.median(levels)
