"""IoT pages: live asset charts, plant overview, device health and log, trends, CSV, no CDN."""

from __future__ import annotations

import datetime as dt
import json
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from html.parser import HTMLParser
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from maintainpro.app import create_app
from maintainpro.config import Settings
from maintainpro.core.db import utcnow
from maintainpro.core.users import Role, User
from maintainpro.iot.alerts import Alert, AlertKind, AlertRule, AlertStatus
from maintainpro.iot.devices import DeadLetter, Device, DeviceEvent, Protocol, Sensor
from maintainpro.iot.timeseries import ReadingRow, to_ms, write_readings
from support import plant

MakeUser = Callable[..., tuple[User, str]]
PASSWORD = "correct horse battery"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
RULE = {
    "kind": "threshold",
    "direction": "above",
    "levels": [{"severity": "warning", "threshold": 80}, {"severity": "critical", "threshold": 95}],
    "clear_at": 75,
}


def _sign_in(http: TestClient | httpx.Client, username: str) -> None:
    page = http.get("/login")
    match = CSRF.search(page.text)
    assert match is not None
    form = {"username": username, "password": PASSWORD, "next": "/", "csrf_token": match[1]}
    assert http.post("/login", data=form, follow_redirects=False).status_code == 303


@pytest.fixture
def world(db: Session, engine: Engine) -> dict[str, Any]:
    """A pump with a monitored device, an open alert, readings, a log entry and a dead letter."""
    ids: dict[str, Any] = plant(db)
    now = utcnow()
    device = Device(key="pump-dev", name="Pump sensors", protocol=Protocol.MQTT)
    device.asset_id = ids["pump"]
    device.last_seen_at = now
    temp = Sensor(key="temp", name="Bearing temperature", type="temperature", unit="°C")
    vib = Sensor(key="vib", type="vibration", unit="mm/s")
    device.sensors.extend([temp, vib])
    plc = Device(key="plc-1", name="PLC", protocol=Protocol.MODBUS, enabled=False)
    db.add_all([device, plc])
    db.flush()
    db.add(AlertRule(name="Hot bearing", sensor_id=temp.id, condition=RULE))
    db.add(
        Alert(
            rule_id=None,
            sensor_id=temp.id,
            device_id=device.id,
            asset_id=ids["pump"],
            kind=AlertKind.THRESHOLD,
            severity="critical",
            status=AlertStatus.ACTIVE,
            title="Bearing temperature critical",
            value=97.0,
            raised_at=now,
        )
    )
    db.add(DeviceEvent(device_id=device.id, at=now, state="error", message="broker went away"))
    db.add(DeadLetter(source="mqtt", code="unknown_device", reason="nope", device_key="x"))
    db.commit()
    # The last hour every 10 s, plus 7 days every 5 minutes for the trends page.
    end = to_ms(now)
    recent = [ReadingRow(temp.id, end - i * 10_000, 70.0 + (i % 7), 0) for i in range(1, 360)]
    week = [
        ReadingRow(temp.id, end - 3_600_000 - i * 300_000, 60.0 + (i % 11), 0) for i in range(2016)
    ]
    vibs = [ReadingRow(vib.id, end - i * 1000, 2.5, 0) for i in range(1, 31)]
    with engine.begin() as connection:
        write_readings(connection, recent + week + vibs)
    ids.update(temp=temp.id, vib=vib.id, device=device.id, now=now)
    return ids


@pytest.fixture
def signed_in(client: TestClient, make_user: MakeUser) -> TestClient:
    make_user(Role.ADMIN, username="ada")
    _sign_in(client, "ada")
    return client


def _live_config(html: str) -> dict[str, Any]:
    match = re.search(r'<script type="application/json" id="live-config">(.*?)</script>', html)
    assert match is not None
    data: dict[str, Any] = json.loads(match[1])
    return data


