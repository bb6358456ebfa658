"""Predictive maintenance: Theil-Sen trends, crossing dates and PM pull-forward."""

from __future__ import annotations

import datetime as dt
import random
import re
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from maintainpro.config import Settings
from maintainpro.core.assets import Asset
from maintainpro.core.schedules import IntervalUnit, MaintenanceSchedule
from maintainpro.core.users import Role, User
from maintainpro.iot.alerts import AlertRule, SensorPrediction
from maintainpro.iot.devices import Device, Protocol, Sensor
from maintainpro.iot.timeseries import ReadingRow, to_ms, write_readings
from maintainpro.iot.trends import (
    critical_level,
    crossing_time,
    fit_trend,
    theil_sen,
    update_predictions,
)
from support import plant

MakeUser = Callable[..., tuple[User, str]]
PASSWORD = "correct horse battery"
NOW = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)
START = NOW - dt.timedelta(days=14)
THRESHOLD = 11.0


def _degrading(hours: int = 14 * 24, outliers: bool = True) -> list[tuple[dt.datetime, float]]:
    """Vibration rising 0.25 mm/s a day from 4.0, with noise and a few wild readings."""
    rng = random.Random(7)
    points = []
    for h in range(hours):
        t = START + dt.timedelta(hours=h)
        value = 4.0 + 0.25 * h / 24 + rng.gauss(0, 0.15)
        if outliers and h % 37 == 0:
            value += rng.choice([-1, 1]) * 8.0
        points.append((t, value))
    return points


def _flat(hours: int = 14 * 24) -> list[tuple[dt.datetime, float]]:
    rng = random.Random(11)
    return [(START + dt.timedelta(hours=h), 4.0 + rng.gauss(0, 0.5)) for h in range(hours)]


def test_theil_sen_ignores_outliers() -> None:
    xs = [float(i) for i in range(20)]
    ys = [2.0 * x + 1.0 for x in xs]
    ys[3], ys[15] = 500.0, -500.0
    slope, intercept, low, high = theil_sen(xs, ys)
    assert slope == pytest.approx(2.0)
    assert intercept == pytest.approx(1.0)
    assert low <= slope <= high


def test_a_degrading_signal_with_outliers_predicts_the_crossing_within_a_day() -> None:
    points = _degrading()
    trend = fit_trend(points)
    assert trend is not None
    assert trend.significant
    assert trend.slope_per_day == pytest.approx(0.25, rel=0.05)
    crossing = crossing_time(trend, THRESHOLD, "above")
    # True line: 4.0 + 0.25 d = 11 at d = 28 days after START.
    expected = START + dt.timedelta(days=28)
    assert crossing is not None
    assert abs(crossing - expected) < dt.timedelta(days=1)


def test_a_flat_noisy_signal_predicts_no_crossing() -> None:
    trend = fit_trend(_flat())
    assert trend is not None
    assert not trend.significant
    assert crossing_time(trend, THRESHOLD, "above") is None


def test_a_perfectly_flat_signal_predicts_no_crossing() -> None:
    trend = fit_trend([(START + dt.timedelta(hours=h), 3.0) for h in range(48)])
    assert trend is not None
    assert not trend.significant
    assert crossing_time(trend, THRESHOLD, "above") is None


def test_too_few_points_give_no_trend() -> None:
    assert fit_trend(_degrading(hours=10)) is None


def test_a_value_already_beyond_the_threshold_crosses_now() -> None:
    trend = fit_trend([(START + dt.timedelta(hours=h), 12.0) for h in range(48)])
    assert trend is not None
    assert crossing_time(trend, THRESHOLD, "above") == trend.at


def test_a_falling_signal_crosses_a_below_threshold() -> None:
    points = [(START + dt.timedelta(hours=h), 10.0 - 0.5 * h / 24) for h in range(72)]
    trend = fit_trend(points)
    assert trend is not None
    crossing = crossing_time(trend, 2.0, "below")
    assert crossing is not None
    assert crossing == pytest.approx(START + dt.timedelta(days=16), abs=dt.timedelta(hours=1))
    assert crossing_time(trend, 20.0, "above") is None


def test_the_critical_level_is_read_from_the_rule_condition() -> None:
    condition = {
        "kind": "threshold",
        "direction": "above",
        "levels": [
            {"severity": "warning", "threshold": 7.1},
            {"severity": "critical", "threshold": 11.0},
        ],
    }
    assert critical_level(condition) == (11.0, "above")
    assert critical_level({"kind": "stale", "timeout_s": 60}) is None
    assert critical_level({"kind": "threshold", "levels": [{"severity": "warning"}]}) is None


# --------------------------------------------------------------------------- the job


def _setup(
    session_factory: sessionmaker[Session], points: list[tuple[dt.datetime, float]]
) -> tuple[int, int]:
    with session_factory() as session, session.begin():
        ids = plant(session)
        device = Device(key="cm-1", name="CM", protocol=Protocol.MQTT, asset_id=ids["pump"])
        sensor = Sensor(key="vibration", name="Pump vibration", type="vibration", unit="mm/s")
        device.sensors.append(sensor)
        session.add(device)
        session.flush()
        session.add(
            AlertRule(
                name="Vibration",
                sensor_id=sensor.id,
                condition={
                    "kind": "threshold",
                    "direction": "above",
                    "levels": [
                        {"severity": "warning", "threshold": 7.1},
                        {"severity": "critical", "threshold": THRESHOLD},
                    ],
                },
            )
        )
        schedule = MaintenanceSchedule(
            asset_id=ids["pump"],
            name="Pump quarterly service",
            interval_count=3,
            interval_unit=IntervalUnit.MONTHS,
            next_due_at=NOW + dt.timedelta(days=60),
        )
        session.add(schedule)
        session.flush()
        rows = [ReadingRow(sensor.id, to_ms(t), v, 0) for t, v in points]
        write_readings(session.connection(), rows)
        return sensor.id, schedule.id


