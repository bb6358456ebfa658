"""Anomaly models on rolling features: an isolation forest and a robust z-score baseline.

Both are trained on a stretch of a sensor's (or a sensor type's) normal readings; the alarm
threshold is chosen on those training scores (a high quantile, so about one training point in
`1 / (1 - quantile)` would score above it) and an alert needs `min_run` anomalous readings in a
row, so one noisy reading never pages anyone.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Final, Literal

import numpy as np
from sklearn.ensemble import IsolationForest  # type: ignore[import-untyped]

from maintainpro.analytics.ml.features import FEATURES, Array, robust_scale, rolling_features

ModelKind = Literal["isolation_forest", "robust_z"]
WINDOW: Final = 60
QUANTILE: Final = 0.999
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
    feature_names: tuple[str, ...] = field(default=(*FEATURES, "level_z"))

    def feature_matrix(self, values: Array) -> Array:
        """Rolling features plus the level against training, one row per scorable point."""
        rolled = rolling_features(values, self.window)
        level = (np.asarray(values, dtype=np.float64)[self.window :] - self.level_median) / (
            self.level_scale
        )
        return np.clip(np.column_stack([rolled, level]), -CLIP, CLIP)

    def scores_of(self, matrix: Array) -> Array:
        """Anomaly scores of feature rows: higher is more anomalous."""
        if matrix.shape[0] == 0:
            return np.empty(0)
        if self.kind == "robust_z":
            return np.abs(matrix[:, 0])
        assert self.forest is not None  # an isolation-forest model always carries its forest
        return np.asarray(-self.forest.score_samples(matrix), dtype=np.float64)

    def score(self, values: Array) -> Array:
        """Scores of every point with a full window before it (len(values) - window of them)."""
        return self.scores_of(self.feature_matrix(values))


def train(
    values: Array,
    kind: ModelKind = "isolation_forest",
    *,
    window: int = WINDOW,
    quantile: float = QUANTILE,
    seed: int = 0,
) -> AnomalyModel:
    """Fit a model on normal readings and set its threshold on their scores."""
    x = np.asarray(values, dtype=np.float64)
    x = x[np.isfinite(x)]
    if x.size < window + 50:
        raise ValueError(f"need at least {window + 50} readings to train, got {x.size}")
    model = AnomalyModel(
        kind=kind,
        window=window,
        threshold=0.0,
        level_median=float(np.median(x)),
        level_scale=robust_scale(x),
    )
    matrix = model.feature_matrix(x)
    if kind == "isolation_forest":
        model.forest = IsolationForest(n_estimators=150, random_state=seed).fit(matrix)
    scores = model.scores_of(matrix)
    threshold = float(np.quantile(scores, quantile))
    if kind == "robust_z":
        threshold = max(threshold, MIN_Z)
    model.threshold = threshold
    return model


# --------------------------------------------------------------------------- alerting


@dataclass(frozen=True)
class RunState:
    """Consecutive anomalous / normal readings of one sensor and whether an alert is raised."""

    anomalous: int = 0
    normal: int = 0
    raised: bool = False


Transition = Literal["raise", "clear"] | None


def step(state: RunState, is_anomalous: bool, model: AnomalyModel) -> tuple[RunState, Transition]:
    """Advance the run counters by one reading; says when to raise or clear an alert."""
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
    flags = model.score(values) > model.threshold
    state = RunState()
    out = np.zeros(flags.size, dtype=bool)
    for i, flag in enumerate(flags):
        state, _ = step(state, bool(flag), model)
        out[i] = state.raised
    return out
