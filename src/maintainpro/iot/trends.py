"""Predictive maintenance: a robust trend of each monitored sensor, the date it will cross its
critical threshold, and pulling the asset's next preventive maintenance forward when that date
comes first.

The trend is the Theil-Sen slope (median of pairwise slopes) of hourly averages, so a few wild
readings do not move it. A trend is only believed when the Mann-Kendall confidence interval of the
slope excludes zero and the change over the window stands out of the residual noise; otherwise
a flat or noisy sensor would predict a crossing from nothing but chance.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from maintainpro.config import Settings
from maintainpro.core.assets import Asset
from maintainpro.core.audit import SYSTEM, set_actor
from maintainpro.core.schedules import MaintenanceSchedule
from maintainpro.iot.alerts import AlertRule, SensorPrediction
from maintainpro.iot.devices import Device, Sensor
from maintainpro.iot.rollups import HOUR_MS, hour_rollups
from maintainpro.iot.timeseries import RawPoint, from_ms, latest_values, to_ms

log = logging.getLogger(__name__)

METHOD: Final = "theil-sen"
TREND_DAYS: Final = 14
MIN_POINTS: Final = 24
# Pairwise slopes grow with the square of the points; beyond this the series is thinned evenly.
MAX_POINTS: Final = 400
# 95 % two-sided normal quantile for the slope's confidence interval.
Z_95: Final = 1.959964
# The fitted change over the window must exceed this many robust standard deviations of noise.
NOISE_FACTOR: Final = 1.0
HORIZON_DAYS: Final = 365
# A proposal within this much of the stored one is left alone, so hourly runs do not churn it.
PROPOSAL_TOLERANCE: Final = dt.timedelta(hours=12)

Direction = Literal["above", "below"]
DAY_S: Final = 86_400.0


@dataclass(frozen=True)
class Trend:
    """A robust linear trend of a sensor and whether it stands out of the noise."""

    slope_per_day: float
    level: float  # the fitted value at the newest point
    at: dt.datetime  # the newest point
    points: int
    significant: bool


def theil_sen(xs: Sequence[float], ys: Sequence[float]) -> tuple[float, float, float, float]:
    """Theil-Sen slope and intercept with the slope's 95 % confidence bounds (low, high)."""
    n = len(xs)
    if n < 2 or n != len(ys):
        raise ValueError("Theil-Sen needs at least two (x, y) points")
    slopes = sorted(
        (ys[j] - ys[i]) / (xs[j] - xs[i])
        for i in range(n)
        for j in range(i + 1, n)
        if xs[j] != xs[i]
    )
    if not slopes:
        raise ValueError("Theil-Sen needs at least two distinct x values")
    slope = statistics.median(slopes)
    intercept = statistics.median(y - slope * x for x, y in zip(xs, ys, strict=True))
    # Sen's interval from the variance of Kendall's S (ties ignored: hourly means rarely tie).
    spread = Z_95 * math.sqrt(n * (n - 1) * (2 * n + 5) / 18)
    count = len(slopes)
    low = slopes[max(0, min(count - 1, math.floor((count - spread) / 2) - 1))]
    high = slopes[max(0, min(count - 1, math.ceil((count + spread) / 2)))]
    return slope, intercept, low, high


def fit_trend(
    points: Sequence[tuple[dt.datetime, float]], *, min_points: int = MIN_POINTS
) -> Trend | None:
    """The trend of (time, value) points, or None when there are too few of them."""
    clean = sorted((t, v) for t, v in points if math.isfinite(v))
    if len(clean) < max(min_points, 3):
        return None
    if len(clean) > MAX_POINTS:
        step = (len(clean) - 1) / (MAX_POINTS - 1)
        clean = [clean[round(i * step)] for i in range(MAX_POINTS)]
    origin = clean[-1][0]
    xs = [(t - origin).total_seconds() / DAY_S for t, _ in clean]
    ys = [v for _, v in clean]
    slope, intercept, low, high = theil_sen(xs, ys)
    residuals = [y - (intercept + slope * x) for x, y in zip(xs, ys, strict=True)]
    centre = statistics.median(residuals)
    noise = 1.4826 * statistics.median(abs(r - centre) for r in residuals)
    change = abs(slope) * (xs[-1] - xs[0])
    significant = (low > 0 or high < 0) and change > NOISE_FACTOR * noise
    return Trend(
        slope_per_day=slope,
        level=intercept,  # x = 0 is the newest point
        at=origin,
        points=len(clean),
        significant=significant,
    )


def crossing_time(
    trend: Trend,
    threshold: float,
    direction: Direction,
    *,
    horizon: dt.timedelta = dt.timedelta(days=HORIZON_DAYS),
) -> dt.datetime | None:
    """When the trend reaches the threshold (its newest time if already beyond), or None."""
    sign = 1.0 if direction == "above" else -1.0
    gap = sign * (threshold - trend.level)
    if gap <= 0:
        return trend.at
    if not trend.significant or sign * trend.slope_per_day <= 0:
        return None
    days = gap / abs(trend.slope_per_day)
    if days * DAY_S > horizon.total_seconds():
        return None
    return trend.at + dt.timedelta(days=days)