def test_asset_page_has_live_charts_thresholds_alerts_and_hooks(
    signed_in: TestClient, world: dict[str, Any]
) -> None:
    page = signed_in.get(f"/assets/{world['pump']}")
    assert page.status_code == 200
    html = page.text
    config = _live_config(html)
    assert config["asset_id"] == world["pump"]
    by_id = {s["id"]: s for s in config["sensors"]}
    temp = by_id[world["temp"]]
    assert temp["unit"] == "°C"
    assert 0 < len(temp["x"]) <= 360
    assert len(temp["x"]) == len(temp["y"])
    assert {(t["label"], t["value"]) for t in temp["thresholds"]} == {
        ("warning 80", 80.0),
        ("critical 95", 95.0),
        ("clear 75", 75.0),
    }
    assert by_id[world["vib"]]["thresholds"] == []
    for sensor_id in (world["temp"], world["vib"]):
        assert re.search(rf'data-sensor-id="{sensor_id}" data-live-value', html)
    assert "Bearing temperature critical" in html
    assert "health-critical" in html
    assert "Critical</span>" in html
    assert '<script src="/static/live.js"></script>' in html
    assert f'id="live-{world["temp"]}"' in html


def test_asset_without_sensors_has_no_live_section(
    signed_in: TestClient, world: dict[str, Any]
) -> None:
    html = signed_in.get(f"/assets/{world['motor']}").text
    assert "live-config" not in html
    assert "live.js" not in html
    assert "No open alerts." in html


def test_plant_overview_shows_health_connectivity_rate_and_dead_letters(
    signed_in: TestClient, world: dict[str, Any]
) -> None:
    html = signed_in.get("/plant").text
    assert f'data-asset-id="{world["pump"]}" data-health="critical"' in html
    assert f'data-asset-id="{world["motor"]}" data-health="ok"' in html
    # Colour is never the only cue: every badge carries its text.
    assert ">Critical</span>" in html
    assert ">OK</span>" in html
    counts = dict(re.findall(r'data-count="(\w+)">(\d+)<', html))
    assert counts == {"online": "1", "offline": "0", "error": "0", "disabled": "1"}
    rate = re.search(r"data-ingest-rate>([\d.]+) ", html)
    assert rate is not None
    # 5 temperature readings (every 10 s) and 30 vibration ones (every s) in the last minute.
    assert 0.5 <= float(rate[1]) <= 36 / 60 + 0.01
    assert re.search(r"data-dead-letters>1<", html)


def test_devices_page_has_health_columns_and_edge_agents(
    signed_in: TestClient, world: dict[str, Any]
) -> None:
    html = signed_in.get("/devices").text
    for heading in ("Protocol", "Last heartbeat", "Messages", "Errors", "Last error"):
        assert f'<th scope="col">{heading}</th>' in html
    assert "No edge agents registered." in html
    assert ">Online</span>" in html
    assert ">Disabled</span>" in html


def test_device_page_shows_the_connection_log(signed_in: TestClient, world: dict[str, Any]) -> None:
    html = signed_in.get("/devices/pump-dev").text
    assert "Connection log" in html
    assert 'data-state="error"' in html
    assert "broker went away" in html


def test_trends_page_groups_sensors_by_asset(signed_in: TestClient, world: dict[str, Any]) -> None:
    html = signed_in.get(f"/trends?sensor_id={world['temp']}&range=7d").text
    assert '<optgroup label="P-1 · Pump">' in html
    assert f'<option value="{world["temp"]}" selected>' in html
    assert '<option value="7d" selected>' in html
    for control in ("sensor-select", "range-select", "start-input", "end-input"):
        assert f'<label for="{control}">' in html