def _settings(settings: Settings, mode: str) -> Settings:
    return settings.model_copy(update={"pm_pull_forward": mode})


def test_the_job_stores_the_prediction_and_proposes_an_earlier_pm(
    session_factory: sessionmaker[Session], settings: Settings
) -> None:
    sensor_id, schedule_id = _setup(session_factory, _degrading())
    assert update_predictions(session_factory, _settings(settings, "propose"), NOW) == 1
    with session_factory() as session:
        prediction = session.scalars(select(SensorPrediction)).one()
        assert prediction.sensor_id == sensor_id
        assert prediction.threshold == THRESHOLD
        assert prediction.crossing_at is not None
        expected = START + dt.timedelta(days=28)
        assert abs(prediction.crossing_at - expected) < dt.timedelta(days=1)
        schedule = session.get(MaintenanceSchedule, schedule_id)
        assert schedule is not None
        assert schedule.proposed_due_at == prediction.crossing_at
        assert schedule.next_due_at == NOW + dt.timedelta(days=60)
        assert "critical 11 mm/s" in (schedule.proposal_reason or "")
    # Running again changes nothing (no churn in the audit trail).
    update_predictions(session_factory, _settings(settings, "propose"), NOW)
    with session_factory() as session:
        again = session.get(MaintenanceSchedule, schedule_id)
        assert again is not None
        assert again.proposed_due_at == prediction.crossing_at


def test_move_mode_moves_the_due_date_and_records_why(
    session_factory: sessionmaker[Session], settings: Settings
) -> None:
    _, schedule_id = _setup(session_factory, _degrading())
    update_predictions(session_factory, _settings(settings, "move"), NOW)
    with session_factory() as session:
        prediction = session.scalars(select(SensorPrediction)).one()
        schedule = session.get(MaintenanceSchedule, schedule_id)
        assert schedule is not None
        assert schedule.next_due_at == prediction.crossing_at
        assert schedule.proposed_due_at is None
        assert (schedule.proposal_reason or "").startswith("Moved from 2027-01-26")


def test_off_mode_leaves_the_schedule_alone(
    session_factory: sessionmaker[Session], settings: Settings
) -> None:
    _, schedule_id = _setup(session_factory, _degrading())
    update_predictions(session_factory, _settings(settings, "off"), NOW)
    with session_factory() as session:
        assert session.scalars(select(SensorPrediction)).one().crossing_at is not None
        schedule = session.get(MaintenanceSchedule, schedule_id)
        assert schedule is not None
        assert schedule.next_due_at == NOW + dt.timedelta(days=60)
        assert schedule.proposed_due_at is None
        assert schedule.proposal_reason is None


def test_a_flat_sensor_predicts_nothing_and_withdraws_a_stale_proposal(
    session_factory: sessionmaker[Session], settings: Settings
) -> None:
    _, schedule_id = _setup(session_factory, _flat())
    with session_factory() as session, session.begin():
        schedule = session.get(MaintenanceSchedule, schedule_id)
        assert schedule is not None
        schedule.proposed_due_at = NOW + dt.timedelta(days=3)
        schedule.proposal_reason = "an old trend"
    update_predictions(session_factory, _settings(settings, "propose"), NOW)
    with session_factory() as session:
        prediction = session.scalars(select(SensorPrediction)).one()
        assert prediction.crossing_at is None
        schedule = session.get(MaintenanceSchedule, schedule_id)
        assert schedule is not None
        assert schedule.proposed_due_at is None
        assert schedule.proposal_reason is None


def test_the_asset_page_shows_sensors_the_predicted_crossing_and_the_proposal(
    session_factory: sessionmaker[Session],
    settings: Settings,
    client: TestClient,
    make_user: MakeUser,
) -> None:
    _setup(session_factory, _degrading())
    update_predictions(session_factory, _settings(settings, "propose"), NOW)
    make_user(Role.ADMIN, username="ada")
    login = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', login.text)
    assert token is not None
    client.post(
        "/login",
        data={"username": "ada", "password": PASSWORD, "next": "/", "csrf_token": token[1]},
    )
    with session_factory() as session:
        prediction = session.scalars(select(SensorPrediction)).one()
        pump = session.scalars(select(Asset).where(Asset.tag == "P-1")).one()
    assert prediction.crossing_at is not None
    page = client.get(f"/assets/{pump.id}")
    assert page.status_code == 200
    assert "Sensors" in page.text
    assert "Pump vibration" in page.text
    day = f"{prediction.crossing_at:%Y-%m-%d %H:%M} UTC"
    assert day in page.text  # the crossing, and the proposal to bring the PM forward to it
    assert "Proposed: bring forward to" in page.text
    assert "critical 11 mm/s" in page.text
