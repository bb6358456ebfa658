"""Pure tests of the rolling features, anomaly models, RUL estimates and the model registry."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from maintainpro.analytics.ml.anomaly import alarms, train
from maintainpro.analytics.ml.features import FEATURES, rolling_features
from maintainpro.analytics.ml.registry import ModelRegistry, RegistryError, TamperedModel
from maintainpro.analytics.ml.rul import estimate_rul, learned_threshold

RNG = np.random.default_rng(3)
NOW = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)


def _normal(n: int) -> np.ndarray:
    return 5.0 + 0.5 * np.sin(np.arange(n) / 20) + RNG.normal(0, 0.1, n)


def test_features_see_a_spike_and_not_the_noise() -> None:
    values = _normal(300)
    values[200] += 3.0
    rows = rolling_features(values, 60)
    assert rows.shape == (240, len(FEATURES))
    z = np.abs(rows[:, 0])
    assert z[200 - 60] > 10
    assert np.median(np.delete(z, 200 - 60)) < 2


@pytest.mark.parametrize("kind", ["isolation_forest", "robust_z"])
def test_models_alarm_on_an_injected_shift_only(kind: str) -> None:
    model = train(_normal(3000), kind)  # type: ignore[arg-type]
    assert not alarms(model, _normal(1000)).any()
    shifted = _normal(400)
    shifted[300:310] += 2.0
    raised = alarms(model, shifted)
    assert raised[300 - 60 : 320 - 60].any()
    assert not raised[: 300 - 60].any()


def test_rul_of_a_linear_degradation_lands_in_its_band() -> None:
    # Failure (level 10) at day 20: level 4 at day 0 rising 0.3/day, noisy hourly values.
    t = np.arange(0, 12, 1 / 24)
    y = 4 + 0.3 * t + RNG.normal(0, 0.15, t.size)
    estimate = estimate_rul(t, y, 10.0)
    assert estimate is not None
    true_rul = 20 - t[-1]
    assert estimate.high_days is not None
    assert estimate.low_days <= true_rul <= estimate.high_days
    assert abs(estimate.rul_days - true_rul) < 1.5


def test_no_rul_without_a_trend_toward_the_threshold() -> None:
    t = np.arange(0, 10, 1 / 24)
    assert estimate_rul(t, 4 + RNG.normal(0, 0.1, t.size) - 0.2 * t, 10.0) is None


def test_failure_level_is_learned_from_history_only_with_enough_failures() -> None:
    assert learned_threshold([9.0]) is None
    assert learned_threshold([9.0, 11.0, 10.0]) == 10.0


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
