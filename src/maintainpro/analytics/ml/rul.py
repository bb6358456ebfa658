"""Remaining useful life: a degradation trend on a health indicator, extrapolated to the level
at which the asset fails, with a bootstrap band.

The trend is a least-squares line over the most recent `span_days` of hourly values. Its
uncertainty comes from a moving-block bootstrap of the residuals (blocks keep the hour-to-hour
correlation of real sensor noise, which an ordinary bootstrap would ignore and so draw too
narrow a band); each resample is refitted and extrapolated, and the band is the central
`coverage` share of those crossing times. The failure level is learned from the asset's
failure history when it has some (the median level seen just before past failures), else the
configured critical level of its alert rule.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

import numpy as np

from maintainpro.analytics.ml.features import Array

Direction = Literal["above", "below"]
SPAN_DAYS: Final = 7.0
MIN_POINTS: Final = 24
BOOTSTRAP: Final = 300
BLOCK: Final = 12
COVERAGE: Final = 0.9
HORIZON_DAYS: Final = 365.0
# Fewer past failures than this and their levels say too little; the configured level is used.
MIN_FAILURES: Final = 2


@dataclass(frozen=True)
class RulEstimate:
    """Days from `now` to the predicted failure, with the band's low and high ends.

    `high_days` is None when some resamples never reach the failure level within the horizon.
    """

    rul_days: float
    low_days: float
    high_days: float | None
    slope_per_day: float
    level: float
    threshold: float
    points: int


def _fit(t: Array, y: Array) -> tuple[float, float]:
    slope, intercept = np.polyfit(t, y, 1)
    return float(slope), float(intercept)


def _crossing(slope: float, intercept: float, threshold: float, now: float) -> float:
    """Days after now at which the line reaches the threshold (inf if it never does)."""
    at_now = intercept + slope * now
    if at_now >= threshold:
        return 0.0
    if slope <= 0:
        return math.inf
    return (threshold - at_now) / slope


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
) -> RulEstimate | None:
    """The RUL of a health indicator heading for `threshold`, or None with no usable trend."""
    t = np.asarray(times_days, dtype=np.float64)
    y = np.asarray(values, dtype=np.float64)
    keep = np.isfinite(t) & np.isfinite(y)
    t, y = t[keep], y[keep]
    if t.size < MIN_POINTS:
        return None
    now = float(t.max()) if now_days is None else now_days
    recent = t >= now - span_days
    t, y = t[recent], y[recent]
    if t.size < MIN_POINTS:
        return None
    sign = 1.0 if direction == "above" else -1.0
    y, limit = sign * y, sign * threshold
    slope, intercept = _fit(t, y)
    rul = _crossing(slope, intercept, limit, now)
    if rul > HORIZON_DAYS:
        return None
    fitted = intercept + slope * t
    residuals = y - fitted
    rng = np.random.default_rng(seed)
    block = min(BLOCK, t.size)
    starts_max = t.size - block + 1
    blocks_needed = math.ceil(t.size / block)
    crossings = np.empty(resamples)
    for i in range(resamples):
        starts = rng.integers(0, starts_max, blocks_needed)
        drawn = np.concatenate([residuals[s : s + block] for s in starts])[: t.size]
        crossings[i] = _crossing(*_fit(t, fitted + drawn), limit, now)
    tail = (1.0 - coverage) / 2
    low = float(np.quantile(crossings, tail))
    high = float(np.quantile(crossings, 1.0 - tail))
    return RulEstimate(
        rul_days=rul,
        low_days=min(low, rul),
        high_days=max(high, rul) if math.isfinite(high) and high <= HORIZON_DAYS else None,
        slope_per_day=sign * slope,
        level=sign * (intercept + slope * now),
        threshold=threshold,
        points=int(t.size),
    )


def learned_threshold(levels_before_failures: Sequence[float]) -> float | None:
    """The failure level learned from the indicator just before past failures, if enough."""
    levels = [v for v in levels_before_failures if math.isfinite(v)]
    if len(levels) < MIN_FAILURES:
        return None
    return statistics.median(levels)
