"""Rolling features of a sensor's readings, the same in training and in live scoring.

Every feature of a point is computed from that point and the `window` readings before it, so
a live scorer holding the last `window` readings of a sensor reproduces the training features
exactly. Scales are robust (median and MAD) so the anomalies being looked for do not inflate
the yardstick they are measured with.
"""

from __future__ import annotations

from typing import Final

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import NDArray

FEATURES: Final = ("robust_z", "step_z", "spread_ratio", "slope_z")
# MAD -> standard deviation of a normal distribution.
MAD_SCALE: Final = 1.4826
# The shortest window over which local spread and slope are taken.
SHORT: Final = 5
# A floor under scales, relative to the level, so a perfectly flat signal does not divide by 0.
EPS: Final = 1e-9

Array = NDArray[np.float64]


def robust_scale(values: Array) -> float:
    """MAD-based standard deviation of the values (never zero)."""
    median = float(np.median(values))
    mad = float(np.median(np.abs(values - median)))
    return max(MAD_SCALE * mad, EPS + 1e-6 * abs(median))


def rolling_features(values: Array, window: int) -> Array:
    """Features of every point that has `window` readings before it: shape (n - window, 4).

    robust_z: the point against the median/MAD of the trailing window; step_z: the jump from the
    previous reading against the window's typical jump; spread_ratio: log of the spread of the
    last SHORT readings over the window's; slope_z: the slope of the last SHORT readings in
    window-scale units per reading.
    """
    x = np.asarray(values, dtype=np.float64)
    if window < SHORT + 1:
        raise ValueError(f"window must be at least {SHORT + 1}")
    if x.size <= window:
        return np.empty((0, len(FEATURES)))
    past = sliding_window_view(x[:-1], window)  # past[i] = x[i : i + window], before x[i+window]
    current = x[window:]
    median = np.median(past, axis=1)
    mad = np.median(np.abs(past - median[:, None]), axis=1)
    floor = EPS + 1e-6 * np.abs(median)
    scale = np.maximum(MAD_SCALE * mad, floor)
    robust_z = (current - median) / scale
    steps = np.diff(past, axis=1)
    step_scale = np.maximum(
        MAD_SCALE * np.median(np.abs(steps - np.median(steps, axis=1)[:, None]), axis=1), floor
    )
    step_z = (current - past[:, -1]) / step_scale
    recent = np.concatenate([past[:, -(SHORT - 1) :], current[:, None]], axis=1)
    spread_ratio = np.log((recent.std(axis=1) + floor) / scale)
    t = np.arange(SHORT, dtype=np.float64) - (SHORT - 1) / 2
    slope = (recent - recent.mean(axis=1)[:, None]) @ t / float(t @ t)
    slope_z = slope / scale
    return np.column_stack([robust_z, step_z, spread_ratio, slope_z])


def last_features(history: Array, window: int) -> Array | None:
    """The features of the newest point given at least window + 1 readings, else None."""
    if history.size < window + 1:
        return None
    rows = rolling_features(history[-(window + 1) :], window)
    last: Array = rows[-1]
    return last
