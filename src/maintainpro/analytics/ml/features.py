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
# Features against a local curve, unscaled: see `local_features`.
LOCAL_FEATURES: Final = ("peak_residual", "residual_rms", "recent_mean")
# Readings a local quadratic is fitted to, to predict the next ones.
LOCAL: Final = 20
# Readings a spike stays visible in `peak_residual`: as many as an alert needs in a row.
MEMORY: Final = 3
# Readings over which the residual spread and the recent mean are taken.
RECENT: Final = 10
# A repeating cycle counts when the readings one period apart correlate at least this much.
MIN_SEASON_CORRELATION: Final = 0.5
# Periods out at which a second autocorrelation peak pins the period down.
REFINE_PERIODS: Final = 3
# Whole seasons (at most) over which a point's phase in its cycle is found.
ALIGN_SEASONS: Final = 3
# Readings either side of the found phase that a deviation may also be measured at.
PHASE_SLACK: Final = 10
# Harmonics of the Fourier series that describes a cycle's shape.
HARMONICS: Final = 8
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


def _extrapolation_weights(past: int, ahead: int) -> Array:
    """Weights that turn `past` readings into a quadratic's value `ahead` readings later."""
    s = np.arange(past, dtype=np.float64) - (past - 1) / 2
    design = np.column_stack([np.ones(past), s, s**2])
    at = (past - 1) / 2 + ahead
    weights: Array = np.array([1.0, at, at**2]) @ np.linalg.pinv(design)
    return weights


def local_features(values: Array, window: int) -> Array:
    """Features of every point with `window` readings before it against a local curve.

    A quadratic through the LOCAL readings before a point predicts it; the difference is the
    point's residual, free of the slow cycles and trends that inflate a window's median/MAD.
    peak_residual: the largest absolute residual among the last MEMORY readings, each
    predicted from the LOCAL readings before those MEMORY (so a one-reading spike is seen for
    MEMORY readings in a row, enough for an alert); residual_rms: the root mean square of the
    one-step residuals of the last RECENT readings (a noise burst raises it, a stuck sensor
    takes it to 0); recent_mean: the mean of the last RECENT readings (a drift moves it).
    Shape (n - window, 3); scale them against training values before comparing sensors.
    """
    x = np.asarray(values, dtype=np.float64)
    if window < LOCAL + RECENT:
        raise ValueError(f"window must be at least {LOCAL + RECENT}")
    if x.size <= window:
        return np.empty((0, len(LOCAL_FEATURES)))
    frames = sliding_window_view(x, window + 1)  # frames[:, -1] is the point itself
    last = window  # column of the point
    base = last - MEMORY + 1  # first of the MEMORY readings
    fit = frames[:, base - LOCAL : base]
    peak = np.zeros(frames.shape[0])
    for ahead in range(1, MEMORY + 1):
        predicted = fit @ _extrapolation_weights(LOCAL, ahead)
        peak = np.maximum(peak, np.abs(frames[:, base + ahead - 1] - predicted))
    one_step = _extrapolation_weights(LOCAL, 1)
    squares = np.zeros(frames.shape[0])
    for column in range(last - RECENT + 1, last + 1):
        squares += (frames[:, column] - frames[:, column - LOCAL : column] @ one_step) ** 2
    rms = np.sqrt(squares / RECENT)
    recent_mean = frames[:, last - RECENT + 1 :].mean(axis=1)
    return np.column_stack([peak, rms, recent_mean])


