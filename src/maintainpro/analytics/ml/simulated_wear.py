"""Simulated degradation runs with a known failure time, for calibrating and evaluating RUL.

An asset degrades from a random onset to FAILURE_LEVEL at a known day along one of three
shapes (linear; exponential with a random curvature; a shock: a jump with faster wear after
it), with AR(1) noise of random strength and correlation and a small daily swing. The same
simulator feeds the RUL band's calibration (`rul_calibration`, its own seeds) and the honest
evaluation in `bench/ml_evaluation.py` (other seeds).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final, Literal

import numpy as np

from maintainpro.analytics.ml.features import Array

WearShape = Literal["linear", "exponential", "shock"]
WEAR_SHAPES: Final[tuple[WearShape, ...]] = ("linear", "exponential", "shock")
BASE: Final = 2.0
FAILURE_LEVEL: Final = 7.0


@dataclass
class SimulatedAsset:
    """A simulated asset: hourly health values up to its failure, and its earlier lives."""

    t: Array
    y: Array
    fail_day: float
    past_lives: Array


def _life(rng: np.random.Generator) -> float:
    return float(rng.uniform(25, 45))


def simulate_asset(shape: WearShape, rng: np.random.Generator) -> SimulatedAsset:
    """One asset degrading from a random onset to FAILURE_LEVEL at a known day."""
    fail = _life(rng)
    onset = rng.uniform(3, 10)
    t = np.arange(0, fail, 1 / 24)
    span = FAILURE_LEVEL - BASE
    if shape == "shock":
        at = rng.uniform(onset + 2, fail - 2)
        jump = rng.uniform(0.1, 0.3) * span
        speedup = rng.uniform(1.0, 2.5)
        rate = (span - jump) / ((at - onset) + speedup * (fail - at))
        health = (
            BASE
            + rate * np.clip(t - onset, 0, at - onset)
            + np.where(t > at, jump + rate * speedup * (t - at), 0.0)
        )
    else:
        u = np.clip((t - onset) / (fail - onset), 0, None)
        curvature = rng.uniform(1.5, 4.0)
        health = BASE + span * (
            u if shape == "linear" else np.expm1(curvature * u) / np.expm1(curvature)
        )
    sd, phi = rng.uniform(0.1, 0.25), rng.uniform(0.0, 0.6)
    innovations = rng.normal(0, sd * math.sqrt(1 - phi**2), t.size)
    noise = np.empty(t.size)
    noise[0] = rng.normal(0, sd)
    for i in range(1, t.size):
        noise[i] = phi * noise[i - 1] + innovations[i]
    daily = rng.uniform(0, 0.15) * np.sin(2 * np.pi * t + rng.uniform(0, 2 * np.pi))
    past = np.array([_life(rng) for _ in range(5)])
    return SimulatedAsset(t, health + noise + daily, fail, past)
