"""Two sites for the feed tests: an asset, a device and a sensor on each, and a loose sensor."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from sqlalchemy.orm import Session, sessionmaker

from maintainpro.analytics.feeds.events import EventType, FeedEvent, make_event
from maintainpro.core.assets import Asset, Site
from maintainpro.core.events import deliver_pending, emit
from maintainpro.iot.devices import Device, Protocol, Sensor

T0 = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC)


@dataclass(frozen=True)
class FeedWorld:
    """The ids of the two-site plant."""

    site_a: int
    site_b: int
    asset_a: int
    asset_b: int
    device_a: int
    sensor_a: int
    sensor_b: int
    sensor_loose: int


def seed(factory: sessionmaker[Session]) -> FeedWorld:
    """Sites A and B, pump PA-1 at A and PB-1 at B with a temperature sensor each, and a
    sensor on a device that is on no asset (hence on no site)."""
    with factory() as session, session.begin():
        site_a, site_b = Site(code="A", name="Plant A"), Site(code="B", name="Plant B")
        session.add_all([site_a, site_b])
        session.flush()
        asset_a = Asset(tag="PA-1", name="Pump A", site_id=site_a.id)
        asset_b = Asset(tag="PB-1", name="Pump B", site_id=site_b.id)
        session.add_all([asset_a, asset_b])
        session.flush()
        devices = []
        for key, asset in (("dev-a", asset_a.id), ("dev-b", asset_b.id), ("dev-loose", None)):
            device = Device(key=key, name=key, protocol=Protocol.MQTT, asset_id=asset)
            device.sensors.append(Sensor(key="temp", type="temperature", unit="°C"))
            devices.append(device)
        session.add_all(devices)
        session.flush()
        return FeedWorld(
            site_a=site_a.id,
            site_b=site_b.id,
            asset_a=asset_a.id,
            asset_b=asset_b.id,
            device_a=devices[0].id,
            sensor_a=devices[0].sensors[0].id,
            sensor_b=devices[1].sensors[0].id,
            sensor_loose=devices[2].sensors[0].id,
        )


@dataclass
class FeedServer:
    """The app under uvicorn, its URL, and a way to relay the outbox into its feed."""

    app: FastAPI
    url: str
    factory: sessionmaker[Session]

    def relay_outbox(self) -> int:
        """Hand due outbox events to the feed's handlers, as the outbox job does."""
        return deliver_pending(self.factory, self.app.state.feeds.stream.outbox_handlers())


def wait_for(condition: Callable[[], bool], limit_s: float = 10.0) -> None:
    """Poll until the server has done something it tells no client about (a disconnect)."""
    deadline = time.monotonic() + limit_s
    while not condition():
        assert time.monotonic() < deadline, "the condition never came true"
        time.sleep(0.01)


def emit_alerts(factory: sessionmaker[Session], *alerts: tuple[int, int, int]) -> None:
    """alert.raised events (number, asset, site) in the outbox."""
    with factory() as session, session.begin():
        for number, asset, site in alerts:
            emit(session, "alert.raised", alert_payload(number, asset, site))


def alert_payload(alert_id: int, asset_id: int | None, site_id: int | None) -> dict[str, Any]:
    """An alert.raised payload as the alert engine writes it."""
    return {
        "alert_id": alert_id,
        "rule_id": 1,
        "sensor_id": 2,
        "asset_id": asset_id,
        "site_id": site_id,
        "severity": "critical",
        "title": f"alert {alert_id}",
        "reason": "above limit",
        "value": 11.4,
        "reading_at": T0.isoformat(),
        "url": f"/alerts/{alert_id}",
    }


def events(
    count: int,
    *,
    first_id: int = 1,
    event_type: EventType = "reading",
    site_id: int | None = 1,
) -> list[FeedEvent]:
    """Numbered feed events of one type and site (for push-target tests without a database)."""
    made = []
    for n in range(first_id, first_id + count):
        if event_type == "reading":
            data: dict[str, Any] = {
                "sensor_id": 7,
                "device_id": 3,
                "asset_id": 2,
                "sensor_key": "temp",
                "unit": "°C",
                "value": 20.0 + n / 1000,
                "quality": "good",
            }
        elif event_type == "alert":
            data = {"event": "raised", **alert_payload(n, 2, site_id)}
            data.pop("site_id")
        else:
            data = {"event": "opened", "work_order_id": n, "asset_id": 2, "origin": "manual"}
        made.append(make_event(n, event_type, site_id, T0 + dt.timedelta(seconds=n), data))
    return made