# --------------------------------------------------------------------------- critical levels


@dataclass(frozen=True)
class Critical:
    """A sensor's critical threshold from an alert rule."""

    threshold: float
    direction: Direction
    rule_id: int


def critical_level(condition: Mapping[str, Any]) -> tuple[float, Direction] | None:
    """The critical threshold and direction of a threshold rule's condition JSON, if any."""
    if condition.get("kind") != "threshold":
        return None
    direction = condition.get("direction", "above")
    if direction not in ("above", "below"):
        return None
    levels = [
        level.get("threshold")
        for level in condition.get("levels") or []
        if isinstance(level, Mapping) and level.get("severity") == "critical"
    ]
    values = [float(v) for v in levels if isinstance(v, int | float) and math.isfinite(v)]
    if not values:
        return None
    # The first critical level the value would meet on its way.
    return (min(values) if direction == "above" else max(values)), direction


@dataclass(frozen=True)
class _SensorRow:
    id: int
    name: str
    unit: str
    type: str
    asset_id: int | None
    asset_class: str | None


def _monitored(session: Session) -> dict[_SensorRow, list[Critical]]:
    rows = session.execute(
        select(
            Sensor.id,
            Sensor.name,
            Sensor.key,
            Sensor.unit,
            Sensor.type,
            Device.asset_id,
            Asset.asset_class,
        )
        .join(Device, Sensor.device_id == Device.id)
        .outerjoin(Asset, Device.asset_id == Asset.id)
        .where(Sensor.enabled.is_(True))
    ).all()
    sensors = [
        _SensorRow(pk, name or key, unit, kind, asset_id, asset_class)
        for pk, name, key, unit, kind, asset_id, asset_class in rows
    ]
    found: dict[_SensorRow, list[Critical]] = {}
    rules = session.scalars(select(AlertRule).where(AlertRule.enabled.is_(True))).all()
    for rule in rules:
        level = critical_level(rule.condition or {})
        if level is None:
            continue
        critical = Critical(level[0], level[1], rule.id)
        for sensor in sensors:
            if rule.sensor_id is not None:
                applies = rule.sensor_id == sensor.id
            else:
                applies = (rule.sensor_type is not None or rule.asset_class is not None) and (
                    (rule.sensor_type is None or rule.sensor_type == sensor.type)
                    and (rule.asset_class is None or rule.asset_class == sensor.asset_class)
                )
            if applies:
                found.setdefault(sensor, []).append(critical)
    return found


def hourly_averages(
    session: Session, sensor_id: int, start: dt.datetime, end: dt.datetime
) -> list[tuple[dt.datetime, float]]:
    """(bucket middle, average) of a sensor's hourly rollups with start <= bucket < end."""
    c = hour_rollups.c
    rows = session.execute(
        select(c.bucket, c.value_sum, c.reading_count)
        .where(c.sensor_id == sensor_id, c.bucket >= to_ms(start), c.bucket < to_ms(end))
        .order_by(c.bucket)
    ).all()
    half = HOUR_MS // 2
    return [(from_ms(b + half), total / n) for b, total, n in rows if n > 0]


# --------------------------------------------------------------------------- the job


@dataclass(frozen=True)
class _Forecast:
    crossing_at: dt.datetime
    reason: str


def update_predictions(
    factory: sessionmaker[Session],
    settings: Settings,
    now: dt.datetime,
    *,
    days: int = TREND_DAYS,
    min_points: int = MIN_POINTS,
    extra_forecasts: Mapping[int, tuple[dt.datetime, str]] | None = None,
) -> int:
    """Refresh every monitored sensor's prediction and apply PM pull-forward; returns the count.

    `extra_forecasts` (asset id -> (time, reason)), e.g. remaining-useful-life estimates, join
    the trend crossings: whichever comes first drives the asset's pull-forward.
    """
    stored = 0
    with factory() as session, session.begin():
        set_actor(session, SYSTEM)
        forecasts: dict[int, _Forecast] = {}
        monitored = _monitored(session)
        for sensor, criticals in monitored.items():
            points = hourly_averages(session, sensor.id, now - dt.timedelta(days=days), now)
            trend = fit_trend(points, min_points=min_points)
            if trend is None:
                session.execute(
                    delete(SensorPrediction).where(SensorPrediction.sensor_id == sensor.id)
                )
                continue
            crossings = [(crossing_time(trend, c.threshold, c.direction), c) for c in criticals]
            timed = sorted(((t, c) for t, c in crossings if t is not None), key=lambda p: p[0])
            crossing_at, critical = timed[0] if timed else (None, criticals[0])
            _store(session, sensor.id, now, trend, critical.threshold, crossing_at)
            stored += 1
            if crossing_at is not None and sensor.asset_id is not None:
                reason = (
                    f"{sensor.name}: trend {trend.slope_per_day:+.3g} {sensor.unit}/day "
                    f"predicts it {'reaches' if critical.direction == 'above' else 'falls to'} "
                    f"the critical {critical.threshold:g} {sensor.unit} "
                    f"on {crossing_at:%Y-%m-%d %H:%M} UTC"
                ).replace("  ", " ")
                earlier = forecasts.get(sensor.asset_id)
                if earlier is None or crossing_at < earlier.crossing_at:
                    forecasts[sensor.asset_id] = _Forecast(crossing_at, reason)
        for asset_id, (at, why) in (extra_forecasts or {}).items():
            known = forecasts.get(asset_id)
            if known is None or at < known.crossing_at:
                forecasts[asset_id] = _Forecast(at, why)
        if settings.pm_pull_forward != "off":
            assets = {s.asset_id for s in monitored if s.asset_id is not None}
            assets |= set(extra_forecasts or {})
            for asset_id in assets:
                pull_forward(
                    session, asset_id, forecasts.get(asset_id), now, settings.pm_pull_forward
                )
    log.info("sensor predictions updated", extra={"sensors": stored})
    return stored


