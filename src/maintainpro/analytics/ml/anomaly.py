"""Anomaly models on rolling features: `local_z` (the default: the largest of a few features
against a local curve and the sensor's cycle, each in units of its training spread), an
isolation forest, and a robust z-score baseline.

All are trained on a stretch of a sensor's (or a sensor type's) normal readings; the alarm
threshold is chosen on those training scores (a high quantile, so about one training point in
`1 / (1 - quantile)` would score above it) and an alert needs `min_run` anomalous readings in a
row, so one noisy reading never pages anyone. Feature set 1 is what models saved before
feature set 2 use; they load and score as they did.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Final, Literal

import numpy as np
from numpy.typing import NDArray
from sklearn.ensemble import IsolationForest  # type: ignore[import-untyped]

from maintainpro.analytics.ml.features import (
    ALIGN_SEASONS,
    EPS,
    FEATURES,
    Array,
    cycle_deviation,
    cycle_profile,
    local_features,
    robust_scale,
    rolling_features,
    season_length,
)

ModelKind = Literal["isolation_forest", "robust_z", "local_z"]
# Version 1: the rolling features and the level; version 2 adds the local-curve features;
# version 3 has the same columns and adds the after-event rule of `step` (see `level_only`).
FEATURE_SET: Final = 3
FEATURES_V1: Final = (*FEATURES, "level_z")
FEATURES_V2: Final = (*FEATURES_V1, "peak_z", "noise_ratio", "mean_level_z", "cycle_z")
# The longest cycle (in readings) looked for in training data; the window grows to hold one.
MAX_SEASON: Final = 600
# The longest window a cycle may stretch a model to: a live scorer with no stored history
# (a new sensor) is blind for this many readings.
MAX_WINDOW: Final = 450
WINDOW: Final = 60
QUANTILE: Final = 0.999
# local_z's features look back several readings, so its high scores come in runs and pass the
# min_run rule more easily than a single reading's z: its threshold is raised by this factor
# (chosen on the bench's tuning split) for about the same false-alarm rate as the others.
LOCAL_Z_MARGIN: Final = 1.6
# The training quantile of each feature that local_z takes as its unit.
FEATURE_QUANTILE: Final = 0.999
# The z-score baseline never alarms below this, however tame the training data was.
MIN_Z: Final = 4.0
MIN_RUN: Final = 3
CLEAR_RUN: Final = 20
# Features are clipped so one absurd reading cannot dominate the forest's split ranges.
CLIP: Final = 50.0


@dataclass
class AnomalyModel:
    """A trained anomaly model of one sensor (or one sensor type) and its alarm threshold."""

    kind: ModelKind
    window: int
    threshold: float
    level_median: float
    level_scale: float
    forest: IsolationForest | None = None
    min_run: int = MIN_RUN
    clear_run: int = CLEAR_RUN
    feature_names: tuple[str, ...] = field(default=FEATURES_V1)
    # Plain defaults (class attributes) on purpose: a model saved before these fields existed
    # unpickles without them and reads these values, which reproduce its old behaviour.
    feature_set: int = 1
    noise_scale: float = 1.0
    # Readings behind the rolling and local features (0: all of `window`); `window` itself
    # is then long enough to also reach one `season` (a cycle's period) back.
    short_window: int = 0
    # The typical value at each phase of the signal's cycle, when it has one.
    profile: Array | None = None
    # Training median and robust scale of each feature (local_z standardises with them).
    feature_center: Array | None = None
    feature_scale: Array | None = None
    # The columns local_z scores on: every extra column is one more chance of a false alarm,
    # which the threshold has to pay for by rising for all the others.
    scored: tuple[int, ...] = ()

    def feature_matrix(self, values: Array) -> Array:
        """Rolling features plus the level against training, one row per scorable point."""
        x = np.asarray(values, dtype=np.float64)
        short = self.short_window or self.window
        # The short features need only the readings from `skip` on to cover the same points.
        skip = self.window - short
        rolled = rolling_features(x[skip:], short)
        level = (x[self.window :] - self.level_median) / self.level_scale
        columns = [rolled, level]
        if self.feature_set >= 2:
            peak, rms, recent_mean = local_features(x[skip:], short).T
            columns += [
                peak / self.noise_scale,
                np.log((rms + EPS) / self.noise_scale),
                (recent_mean - self.level_median) / self.level_scale,
                cycle_deviation(x, self.window, _or_empty(self.profile)) / self.noise_scale,
            ]
        return np.clip(np.column_stack(columns), -CLIP, CLIP)

    def scores_of(self, matrix: Array) -> Array:
        """Anomaly scores of feature rows: higher is more anomalous."""
        if matrix.shape[0] == 0:
            return np.empty(0)
        if self.kind == "robust_z":
            return np.abs(matrix[:, 0])
        if self.kind == "local_z":
            # A local_z model always carries its training centres and scales.
            assert self.feature_center is not None
            assert self.feature_scale is not None
            cols = list(self.scored)
            z = np.abs((matrix[:, cols] - self.feature_center[cols]) / self.feature_scale[cols])
            return np.asarray(z.max(axis=1), dtype=np.float64)
        assert self.forest is not None  # an isolation-forest model always carries its forest
        return np.asarray(-self.forest.score_samples(matrix), dtype=np.float64)

    def score(self, values: Array) -> Array:
        """Scores of every point with a full window before it (len(values) - window of them)."""
        return self.scores_of(self.feature_matrix(values))

    def level_only_of(self, matrix: Array) -> NDArray[np.bool_]:
        """Per feature row: is it anomalous by the level (cycle) column alone?

        Only local_z models of feature set 3 or later say so (the others: all False), for the
        after-event rule of `step`.
        """
        if self.kind != "local_z" or self.feature_set < 3 or matrix.shape[0] == 0:
            return np.zeros(matrix.shape[0], dtype=bool)
        assert self.feature_center is not None
        assert self.feature_scale is not None
        cols = list(self.scored)
        z = np.abs((matrix[:, cols] - self.feature_center[cols]) / self.feature_scale[cols])
        # `scored` ends with the level column (cycle_z or mean_level_z).
        return np.asarray(
            (z[:, -1] > self.threshold) & (z[:, :-1].max(axis=1) <= self.threshold), dtype=bool
        )

    def flags(self, values: Array) -> tuple[NDArray[np.bool_], NDArray[np.bool_]]:
        """Per scorable point: is it anomalous, and is it so by the level column alone."""
        matrix = self.feature_matrix(values)
        anomalous = np.asarray(self.scores_of(matrix) > self.threshold, dtype=np.bool_)
        return anomalous, self.level_only_of(matrix)


def train(
    values: Array,
    kind: ModelKind = "local_z",
    *,
    window: int = WINDOW,
    quantile: float = QUANTILE,
    seed: int = 0,
    feature_set: int = FEATURE_SET,
) -> AnomalyModel:
    """Fit a model on normal readings and set its threshold on their scores."""
    x = np.asarray(values, dtype=np.float64)
    x = x[np.isfinite(x)]
    if x.size < window + 50:
        raise ValueError(f"need at least {window + 50} readings to train, got {x.size}")
    if kind == "local_z" and feature_set < 2:
        raise ValueError("the local_z model needs feature set 2")
    model = AnomalyModel(
        kind=kind,
        window=window,
        threshold=0.0,
        level_median=float(np.median(x)),
        level_scale=robust_scale(x),
        feature_names=FEATURES_V2 if feature_set >= 2 else FEATURES_V1,
        feature_set=feature_set,
    )
    if feature_set >= 2:
        # The typical one-step residual of normal data is the yardstick of the local features.
        model.noise_scale = max(float(np.median(local_features(x, window)[:, 1])), EPS)
        season = season_length(x, MAX_SEASON)
        # Whole seasons, up to ALIGN_SEASONS of them, within MAX_WINDOW + 1 readings.
        seasons = min(ALIGN_SEASONS, (MAX_WINDOW + 1) // season) if season else 0
        reach = seasons * season - 1
        if seasons and x.size >= reach + season + 50:
            model.profile, model.short_window = cycle_profile(x, season), window
            model.window = max(window, reach)
    matrix = model.feature_matrix(x)
    if kind == "local_z":
        # Each feature in units of its own high training quantile, so that a heavy-tailed
        # feature cannot raise the bar the others are measured against.
        center = np.median(matrix, axis=0)
        spread = np.quantile(np.abs(matrix - center), FEATURE_QUANTILE, axis=0)
        model.feature_center = center
        model.feature_scale = np.maximum(spread, 1e-6)
        names = FEATURES_V2
        level = "cycle_z" if model.profile is not None else "mean_level_z"
        model.scored = tuple(names.index(n) for n in ("peak_z", "noise_ratio", level))
    if kind == "isolation_forest":
        model.forest = IsolationForest(n_estimators=150, random_state=seed).fit(matrix)
    scores = model.scores_of(matrix)
    threshold = float(np.quantile(scores, quantile))
    if kind == "local_z":
        threshold *= LOCAL_Z_MARGIN
    if kind == "robust_z":
        threshold = max(threshold, MIN_Z)
    model.threshold = threshold
    return model


def _or_empty(profile: Array | None) -> Array:
    return np.empty(0) if profile is None else profile


# --------------------------------------------------------------------------- alerting


# Readings since the last anomalous one, before the first (as good as "never").
NEVER: Final = 1_000_000


@dataclass(frozen=True)
class RunState:
    """Consecutive anomalous / normal readings of one sensor and whether an alert is raised.

    `since_anomalous`: readings since the last one counted as anomalous (for the after-event
    rule of `step`).
    """

    anomalous: int = 0
    normal: int = 0
    raised: bool = False
    since_anomalous: int = NEVER


Transition = Literal["raise", "clear"] | None


def step(
    state: RunState, is_anomalous: bool, model: AnomalyModel, level_only: bool = False
) -> tuple[RunState, Transition]:
    """Advance the run counters by one reading; says when to raise or clear an alert.

    After-event rule: a reading anomalous by the level (cycle) column alone counts as normal
    while an earlier anomalous reading is within `model.window` readings, unless it continues
    a run or an alert is raised. The cycle's phase is found from the window's readings, so an
    event that has ended still pulls it off (and the level column up) until the event has
    left the window; on the bench that caused most false alarms. `level_only` is only ever
    True for local_z models of feature set 3 or later.
    """
    if (
        is_anomalous
        and level_only
        and state.anomalous == 0
        and not state.raised
        and state.since_anomalous <= model.window
    ):
        is_anomalous = False
    since = 0 if is_anomalous else min(state.since_anomalous + 1, NEVER)
    state = replace(state, since_anomalous=since)
    if is_anomalous:
        state = replace(state, anomalous=state.anomalous + 1, normal=0)
        if not state.raised and state.anomalous >= model.min_run:
            return replace(state, raised=True), "raise"
        return state, None
    state = replace(state, anomalous=0, normal=state.normal + 1)
    if state.raised and state.normal >= model.clear_run:
        return replace(state, raised=False), "clear"
    return state, None


def alarms(model: AnomalyModel, values: Array) -> Array:
    """For every scorable point: is an alert raised at that point (pure replay of `step`)."""
    flags, level_only = model.flags(values)
    state = RunState()
    out = np.zeros(flags.size, dtype=bool)
    for i, flag in enumerate(flags):
        state, _ = step(state, bool(flag), model, bool(level_only[i]))
        out[i] = state.raised
    return out
