"""Honest evaluation of the ML models on simulated data with known answers.

Anomalies: N sensors (demo signal shapes), each trained on normal data, then a test stretch
with injected events (spikes, level shifts, noise bursts) at known places. An event counts as
detected when an alert is raised during it or within 10 readings after; every alert raised
outside any event is a false alarm. The isolation forest and the robust z-score baseline are
scored on the same data in the same run.

RUL: N assets degrading linearly or exponentially from a random onset to a known failure
time; estimates are made at several points before failure and compared with the truth (MAE,
and how often the truth falls inside the 90 % band).

    .venv/bin/python bench/ml_evaluation.py [--sensors 20] [--assets 40]
"""

from __future__ import annotations

import argparse
import math

import numpy as np

from maintainpro.analytics.ml.anomaly import alarms, train
from maintainpro.analytics.ml.rul import estimate_rul
from maintainpro.demo.signals import BEARING_TEMPERATURE, MOTOR_CURRENT, PUMP_VIBRATION

SHAPES = (PUMP_VIBRATION, BEARING_TEMPERATURE, MOTOR_CURRENT)


def anomaly_bench(sensors: int, rng: np.random.Generator) -> dict[str, dict[str, float]]:
    """Event precision/recall of both model kinds over simulated sensors."""
    totals = {k: {"tp": 0, "fn": 0, "fp": 0} for k in ("isolation_forest", "robust_z")}
    for n in range(sensors):
        shape = SHAPES[n % len(SHAPES)]
        series = np.array([shape.value(float(t), 0.0, seed=n) for t in range(8000)])
        train_part, test = series[:5000], series[5000:].copy()
        scale = max(shape.noise, 1e-3)
        events = []
        for start in rng.choice(np.arange(200, test.size - 60, 150), size=8, replace=False):
            kind = rng.integers(3)
            length = int(rng.integers(4, 30))
            if kind == 0:
                test[start : start + length] += rng.choice([-1, 1]) * rng.uniform(6, 15) * scale
            elif kind == 1:
                test[start : start + length] += rng.uniform(8, 20) * scale
            else:
                test[start : start + length] += rng.normal(0, rng.uniform(5, 10) * scale, length)
            events.append((int(start), int(start) + length))
        for kind_name in totals:
            model = train(train_part, kind_name)  # type: ignore[arg-type]
            raised = alarms(model, test)
            offset = model.window
            rises = [i + offset for i in range(1, raised.size) if raised[i] and not raised[i - 1]]
            covered = set()
            for r in rises:
                hit = next((e for e in events if e[0] <= r <= e[1] + 10), None)
                if hit is None:
                    totals[kind_name]["fp"] += 1
                else:
                    covered.add(hit)
            totals[kind_name]["tp"] += len(covered)
            totals[kind_name]["fn"] += len(events) - len(covered)
    out = {}
    for kind_name, c in totals.items():
        alerts = c["tp"] + c["fp"]
        out[kind_name] = {
            "precision": c["tp"] / alerts if alerts else math.nan,
            "recall": c["tp"] / (c["tp"] + c["fn"]),
            "false_alarms": c["fp"],
            "events": c["tp"] + c["fn"],
        }
    return out


def rul_bench(assets: int, rng: np.random.Generator) -> dict[str, dict[str, float]]:
    """MAE and band coverage of RUL estimates, per degradation shape."""
    results: dict[str, list[tuple[float, bool]]] = {"linear": [], "exponential": []}
    for n in range(assets):
        shape = "linear" if n % 2 == 0 else "exponential"
        fail_day = rng.uniform(25, 45)
        onset = rng.uniform(3, 10)
        t = np.arange(0, fail_day, 1 / 24)
        base, threshold = 2.0, 7.0
        u = np.clip((t - onset) / (fail_day - onset), 0, None)
        health = base + (threshold - base) * (
            u if shape == "linear" else np.expm1(3 * u) / np.expm1(3)
        )
        y = health + rng.normal(0, 0.15, t.size)
        for days_before in (14, 7, 3):
            now = fail_day - days_before
            seen = t <= now
            estimate = estimate_rul(t[seen], y[seen], threshold, now_days=now, seed=n)
            if estimate is None:
                results[shape].append((math.nan, False))
                continue
            high = estimate.high_days if estimate.high_days is not None else math.inf
            results[shape].append(
                (abs(estimate.rul_days - days_before), estimate.low_days <= days_before <= high)
            )
    out = {}
    for shape, rows in results.items():
        errors = [e for e, _ in rows if math.isfinite(e)]
        out[shape] = {
            "estimates": len(rows),
            "no_estimate": len(rows) - len(errors),
            "mae_days": float(np.mean(errors)) if errors else math.nan,
            "band_coverage": sum(c for _, c in rows) / len(rows),
        }
    return out


def main() -> None:
    """Run both benches and print a Markdown summary."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sensors", type=int, default=20)
    parser.add_argument("--assets", type=int, default=40)
    args = parser.parse_args()
    rng = np.random.default_rng(42)
    print("| anomaly model | events | precision | recall | false alarms |")
    print("|---|---|---|---|---|")
    for kind, m in anomaly_bench(args.sensors, rng).items():
        print(
            f"| {kind} | {m['events']} | {m['precision']:.2f} | {m['recall']:.2f} "
            f"| {m['false_alarms']} |"
        )
    print()
    print("| degradation | estimates | no estimate | RUL MAE (days) | 90 % band coverage |")
    print("|---|---|---|---|---|")
    for shape, m in rul_bench(args.assets, rng).items():
        print(
            f"| {shape} | {m['estimates']} | {m['no_estimate']} | {m['mae_days']:.2f} "
            f"| {m['band_coverage']:.0%} |"
        )


if __name__ == "__main__":
    main()
