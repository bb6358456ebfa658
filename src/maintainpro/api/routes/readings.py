"""Sensor readings: raw or downsampled series, latest values, CSV export."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import AwareDatetime, BaseModel
from sqlalchemy import Engine, select

from maintainpro.api.deps import SessionDep, SettingsDep, require
from maintainpro.api.problems import Problem
from maintainpro.core.db import utcnow
from maintainpro.core.users import Permission
from maintainpro.iot.devices import Device, Sensor
from maintainpro.iot.timeseries import QUALITY_NAMES, export_csv, latest_values, query_readings

router = APIRouter(tags=["readings"])
Reader = Depends(require(Permission.DEVICES_READ))
MAX_RANGE = dt.timedelta(days=3660)


class Point(BaseModel):
    """A stored reading."""

    ts: dt.datetime
    value: float
    quality: str


class BucketOut(BaseModel):
    """Readings of one time bucket summarised."""

    start: dt.datetime
    min: float
    max: float
    avg: float
    count: int


class SeriesOut(BaseModel):
    """A sensor's readings over a range, raw or downsampled by the server."""

    sensor_id: int
    device_key: str
    sensor_key: str
    unit: str
    start: dt.datetime
    end: dt.datetime
    resolution: str
    bucket_seconds: float | None
    points: list[Point]
    buckets: list[BucketOut]


class Latest(BaseModel):
    """The newest reading of a sensor."""

    sensor_id: int
    device_key: str
    sensor_key: str
    unit: str
    ts: dt.datetime
    value: float
    quality: str


def _window(start: dt.datetime | None, end: dt.datetime | None) -> tuple[dt.datetime, dt.datetime]:
    end = end or utcnow()
    start = start or end - dt.timedelta(hours=1)
    if start >= end:
        raise Problem(422, "start must be before end")
    if end - start > MAX_RANGE:
        raise Problem(422, "the range may span at most ten years")
    return start, end


def _sensor(db: SessionDep, sensor_id: int) -> tuple[Sensor, Device]:
    row = db.execute(
        select(Sensor, Device)
        .join(Device, Sensor.device_id == Device.id)
        .where(Sensor.id == sensor_id)
    ).first()
    if row is None:
        raise Problem(404, f"sensor {sensor_id} does not exist")
    return row[0], row[1]


@router.get("/sensors/{sensor_id}/readings", dependencies=[Reader])
def sensor_readings(
    db: SessionDep,
    settings: SettingsDep,
    sensor_id: int,
    start: AwareDatetime | None = None,
    end: AwareDatetime | None = None,
    max_points: Annotated[int, Query(ge=10, le=20_000)] = 2000,
) -> SeriesOut:
    """Readings with start <= ts < end; the server downsamples to at most max_points."""
    sensor, device = _sensor(db, sensor_id)
    start, end = _window(start, end)
    series = query_readings(
        db.connection(), sensor.id, start, end, max_points, cold_dir=settings.cold_dir
    )
    return SeriesOut(
        sensor_id=sensor.id,
        device_key=device.key,
        sensor_key=sensor.key,
        unit=sensor.unit,
        start=series.start,
        end=series.end,
        resolution=series.resolution,
        bucket_seconds=series.bucket.total_seconds() if series.bucket else None,
        points=[
            Point(ts=p.ts, value=p.value, quality=QUALITY_NAMES.get(p.quality, "bad"))
            for p in series.points
        ],
        buckets=[
            BucketOut(start=b.start, min=b.min, max=b.max, avg=b.avg, count=b.count)
            for b in series.buckets
        ],
    )


@router.get("/readings/latest", dependencies=[Reader])
def latest(
    db: SessionDep,
    settings: SettingsDep,
    sensor_id: Annotated[list[int], Query(max_length=2000)],
) -> list[Latest]:
    """The newest reading of each sensor asked for (sensors without data are left out)."""
    rows = db.execute(
        select(Sensor.id, Sensor.key, Sensor.unit, Device.key)
        .join(Device, Sensor.device_id == Device.id)
        .where(Sensor.id.in_(sensor_id))
    ).all()
    known = {r[0]: r for r in rows}
    values = latest_values(db.connection(), list(known), cold_dir=settings.cold_dir)
    return [
        Latest(
            sensor_id=pk,
            device_key=known[pk][3],
            sensor_key=known[pk][1],
            unit=known[pk][2],
            ts=point.ts,
            value=point.value,
            quality=QUALITY_NAMES.get(point.quality, "bad"),
        )
        for pk, point in values.items()
    ]


@router.get("/readings.csv", dependencies=[Reader])
def readings_csv(
    request: Request,
    db: SessionDep,
    settings: SettingsDep,
    sensor_id: Annotated[list[int], Query(max_length=200)],
    start: AwareDatetime | None = None,
    end: AwareDatetime | None = None,
) -> StreamingResponse:
    """Raw readings of one or more sensors as CSV, streamed."""
    start, end = _window(start, end)
    found = set(db.scalars(select(Sensor.id).where(Sensor.id.in_(sensor_id))).all())
    missing = sorted(set(sensor_id) - found)
    if missing:
        raise Problem(404, f"sensors {missing} do not exist")
    engine: Engine = request.app.state.engine

    def chunks() -> Iterator[str]:
        # Its own connection: the request's session is closed before the body is streamed.
        with engine.connect() as connection:
            yield from export_csv(connection, sorted(found), start, end, cold_dir=settings.cold_dir)

    name = f"readings-{start:%Y%m%dT%H%M}-{end:%Y%m%dT%H%M}.csv"
    return StreamingResponse(
        chunks(),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
