"""Historical trends: sensors over a range on one chart, downsampled by the server, CSV export."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Annotated, Any, Final

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, StreamingResponse
from sqlalchemy import Engine, select

from maintainpro.api.deps import SessionDep
from maintainpro.core.assets import Asset
from maintainpro.core.db import utcnow
from maintainpro.core.users import Permission
from maintainpro.iot.devices import Device, Sensor
from maintainpro.iot.timeseries import QUALITY_NAMES, export_csv, query_readings
from maintainpro.web.pages import render
from maintainpro.web.session_auth import PageUser, page_permission

router = APIRouter(include_in_schema=False)
CanRead = page_permission(Permission.DEVICES_READ)
RANGES: Final = (
    ("1h", "Last hour", dt.timedelta(hours=1)),
    ("24h", "Last 24 hours", dt.timedelta(hours=24)),
    ("7d", "Last 7 days", dt.timedelta(days=7)),
    ("30d", "Last 30 days", dt.timedelta(days=30)),
    ("1y", "Last year", dt.timedelta(days=365)),
)
MAX_RANGE: Final = dt.timedelta(days=3660)
MAX_SENSORS: Final = 20
SensorIds = Annotated[list[int], Query(max_length=MAX_SENSORS)]
RangeKey = Annotated[str, Query(alias="range", max_length=10)]


def _utc(moment: dt.datetime | None) -> dt.datetime | None:
    # The pages show UTC everywhere; a datetime-local input sends no offset.
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=dt.UTC)
    return moment


def _window(
    range_key: str, start: dt.datetime | None, end: dt.datetime | None
) -> tuple[dt.datetime, dt.datetime]:
    now = utcnow()
    start, end = _utc(start), _utc(end)
    if range_key == "custom" or start is not None:
        end = end or now
        start = start or end - dt.timedelta(hours=1)
    else:
        span = next((r[2] for r in RANGES if r[0] == range_key), RANGES[0][2])
        end, start = now, now - span
    if start >= end:
        raise HTTPException(422, "the start of the range must be before its end")
    if end - start > MAX_RANGE:
        raise HTTPException(422, "the range may span at most ten years")
    return start, end


def _sensor_choices(db: SessionDep) -> list[dict[str, Any]]:
    rows = db.execute(
        select(Sensor, Device.key, Asset.tag, Asset.name)
        .join(Device, Sensor.device_id == Device.id)
        .outerjoin(Asset, Device.asset_id == Asset.id)
        .order_by(Asset.tag, Device.key, Sensor.key)
    ).all()
    groups: dict[str, list[dict[str, Any]]] = {}
    for sensor, device_key, tag, asset_name in rows:
        group = f"{tag} · {asset_name}" if tag else "Not on an asset"
        groups.setdefault(group, []).append(
            {
                "id": sensor.id,
                "label": f"{sensor.name or sensor.key} ({device_key}/{sensor.key})",
                "unit": sensor.unit,
            }
        )
    return [{"group": g, "sensors": s} for g, s in groups.items()]


@router.get("/trends", dependencies=[CanRead])
def trends_page(
    request: Request,
    db: SessionDep,
    user: PageUser,
    sensor_id: Annotated[list[int] | None, Query(max_length=MAX_SENSORS)] = None,
    range_key: RangeKey = "24h",
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
) -> HTMLResponse:
    """Choose sensors and a range; the chart is drawn from /trends/data by trends.js."""
    if range_key not in {r[0] for r in RANGES} | {"custom"}:
        range_key = "24h"
    return render(
        request,
        "trends.html",
        user,
        groups=_sensor_choices(db),
        selected=set(sensor_id or ()),
        ranges=RANGES,
        range_key=range_key,
        start=_utc(start),
        end=_utc(end),
    )


@router.get("/trends/data", dependencies=[CanRead])
def trends_data(
    request: Request,
    db: SessionDep,
    user: PageUser,
    sensor_id: SensorIds,
    range_key: RangeKey = "24h",
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    max_points: Annotated[int, Query(ge=10, le=5000)] = 1000,
) -> dict[str, Any]:
    """Downsampled series of the sensors (min/max band and average when bucketed)."""
    start, end = _window(range_key, start, end)
    rows = db.execute(
        select(Sensor, Device.key)
        .join(Device, Sensor.device_id == Device.id)
        .where(Sensor.id.in_(sensor_id))
    ).all()
    known = {sensor.id: (sensor, device_key) for sensor, device_key in rows}
    cold_dir = request.app.state.settings.cold_dir
    connection = db.connection()
    series = []
    for pk in dict.fromkeys(sensor_id):
        if pk not in known:
            continue
        sensor, device_key = known[pk]
        found = query_readings(connection, pk, start, end, max_points, cold_dir=cold_dir)
        item: dict[str, Any] = {
            "sensor_id": pk,
            "name": sensor.name or sensor.key,
            "label": f"{device_key}/{sensor.key}",
            "unit": sensor.unit,
            "resolution": found.resolution,
            "bucket_seconds": found.bucket.total_seconds() if found.bucket else None,
        }
        if found.resolution == "raw":
            item["x"] = [p.ts.isoformat() for p in found.points]
            item["y"] = [p.value for p in found.points]
            item["quality"] = [QUALITY_NAMES.get(p.quality, "bad") for p in found.points]
        else:
            item["x"] = [b.start.isoformat() for b in found.buckets]
            item["y"] = [b.avg for b in found.buckets]
            item["min"] = [b.min for b in found.buckets]
            item["max"] = [b.max for b in found.buckets]
        series.append(item)
    return {"start": start.isoformat(), "end": end.isoformat(), "series": series}


@router.get("/trends/readings.csv", dependencies=[CanRead])
def trends_csv(
    request: Request,
    db: SessionDep,
    user: PageUser,
    sensor_id: SensorIds,
    range_key: RangeKey = "24h",
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
) -> StreamingResponse:
    """Raw readings of the chosen sensors as CSV (the same file as /api/v1/readings.csv)."""
    start, end = _window(range_key, start, end)
    found = sorted(set(db.scalars(select(Sensor.id).where(Sensor.id.in_(sensor_id))).all()))
    if not found:
        raise HTTPException(404, "none of these sensors exists")
    engine: Engine = request.app.state.engine
    cold_dir = request.app.state.settings.cold_dir

    def chunks() -> Iterator[str]:
        # Its own connection: the request's session is closed before the body is streamed.
        with engine.connect() as connection:
            yield from export_csv(connection, found, start, end, cold_dir=cold_dir)

    name = f"readings-{start:%Y%m%dT%H%M}-{end:%Y%m%dT%H%M}.csv"
    return StreamingResponse(
        chunks(),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