def _store(
    session: Session,
    sensor_id: int,
    now: dt.datetime,
    trend: Trend,
    threshold: float,
    crossing_at: dt.datetime | None,
) -> None:
    row = session.scalars(
        select(SensorPrediction).where(SensorPrediction.sensor_id == sensor_id)
    ).one_or_none()
    if row is None:
        row = SensorPrediction(sensor_id=sensor_id)
        session.add(row)
    row.computed_at = now
    row.method = METHOD if trend.significant else f"{METHOD} (no trend)"
    row.slope_per_day = trend.slope_per_day
    row.threshold = threshold
    row.current_level = trend.level
    row.crossing_at = crossing_at
    row.points = trend.points


def pull_forward(
    session: Session, asset_id: int, forecast: _Forecast | None, now: dt.datetime, mode: str
) -> MaintenanceSchedule | None:
    """Propose (or move) the asset's next calendar PM to the predicted crossing if that is first."""
    schedules = session.scalars(
        select(MaintenanceSchedule)
        .where(
            MaintenanceSchedule.asset_id == asset_id,
            MaintenanceSchedule.active.is_(True),
            MaintenanceSchedule.next_due_at.is_not(None),
        )
        .order_by(MaintenanceSchedule.next_due_at, MaintenanceSchedule.id)
    ).all()
    if not schedules:
        return None
    target = max(forecast.crossing_at, now) if forecast is not None else None
    following = schedules[0]
    assert following.next_due_at is not None  # filtered above
    comes_first = target is not None and target < following.next_due_at
    if mode == "propose":
        for schedule in schedules:
            # A proposal that no longer holds (trend gone, or PM already early enough) is stale.
            stale = schedule is not following or not comes_first
            if stale and schedule.proposed_due_at is not None:
                schedule.proposed_due_at = None
                schedule.proposal_reason = None
        if not comes_first or target is None or forecast is None:
            return None
        current = following.proposed_due_at
        if current is None or abs(current - target) >= PROPOSAL_TOLERANCE:
            following.proposed_due_at = target
            following.proposal_reason = forecast.reason
        return following
    if (
        mode == "move"
        and target is not None
        and forecast is not None
        # Hourly re-estimates wobble; only a real gain moves the schedule (and its audit trail).
        and target < following.next_due_at - PROPOSAL_TOLERANCE
    ):
        following.proposal_reason = (
            f"Moved from {following.next_due_at:%Y-%m-%d}: {forecast.reason}"
        )
        following.next_due_at = target
        following.proposed_due_at = None
        return following
    return None


# --------------------------------------------------------------------------- the asset page


@dataclass(frozen=True)
class SensorView:
    """One of an asset's sensors with its newest reading and prediction, for the asset page."""

    sensor: Sensor
    latest: RawPoint | None
    prediction: SensorPrediction | None


def asset_sensors(
    session: Session, asset_id: int, cold_dir: Path | None = None
) -> list[SensorView]:
    """The sensors of an asset's devices, each with its latest value and prediction."""
    sensors = session.scalars(
        select(Sensor)
        .join(Device, Sensor.device_id == Device.id)
        .where(Device.asset_id == asset_id)
        .order_by(Device.key, Sensor.key)
    ).all()
    if not sensors:
        return []
    ids = [s.id for s in sensors]
    latest = latest_values(session.connection(), ids, cold_dir=cold_dir)
    predictions = {
        p.sensor_id: p
        for p in session.scalars(
            select(SensorPrediction).where(SensorPrediction.sensor_id.in_(ids))
        )
    }
    return [SensorView(s, latest.get(s.id), predictions.get(s.id)) for s in sensors]
