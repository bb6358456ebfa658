"""A monitored test plant: the test plant of support.py with a vibration transmitter on the
pump, two days of readings with one excursion, and two active alerts."""

from __future__ import annotations

import datetime as dt
import math

from sqlalchemy.orm import Session, sessionmaker

from maintainpro.core.users import Role, User, hash_password
from maintainpro.iot.alerts import Alert, AlertKind, AlertStatus
from maintainpro.iot.devices import Device, Protocol, Sensor
from maintainpro.iot.timeseries import ReadingRow, to_ms, write_readings
from support import plant

USERNAME = "ada"
PASSWORD = "correct horse battery"
# Two days of one reading a minute: few enough that the threshold preview replays raw readings.
HISTORY = dt.timedelta(days=2)
BASELINE = 2.0
# One excursion a day ago: above 6 for 30 minutes, so a warning level of 5 fires exactly once.
EXCURSION_AGO = dt.timedelta(days=1)
EXCURSION = dt.timedelta(minutes=30)
EXCURSION_VALUE = 6.5


def seed_monitored_plant(factory: sessionmaker[Session], now: dt.datetime) -> dict[str, int]:
    """Users, the test plant, a vibration transmitter on the pump with history, and alerts."""
    with factory() as session, session.begin():
        ids = plant(session)
        user = User(username=USERNAME, role=Role.ADMIN, password_hash=hash_password(PASSWORD))
        session.add(user)
        # MQTT devices need no connector of their own (the hub has no broker configured here).
        device = Device(
            key="pump-monitor", name="Pump monitor", protocol=Protocol.MQTT, asset_id=ids["pump"]
        )
        session.add(device)
        session.flush()
        sensor = Sensor(
            device_id=device.id,
            key="vibration",
            name="Bearing vibration",
            type="vibration",
            unit="mm/s",
        )
        session.add(sensor)
        session.flush()
        alerts = [
            Alert(
                sensor_id=sensor.id,
                device_id=device.id,
                asset_id=ids["pump"],
                kind=AlertKind.THRESHOLD,
                severity=severity,
                status=status,
                title=title,
                reason="seeded for the browser tests",
                value=value,
                raised_at=now - dt.timedelta(minutes=minutes),
            )
            for severity, status, title, value, minutes in (
                ("warning", AlertStatus.ACTIVE, "Vibration above warning", 5.2, 30),
                ("major", AlertStatus.ACTIVE, "Vibration above major", 7.4, 20),
            )
        ]
        session.add_all(alerts)
        session.flush()
        ids |= {
            "user": user.id,
            "device": device.id,
            "sensor": sensor.id,
            "alert": alerts[0].id,
            "other_alert": alerts[1].id,
        }
        write_readings(session.connection(), history(sensor.id, now))
    return ids


def history(sensor_id: int, now: dt.datetime) -> list[ReadingRow]:
    """A reading a minute over HISTORY, flat but for one excursion (deterministic)."""
    start = now - HISTORY
    bump_from = now - EXCURSION_AGO
    rows = []
    for minute in range(int(HISTORY.total_seconds() // 60)):
        moment = start + dt.timedelta(minutes=minute)
        in_bump = bump_from <= moment < bump_from + EXCURSION
        value = EXCURSION_VALUE if in_bump else BASELINE + 0.3 * math.sin(minute / 30)
        rows.append(ReadingRow(sensor_id, to_ms(moment), round(value, 3), 0))
    return rows
