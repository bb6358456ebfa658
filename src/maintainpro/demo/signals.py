"""Believable sensor signals for the demo plant: pure functions of time, so every simulator
(and a test) computes the same value for the same instant."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Signal:
    """A process value: level, slow daily swing, load cycle, noise, and an optional fault.

    The fault is a drift that starts `fault_after_s` seconds after `start` and grows by
    `fault_rate` units per minute, the way a failing bearing raises vibration, up to
    `fault_max` units when given.
    """

    base: float
    daily_amplitude: float = 0.0
    cycle_amplitude: float = 0.0
    cycle_period_s: float = 300.0
    noise: float = 0.0
    resolution: float = 0.01
    fault_after_s: float | None = None
    fault_rate_per_min: float = 0.0
    fault_max: float | None = None
    floor: float | None = None

    def value(self, t: float, start: float, seed: int = 0) -> float:
        """The value at epoch second t for a simulation started at epoch second `start`."""
        daily = self.daily_amplitude * math.sin(2 * math.pi * ((t % 86_400) / 86_400 - 0.25))
        cycle = self.cycle_amplitude * math.sin(2 * math.pi * t / self.cycle_period_s)
        # Seeded per (signal seed, whole second) so replays and restarts give the same noise.
        noise = random.Random(hash((seed, int(t)))).gauss(0.0, self.noise) if self.noise else 0.0  # noqa: S311
        drift = 0.0
        if self.fault_after_s is not None and t - start > self.fault_after_s:
            drift = self.fault_rate_per_min * (t - start - self.fault_after_s) / 60.0
            if self.fault_max is not None:
                drift = min(drift, self.fault_max)
        value = self.base + daily + cycle + noise + drift
        if self.floor is not None:
            value = max(self.floor, value)
        steps = round(value / self.resolution)
        return round(steps * self.resolution, 6)


PUMP_VIBRATION = Signal(base=2.2, cycle_amplitude=0.3, noise=0.08, resolution=0.01, floor=0.0)
FAULTY_VIBRATION = Signal(
    base=2.4,
    cycle_amplitude=0.3,
    noise=0.08,
    resolution=0.01,
    floor=0.0,
    fault_after_s=120.0,
    # Fast enough to pass ISO 10816's 7.1 mm/s "unacceptable" line within five minutes of a
    # demo start, so visitors see the fault develop while they look around.
    fault_rate_per_min=1.8,
    # A demo left running levels off in the alarm zone instead of climbing for ever.
    fault_max=9.6,
)
BEARING_TEMPERATURE = Signal(
    base=52.0, daily_amplitude=4.0, cycle_amplitude=1.5, noise=0.2, resolution=0.1
)
DISCHARGE_PRESSURE = Signal(
    base=7.1, cycle_amplitude=0.25, cycle_period_s=90, noise=0.03, resolution=0.01
)
CHILLED_WATER_TEMP = Signal(base=6.5, daily_amplitude=0.8, noise=0.05, resolution=0.1)
CHILLED_WATER_FLOW = Signal(
    base=42.0, cycle_amplitude=3.0, cycle_period_s=600, noise=0.4, resolution=0.1
)
ROOM_HUMIDITY = Signal(base=48.0, daily_amplitude=8.0, noise=0.5, resolution=0.1)
MOTOR_CURRENT = Signal(
    base=18.0, cycle_amplitude=6.0, cycle_period_s=240, noise=0.3, resolution=0.1, floor=0.0
)
BOILER_STEAM_PRESSURE = Signal(
    base=9.8, cycle_amplitude=0.4, cycle_period_s=180, noise=0.05, resolution=0.01
)
BOILER_FLUE_TEMP = Signal(base=185.0, daily_amplitude=6.0, noise=1.0, resolution=0.5)
COMPRESSOR_DISCHARGE_TEMP = Signal(
    base=82.0,
    daily_amplitude=2.0,
    cycle_amplitude=3.0,
    cycle_period_s=90,
    noise=0.3,
    resolution=0.1,
)
