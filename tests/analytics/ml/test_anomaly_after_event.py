"""The after-event rule of local_z (feature set 3): an event that has ended no longer keeps
raising alerts while it is still inside the window the cycle's phase is found from."""

from __future__ import annotations

import numpy as np
import pytest

from maintainpro.analytics.ml.anomaly import AnomalyModel, RunState, alarms, step, train
from maintainpro.demo.signals import PUMP_VIBRATION

EVENTS = (1900, 2400)


def _readings(count: int, seed: int) -> np.ndarray:
    return np.array([PUMP_VIBRATION.value(float(t), 0.0, seed=seed) for t in range(count)])


@pytest.fixture(scope="module")
def models() -> tuple[AnomalyModel, AnomalyModel]:
    """The previous (feature set 2) and the new local_z model of the same training data."""
    training = _readings(6000, 100_000)
    return train(training, "local_z", feature_set=2), train(training, "local_z")


def _shifted(seed: int) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """A fresh stretch with two level shifts of 8-12 noise sigmas, 40-90 readings long."""
    rng = np.random.default_rng(seed)
    values = _readings(3000, seed + 7)
    events = []
    for start in EVENTS:
        length = int(rng.integers(40, 90))
        size = rng.uniform(8, 12) * PUMP_VIBRATION.noise
        values[start : start + length] += rng.choice([-1.0, 1.0]) * size
        events.append((start, start + length))
    return values, events


def _rises(model: AnomalyModel, values: np.ndarray) -> list[int]:
    raised = alarms(model, values)
    return [i + model.window for i in range(1, raised.size) if raised[i] and not raised[i - 1]]


def test_level_shifts_are_caught_without_alerts_after_them(
    models: tuple[AnomalyModel, AnomalyModel],
) -> None:
    previous, new = models
    assert new.feature_set == 3
    after = {"previous": 0, "new": 0}
    for seed in range(4):
        values, events = _shifted(seed)
        for name, model in (("previous", previous), ("new", new)):
            rises = _rises(model, values)
            # Every shift still raises an alert while it lasts.
            for start, end in events:
                assert any(start <= r <= end for r in rises), (name, seed, start)
            after[name] += sum(1 for r in rises if not any(a <= r <= b + 10 for a, b in events))
    assert after["new"] <= 1
    assert after["previous"] >= after["new"] + 3  # the situation this rule is for


def test_clean_readings_raise_nothing(models: tuple[AnomalyModel, AnomalyModel]) -> None:
    _, new = models
    for seed in (11, 12):
        assert _rises(new, _readings(3000, seed)) == []


def test_the_rule_mutes_only_level_only_runs_starting_soon_after_an_anomaly() -> None:
    model = AnomalyModel("local_z", window=50, threshold=1.0, level_median=0.0, level_scale=1.0)
    state = RunState()
    for _ in range(3):  # an event: raised
        state, _ = step(state, True, model)
    assert state.raised
    for _ in range(model.clear_run):
        state, _ = step(state, False, model)
    assert not state.raised
    # Level-only anomalies 20 readings after it: muted; a spike-like one would count.
    for _ in range(5):
        state, transition = step(state, True, model, level_only=True)
        assert transition is None
    state, _ = step(state, True, model, level_only=False)
    assert state.anomalous == 1
    # Long after the event the level column alone raises again (a drift).
    quiet = RunState()
    for _ in range(model.window + 1):
        quiet, _ = step(quiet, False, model)
    for _ in range(3):
        quiet, transition = step(quiet, True, model, level_only=True)
    assert transition == "raise"
