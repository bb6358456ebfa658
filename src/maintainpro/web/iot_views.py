"""Data for the IoT pages: live chart set-up, thresholds from alert rules, health and rates."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from maintainpro.core.assets import Asset
from maintainpro.iot.alerts import OPEN_ALERT_STATUSES, Alert, AlertRule
from maintainpro.iot.devices import DeadLetter, Device, DeviceStatus, Sensor
from maintainpro.iot.timeseries import Series, query_readings, readings_table, to_ms
from maintainpro.web.charts import PALETTE

# Worst first; "ok" is an asset without open alerts.
SEVERITY_RANK: Final = {"critical": 4, "major": 3, "warning": 2, "info": 1}
SEVERITY_COLORS: Final = {
    "critical": "#b91c1c",
    "major": "#c2410c",
    "warning": "#92400e",
    "info": "#1f5fa8",
}
CLEAR_COLOR: Final = "#4a5563"
LIVE_WINDOW: Final = dt.timedelta(hours=1)
LIVE_POINTS: Final = 360


@dataclass(frozen=True)
class ThresholdLine:
    """A level of an alert rule drawn across a sensor's chart."""

    label: str
    value: float
    color: str
    dash: str = "dash"


def _rule_applies(rule: AlertRule, sensor: Sensor, asset_class: str | None) -> bool:
    # The same scoping as the alert engine: a sensor rule, or a template by type and class.
    if rule.sensor_id is not None:
        return rule.sensor_id == sensor.id
    if rule.sensor_type is None and rule.asset_class is None:
        return False
    return (rule.sensor_type is None or rule.sensor_type == sensor.type) and (
        rule.asset_class is None or rule.asset_class == asset_class
    )


def rule_lines(condition: Mapping[str, Any]) -> list[ThresholdLine]:
    """The value levels (and clear level) of a threshold rule's condition JSON."""
    if condition.get("kind", "threshold") != "threshold":
        return []
    lines = []
    for level in condition.get("levels") or []:
        if not isinstance(level, Mapping):
            continue
        value, severity = level.get("threshold"), str(level.get("severity", ""))
        if isinstance(value, int | float) and math.isfinite(value):
            color = SEVERITY_COLORS.get(severity, CLEAR_COLOR)
            lines.append(ThresholdLine(f"{severity} {value:g}", float(value), color))
    clear = condition.get("clear_at")
    if isinstance(clear, int | float) and math.isfinite(clear):
        lines.append(ThresholdLine(f"clear {clear:g}", float(clear), CLEAR_COLOR, "dot"))
    return lines


def sensor_thresholds(
    session: Session, sensors: Sequence[Sensor], asset_class: str | None
) -> dict[int, list[ThresholdLine]]:
    """Threshold lines per sensor from the enabled alert rules that apply to it."""
    rules = session.scalars(
        select(AlertRule).where(AlertRule.enabled.is_(True)).order_by(AlertRule.id)
    ).all()
    found: dict[int, list[ThresholdLine]] = {s.id: [] for s in sensors}
    for rule in rules:
        lines = rule_lines(rule.condition or {})
        if not lines:
            continue
        for sensor in sensors:
            if _rule_applies(rule, sensor, asset_class):
                found[sensor.id].extend(lines)
    return found


def series_xy(series: Series) -> tuple[list[str], list[float]]:
    """Times (ISO) and values of a series; bucketed series give their averages."""
    if series.resolution == "raw":
        return [p.ts.isoformat() for p in series.points], [p.value for p in series.points]
    return [b.start.isoformat() for b in series.buckets], [b.avg for b in series.buckets]


def live_sensors(
    session: Session,
    sensors: Sequence[Sensor],
    asset_class: str | None,
    now: dt.datetime,
    cold_dir: Path | None = None,
) -> list[dict[str, Any]]:
    """Set-up of the asset page's live charts: last hour (downsampled) and threshold lines."""
    thresholds = sensor_thresholds(session, sensors, asset_class)
    connection = session.connection()
    out = []
    for index, sensor in enumerate(sensors):
        series = query_readings(
            connection, sensor.id, now - LIVE_WINDOW, now, LIVE_POINTS, cold_dir=cold_dir
        )
        x, y = series_xy(series)
        out.append(
            {
                "id": sensor.id,
                "name": sensor.name or sensor.key,
                "unit": sensor.unit,
                "color": PALETTE[index % len(PALETTE)],
                "x": x,
                "y": y,
                "thresholds": [vars(t) for t in thresholds[sensor.id]],
            }
        )
    return out


def open_alerts(session: Session, asset_id: int | None = None) -> list[Alert]:
    """Open alerts (active or acknowledged), worst and newest first."""
    stmt = select(Alert).where(Alert.status.in_(OPEN_ALERT_STATUSES))
    if asset_id is not None:
        stmt = stmt.where(Alert.asset_id == asset_id)
    alerts = session.scalars(stmt.order_by(Alert.raised_at.desc())).all()
    return sorted(alerts, key=lambda a: -SEVERITY_RANK.get(a.severity, 0))


def asset_health(session: Session) -> dict[int, str]:
    """The worst open alert severity per asset (assets without open alerts are left out)."""
    rows = session.execute(
        select(Alert.asset_id, Alert.severity)
        .where(Alert.status.in_(OPEN_ALERT_STATUSES), Alert.asset_id.is_not(None))
        .distinct()
    ).all()
    worst: dict[int, str] = {}
    for asset_id, severity in rows:
        if asset_id is None:
            continue
        held = worst.get(asset_id)
        if held is None or SEVERITY_RANK.get(severity, 0) > SEVERITY_RANK.get(held, 0):
            worst[asset_id] = severity
    return worst


def device_counts(devices: Iterable[Device], now: dt.datetime) -> dict[str, int]:
    """How many devices are online, offline, in error or disabled."""
    counts = {status.value: 0 for status in DeviceStatus}
    for device in devices:
        counts[device.status_at(now).value] += 1
    return counts


def stored_rate(session: Session, now: dt.datetime, window_s: int = 60) -> float:
    """Readings stored per second over the last window, counted in the readings table."""
    ids = session.scalars(select(Sensor.id)).all()
    if not ids:
        return 0.0
    c = readings_table.c
    # Per sensor (the key's first column) so both backends range-scan the primary key.
    count = session.scalar(
        select(func.count())
        .select_from(readings_table)
        .where(c.sensor_id.in_(ids), c.ts >= to_ms(now) - window_s * 1000, c.ts <= to_ms(now))
    )
    return (count or 0) / window_s


def dead_letter_count(session: Session) -> int:
    """Every refused input kept in the dead-letter table."""
    return session.scalar(select(func.count()).select_from(DeadLetter)) or 0


def assets_by_location(session: Session) -> dict[int | None, list[Asset]]:
    """Assets grouped by their location, by tag."""
    grouped: dict[int | None, list[Asset]] = {}
    for asset in session.scalars(select(Asset).order_by(Asset.tag)).all():
        grouped.setdefault(asset.location_id, []).append(asset)
    return grouped