def season_length(values: Array, max_lag: int) -> int:
    """The period, in readings, of the strongest repeating cycle of the values (0 if none).

    The highest local peak of the autocorrelation between 2 * LOCAL and `max_lag` readings,
    when it reaches MIN_SEASON_CORRELATION; a drift hides under a cycle of that period unless
    the signal is compared with itself one period earlier.
    """
    x = np.asarray(values, dtype=np.float64)
    x = x - x.mean()
    n = x.size
    max_lag = min(max_lag, n // 3)
    if max_lag <= 2 * LOCAL + 1 or not np.any(x):
        return 0
    spectrum = np.fft.rfft(x, 2 * n)
    acf = np.fft.irfft(spectrum * np.conj(spectrum))
    acf = acf / acf[0]
    lags = np.arange(2 * LOCAL, max_lag + 1)
    peaks = lags[(acf[lags] > acf[lags - 1]) & (acf[lags] >= acf[lags + 1])]
    if peaks.size == 0:
        return 0
    best = int(peaks[np.argmax(acf[peaks])])
    if acf[best] < MIN_SEASON_CORRELATION:
        return 0
    # Noise moves a single peak by a reading or two; the peak REFINE_PERIODS periods out,
    # divided by REFINE_PERIODS, pins the period down better (and a profile built on a period
    # one reading off would smear over the training cycles).
    far = REFINE_PERIODS * best
    if far + best // 2 < n // 2:
        near = np.arange(far - REFINE_PERIODS * 2, far + REFINE_PERIODS * 2 + 1)
        best = round(int(near[np.argmax(acf[near])]) / REFINE_PERIODS)
    return best


def cycle_profile(values: Array, season: int) -> Array:
    """The typical value at each of the `season` phases of a cycle.

    A least-squares Fourier series of HARMONICS harmonics over all the values: smooth, so that
    the profile does not learn the training noise (a per-phase median of a few cycles would,
    and would then look better on training data than on anything new).
    """
    x = np.asarray(values, dtype=np.float64)
    if season == 0 or x.size < season:
        return np.empty(0)
    harmonics = min(HARMONICS, season // 4)

    def basis(phase: Array) -> Array:
        angles = 2 * np.pi * np.outer(phase, np.arange(1, harmonics + 1)) / season
        return np.column_stack([np.ones(phase.size), np.cos(angles), np.sin(angles)])

    phases = np.asarray(np.arange(x.size) % season, dtype=np.float64)
    coef = np.linalg.pinv(basis(phases)) @ x
    profile: Array = basis(np.arange(season, dtype=np.float64)) @ coef
    return profile


def cycle_deviation(values: Array, window: int, profile: Array) -> Array:
    """Per point with `window` readings before it: the mean of the last RECENT readings minus
    the mean of the cycle profile at their phases (0 everywhere without a profile).

    The phase is found afresh at every point by lining the last `len(profile)` readings up with
    the profile (circular cross-correlation of their shapes, levels removed), so the deviation
    needs no clock and is measured against training, not against the recent past: a drift
    shows while it lasts and stops showing once it is over.
    """
    x = np.asarray(values, dtype=np.float64)
    rows = max(x.size - window, 0)
    season = profile.size
    if season == 0 or rows == 0:
        return np.zeros(rows)
    if window + 1 < season:
        raise ValueError("window must cover one season")
    # Line up over as many whole seasons as the window holds (up to ALIGN_SEASONS), folded
    # into one: an anomaly inside them then weighs a fraction of the evidence for the phase.
    seasons = min(ALIGN_SEASONS, (window + 1) // season)
    span = seasons * season
    frames = sliding_window_view(x, span)[window + 1 - span :]  # ends at each point
    # Readings beyond the cycle's own swing are clipped before lining up: an anomaly in the
    # last seasons must not drag the phase (and so every later deviation) off.
    swing = float(np.abs(profile - profile.mean()).max())
    clipped = np.clip(frames - np.median(frames, axis=1, keepdims=True), -swing, swing)
    shape = clipped.reshape(frames.shape[0], seasons, season).sum(axis=1)
    reference = np.conj(np.fft.rfft(profile - profile.mean()))
    recent = frames[:, span - RECENT :].mean(axis=1)
    deviation: Array = np.full(recent.size, np.inf)
    # The phase is found three times: from the whole season and from each half alone. An
    # anomaly in the last season spoils at most one half's phase (and maybe the whole's);
    # the deviation kept is the smallest, with a little slack around each phase too.
    half = season // 2
    first, second = shape.copy(), shape.copy()
    first[:, half:] = 0.0
    second[:, :half] = 0.0
    for part in (shape, first, second):
        correlation = np.fft.irfft(np.fft.rfft(part, axis=1) * reference, season, axis=1)
        # frames[i, j] lines up with profile[(j - lag) % season] at the best lag.
        lag = np.argmax(correlation, axis=1)
        for slack in range(-PHASE_SLACK, PHASE_SLACK + 1):
            at = (np.arange(season - RECENT, season)[None, :] - (lag + slack)[:, None]) % season
            gap = recent - profile[at].mean(axis=1)
            deviation = np.where(np.abs(gap) < np.abs(deviation), gap, deviation)
    return deviation
