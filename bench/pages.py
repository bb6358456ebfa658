"""Page server time: the plant overview and an asset page on a plant of 200 devices, 2,000 sensors.

Seeds a fresh database with 20 lines of 10 assets, one device of 10 sensors per asset, a week of
1-minute readings per sensor written through ``write_readings`` (rollups included), the demo's
vibration alert rules and some open alerts; then serves the app in-process (TestClient, no
background jobs) signed in as an administrator and times GET /plant and GET /assets/{id}
(the asset with the most sensors' history) over several requests after warm-up. Server time
is the time from sending the request to having the whole response body, in process. Not a
test: run it by hand, e.g.

    .venv/bin/python bench/pages.py
    .venv/bin/python bench/pages.py --days 1 --requests 10
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import re
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session
from storage import database, print_header

from maintainpro.app import create_app
from maintainpro.config import Settings
from maintainpro.core.assets import Asset, Location, LocationKind, Site
from maintainpro.core.db import build_session_factory, utcnow
from maintainpro.core.users import Role, User, hash_password
from maintainpro.demo.alerts import seed_demo_alert_rules
from maintainpro.iot.alerts import Alert, AlertKind, AlertStatus
from maintainpro.iot.devices import Device, Protocol, Sensor
from maintainpro.iot.timeseries import ReadingRow, to_ms, write_readings

GOAL_MS = 300.0
LINES = 20
ASSETS_PER_LINE = 10
SENSOR_KINDS = (
    ("vibration", "vibration", "mm/s", 2.0),
    ("temperature", "temperature", "°C", 55.0),
    ("pressure", "pressure", "bar", 6.0),
    ("flow", "flow", "m3/h", 40.0),
    ("current", "current", "A", 18.0),
    ("speed", "speed", "rpm", 1480.0),
    ("vibration_axial", "vibration", "mm/s", 1.5),
    ("temperature_winding", "temperature", "°C", 70.0),
    ("level", "level", "%", 60.0),
    ("power", "power", "kW", 11.0),
)
PASSWORD = "bench password 1234"  # noqa: S105 - a throwaway database
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def seed_plant(session: Session) -> list[int]:
    """Sites, lines, assets, devices and sensors; returns the sensor ids."""
    site = Site(code="B1", name="Bench plant")
    session.add(site)
    session.flush()
    sensors: list[Sensor] = []
    for line_no in range(1, LINES + 1):
        line = Location(
            site_id=site.id, code=f"L{line_no:02}", name=f"Line {line_no}", kind=LocationKind.LINE
        )
        session.add(line)
        session.flush()
        for n in range(1, ASSETS_PER_LINE + 1):
            tag = f"P-{line_no:02}{n:02}"
            asset = Asset(
                tag=tag,
                name=f"Pump {tag}",
                site_id=site.id,
                location_id=line.id,
                asset_class="pump",
            )
            session.add(asset)
            session.flush()
            device = Device(
                key=f"tx-{tag.lower()}",
                name=f"Transmitter {tag}",
                protocol=Protocol.MQTT,
                asset_id=asset.id,
                last_seen_at=utcnow(),
            )
            session.add(device)
            session.flush()
            for key, kind, unit, _ in SENSOR_KINDS:
                sensor = Sensor(device_id=device.id, key=key, name=key, type=kind, unit=unit)
                session.add(sensor)
                sensors.append(sensor)
    session.add(User(username="admin", role=Role.ADMIN, password_hash=hash_password(PASSWORD)))
    session.flush()
    seed_demo_alert_rules(session)
    return [s.id for s in sensors]


def history(sensor_ids: list[int], start: dt.datetime, minutes: int) -> Iterator[list[ReadingRow]]:
    """A reading a minute per sensor, sensor by sensor, in batches of about 50,000."""
    start_ms = to_ms(start) - to_ms(start) % 60_000
    batch: list[ReadingRow] = []
    for index, sensor_id in enumerate(sensor_ids):
        base = SENSOR_KINDS[index % len(SENSOR_KINDS)][3]
        phase = index * 0.37
        batch.extend(
            ReadingRow(
                sensor_id,
                start_ms + m * 60_000,
                round(base * (1 + 0.05 * math.sin(m / 90 + phase)), 3),
                0,
            )
            for m in range(minutes)
        )
        if len(batch) >= 50_000:
            yield batch
            batch = []
    if batch:
        yield batch


def seed(engine: Engine, days: float) -> tuple[list[int], int, float]:
    """Seed everything; returns sensor ids, readings written and seconds taken."""
    began = time.perf_counter()
    factory = build_session_factory(engine)
    with factory() as session, session.begin():
        sensor_ids = seed_plant(session)
        now = utcnow()
        for i, sensor_id in enumerate(sensor_ids[:200:4]):
            session.add(
                Alert(
                    sensor_id=sensor_id,
                    kind=AlertKind.THRESHOLD,
                    severity="warning",
                    status=AlertStatus.ACTIVE,
                    title=f"bench alert {i}",
                    raised_at=now - dt.timedelta(minutes=i),
                )
            )
    minutes = int(days * 1440)
    written = 0
    start = utcnow() - dt.timedelta(minutes=minutes)
    for batch in history(sensor_ids, start, minutes):
        with engine.begin() as connection:
            written += write_readings(connection, batch)
    return sensor_ids, written, time.perf_counter() - began


def timed(client: TestClient, path: str, warmup: int, requests: int) -> list[float]:
    """Milliseconds per request after the warm-up; every response must be a 200."""
    times = []
    for i in range(warmup + requests):
        began = time.perf_counter()
        response = client.get(path)
        elapsed = (time.perf_counter() - began) * 1000
        if response.status_code != 200:
            raise SystemExit(f"GET {path} answered {response.status_code}")
        if i >= warmup:
            times.append(elapsed)
    return times


def percentile(values: list[float], share: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(share * len(ordered)) - 1)]


def main() -> None:
    """Seed, then time the pages."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=float, default=7.0)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    print_header("pages: plant overview and asset page")
    with (
        tempfile.TemporaryDirectory(dir=args.workdir) as workdir,
        database("sqlite", Path(workdir)) as engine,
    ):
        sensor_ids, written, seconds = seed(engine, args.days)
        print(
            f"seeded {len(sensor_ids) // len(SENSOR_KINDS)} devices, {len(sensor_ids)} sensors, "
            f"{written:,} readings ({args.days:g} days at 1/min) in {seconds:.0f} s"
        )
        settings = Settings(
            database_url=str(engine.url),
            secret_key="bench-" + "k" * 40,
            cookie_secure=False,
            run_background_jobs=False,
            cold_dir=Path(workdir) / "cold",
        )
        with TestClient(create_app(settings)) as client:
            token = CSRF.search(client.get("/login").text)
            assert token is not None
            client.post(
                "/login",
                data={"username": "admin", "password": PASSWORD, "csrf_token": token.group(1)},
            )
            print(f"| page | requests | median | p95 | max | goal < {GOAL_MS:.0f} ms |")
            print("|---|---:|---:|---:|---:|---|")
            for label, path in (("plant overview", "/plant"), ("asset page", "/assets/1")):
                times = timed(client, path, args.warmup, args.requests)
                p50 = statistics.median(times)
                p95 = percentile(times, 0.95)
                verdict = "met" if p95 < GOAL_MS else "missed"
                print(
                    f"| {label} (`GET {path}`) | {len(times)} | {p50:.1f} ms | {p95:.1f} ms | "
                    f"{max(times):.1f} ms | {verdict} |"
                )


if __name__ == "__main__":
    main()