def test_trends_data_is_downsampled_with_a_band(
    signed_in: TestClient, world: dict[str, Any]
) -> None:
    week = signed_in.get(
        "/trends/data",
        params={"sensor_id": [world["temp"], world["vib"]], "range": "7d", "max_points": 200},
    )
    assert week.status_code == 200
    temp, vib = week.json()["series"]
    assert temp["resolution"] != "raw"
    assert temp["bucket_seconds"] > 0
    assert 0 < len(temp["x"]) <= 200
    assert all(
        lo <= avg <= hi for lo, avg, hi in zip(temp["min"], temp["y"], temp["max"], strict=False)
    )
    assert vib["unit"] == "mm/s"
    hour = signed_in.get("/trends/data", params={"sensor_id": world["vib"], "range": "1h"})
    (raw,) = hour.json()["series"]
    assert raw["resolution"] == "raw"
    assert len(raw["y"]) == 30
    assert "min" not in raw
    start = (world["now"] - dt.timedelta(minutes=2)).strftime("%Y-%m-%dT%H:%M:%S")
    custom = signed_in.get(
        "/trends/data", params={"sensor_id": world["vib"], "range": "custom", "start": start}
    )
    assert custom.status_code == 200
    assert len(custom.json()["series"][0]["y"]) == 30


def test_csv_export_works_with_the_page_session(
    signed_in: TestClient, world: dict[str, Any]
) -> None:
    response = signed_in.get("/trends/readings.csv", params={"sensor_id": world["vib"]})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    lines = response.text.strip().splitlines()
    assert len(lines) == 31  # header and 30 readings


def test_trend_routes_need_a_session(client: TestClient, world: dict[str, Any]) -> None:
    response = client.get(f"/trends/data?sensor_id={world['temp']}", follow_redirects=False)
    assert response.status_code == 303
    assert client.get("/trends/readings.csv?sensor_id=1", follow_redirects=False).status_code == 303


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [v for k, v in attrs if k in ("src", "href", "action") and v is not None]


def test_no_page_loads_anything_from_elsewhere(
    signed_in: TestClient, world: dict[str, Any]
) -> None:
    paths = ["/plant", f"/assets/{world['pump']}", "/devices", "/devices/pump-dev", "/trends"]
    for path in paths:
        parser = _Links()
        parser.feed(signed_in.get(path).text)
        assert parser.urls, path
        for url in parser.urls:
            assert url.startswith(("/", "#", "?")), (path, url)
            assert not url.startswith("//"), (path, url)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def live_server(settings: Settings, engine: Engine) -> Iterator[tuple[FastAPI, str]]:
    """The app served by uvicorn on a free port in a thread (SSE needs a real server)."""
    app = create_app(settings)
    app.state.live_keepalive_s = 0.2
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=1
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started
    yield app, f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=5)


def _first_data(
    app: FastAPI, http: httpx.Client, url: str, events: list[tuple[str, dict[str, Any]]]
) -> dict[str, Any]:
    with http.stream("GET", url) as response:
        assert response.status_code == 200
        lines = response.iter_lines()
        assert next(lines) == "retry: 5000"
        for kind, data in events:
            app.state.live.publish(kind, data)
        for line in lines:
            if line.startswith("data: {"):
                found: dict[str, Any] = json.loads(line.removeprefix("data: "))
                return found
    raise AssertionError("no event arrived")


def test_stream_filters_by_sensor_and_by_asset_for_a_page_session(
    live_server: tuple[FastAPI, str], make_user: MakeUser, world: dict[str, Any]
) -> None:
    app, base = live_server
    make_user(Role.TECHNICIAN, username="tess")
    other = {"sensor_id": 999_999, "ts": "x", "value": 1.0, "quality": "good"}
    mine = {"sensor_id": world["vib"], "ts": "y", "value": 2.5, "quality": "good"}
    with httpx.Client(base_url=base, timeout=5) as http:
        _sign_in(http, "tess")
        got = _first_data(
            app,
            http,
            f"/api/v1/events/stream?sensor_id={world['vib']}&sensor_id=12345",
            [("reading", other), ("alert.cleared", {"alert_id": 1}), ("reading", mine)],
        )
        assert got == mine
        got = _first_data(
            app,
            http,
            f"/api/v1/events/stream?asset_id={world['pump']}",
            [("reading", other), ("reading", mine)],
        )
        assert got == mine
