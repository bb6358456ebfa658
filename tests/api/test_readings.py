"""The readings API: raw and downsampled series, latest values, CSV export."""

from __future__ import annotations

import datetime as dt

from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from maintainpro.core.users import Role
from maintainpro.iot.devices import Device, Protocol, Sensor
from maintainpro.iot.timeseries import ReadingRow, to_ms, write_readings
from support import bearer

T0 = dt.datetime(2026, 11, 20, 0, 0, tzinfo=dt.UTC)


def _sensor(db: Session) -> int:
    device = Device(key="pump-7", name="Pump 7", protocol=Protocol.MQTT)
    sensor = Sensor(key="vib", type="vibration", unit="mm/s")
    device.sensors.append(sensor)
    db.add(device)
    db.commit()
    return sensor.id


def test_raw_downsampled_latest_and_csv(
    client: TestClient, make_user, db: Session, engine: Engine
) -> None:
    sensor = _sensor(db)
    rows = [
        ReadingRow(sensor, to_ms(T0 + dt.timedelta(seconds=i)), float(i % 100), 0)
        for i in range(7200)
    ]
    with engine.begin() as connection:
        write_readings(connection, rows)
    _, token = make_user(Role.TECHNICIAN)
    headers = bearer(token)

    raw = client.get(
        f"/api/v1/sensors/{sensor}/readings",
        params={"start": "2026-11-20T00:00:00Z", "end": "2026-11-20T00:01:00Z"},
        headers=headers,
    ).json()
    assert raw["resolution"] == "raw"
    assert [p["value"] for p in raw["points"][:3]] == [0.0, 1.0, 2.0]
    assert len(raw["points"]) == 60
    assert raw["unit"] == "mm/s"

    coarse = client.get(
        f"/api/v1/sensors/{sensor}/readings",
        params={"start": "2026-11-20T00:00:00Z", "end": "2026-11-20T02:00:00Z", "max_points": 100},
        headers=headers,
    ).json()
    assert coarse["resolution"] != "raw"
    assert 0 < len(coarse["buckets"]) <= 100
    assert sum(b["count"] for b in coarse["buckets"]) == 7200
    assert min(b["min"] for b in coarse["buckets"]) == 0.0
    assert max(b["max"] for b in coarse["buckets"]) == 99.0

    latest = client.get(
        "/api/v1/readings/latest", params={"sensor_id": sensor}, headers=headers
    ).json()
    assert latest[0]["value"] == float(7199 % 100)
    assert latest[0]["device_key"] == "pump-7"

    csv_text = client.get(
        "/api/v1/readings.csv",
        params={
            "sensor_id": sensor,
            "start": "2026-11-20T00:00:00Z",
            "end": "2026-11-20T00:00:03Z",
        },
        headers=headers,
    )
    assert csv_text.headers["content-type"].startswith("text/csv")
    lines = csv_text.text.strip().splitlines()
    assert len(lines) == 4
    assert "2026-11-20T00:00:02" in lines[-1]


def test_bad_queries_are_problems(client: TestClient, make_user, db: Session) -> None:
    sensor = _sensor(db)
    _, token = make_user(Role.ANALYST)
    headers = bearer(token)
    backwards = client.get(
        f"/api/v1/sensors/{sensor}/readings",
        params={"start": "2026-11-20T01:00:00Z", "end": "2026-11-20T00:00:00Z"},
        headers=headers,
    )
    assert backwards.status_code == 422
    naive = client.get(
        f"/api/v1/sensors/{sensor}/readings",
        params={"start": "2026-11-20T01:00:00"},
        headers=headers,
    )
    assert naive.status_code == 422
    assert client.get("/api/v1/sensors/999999/readings", headers=headers).status_code == 404
    assert (
        client.get(
            "/api/v1/readings.csv", params={"sensor_id": 999999}, headers=headers
        ).status_code
        == 404
    )
    assert client.get(f"/api/v1/sensors/{sensor}/readings").status_code == 401
