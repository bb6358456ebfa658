"""fact_sensor_hour: the operational hourly rollups, cleaned and in canonical units."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Final

import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Connection, select

from maintainpro.analytics import schema
from maintainpro.analytics.extract import fetch, stream_driver
from maintainpro.analytics.jobs.base import JobResult, Window, source
from maintainpro.analytics.schema import WarehouseTable
from maintainpro.analytics.transforms import SENSOR_HOUR_INPUT, clean_sensor_hours
from maintainpro.analytics.warehouse import WarehouseTarget

EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
ROLLUP_SCHEMA: Final = pa.schema([SENSOR_HOUR_INPUT.field(i) for i in range(7)])
SENSOR_SCHEMA: Final = pa.schema(
    [pa.field("sensor_id", pa.int64())] + [SENSOR_HOUR_INPUT.field(i) for i in range(7, 12)]
)
_COLUMNS: Final = (
    "r.sensor_id, r.bucket, r.reading_count, r.value_sum, r.value_min, r.value_max, r.last_value"
)
# A full load scans the table in key order; an incremental one goes sensor by sensor through
# the (sensor_id, bucket) primary key, so it reads only the new hours however big the table.
FULL_SCAN: Final = f"SELECT {_COLUMNS} FROM sensor_rollups_1h r"  # noqa: S608 - constant text
SINCE_SCAN: Final = (
    f"SELECT {_COLUMNS} FROM sensors s "  # noqa: S608 - constant text
    "JOIN sensor_rollups_1h r ON r.sensor_id = s.id AND r.bucket >= {p}"
)


def floor_hour(moment: dt.datetime) -> dt.datetime:
    """The start of the UTC hour containing ``moment``."""
    return moment.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)


def _ms(moment: dt.datetime) -> int:
    return int((moment - EPOCH) / dt.timedelta(milliseconds=1))


def sensor_lookup(connection: Connection) -> pa.Table:
    """Per sensor: asset, site, unit and range, to attach to its rollups."""
    sensors, devices, assets = source("sensors"), source("devices"), source("assets")
    stmt = (
        select(
            sensors.c.id,
            devices.c.asset_id,
            assets.c.site_id,
            sensors.c.unit,
            sensors.c.min_value,
            sensors.c.max_value,
        )
        .join(devices, devices.c.id == sensors.c.device_id)
        .outerjoin(assets, assets.c.id == devices.c.asset_id)
    )
    return fetch(connection, stmt, SENSOR_SCHEMA)


def attach_sensors(rollups: pa.Table, sensors: pa.Table) -> tuple[pa.Table, int]:
    """Rollups with their sensor's attributes; rollups of unknown sensors are dropped."""
    position = pc.index_in(rollups["sensor_id"], value_set=sensors["sensor_id"])
    known = pc.is_valid(position)
    kept = rollups.filter(known)
    where = position.filter(known)
    columns = {name: kept[name] for name in ROLLUP_SCHEMA.names}
    for name in SENSOR_SCHEMA.names[1:]:
        columns[name] = pc.take(sensors[name], where)
    return pa.table(columns, schema=SENSOR_HOUR_INPUT), rollups.num_rows - kept.num_rows


@dataclass(frozen=True)
class SensorHoursJob:
    """Loads hourly rollups by bucket time.

    The rollups are merged in place as readings arrive and carry no change time, so the
    watermark is the newest hour loaded and each run re-reads from ``overlap`` before it: the
    hour still filling, and readings that arrive a little late. Readings older than that
    (an edge gateway back after a long outage) reach the warehouse with a full build.
    """

    name: str = "fact_sensor_hour"
    description: str = "Hourly sensor rollups, cleaned, in canonical units."
    outputs: tuple[WarehouseTable, ...] = (schema.FACT_SENSOR_HOUR,)
    overlap: dt.timedelta = dt.timedelta(hours=2)
    batch: int = 200_000

    def run(self, source_db: Connection, target: WarehouseTarget, window: Window) -> JobResult:
        """Replace the fact rows from the window's first hour on with the source's."""
        table = schema.FACT_SENSOR_HOUR
        sensors = sensor_lookup(source_db)
        if window.since is None:
            target.delete_all(table)
            sql, params = FULL_SCAN, []
        else:
            first_hour = floor_hour(window.since)
            target.delete_since(table, "hour_start", first_hour)
            sql, params = SINCE_SCAN, [_ms(first_hour)]
        # The watermark stays where it was unless newer hours arrive (EPOCH before any data).
        result = JobResult(watermark=window.since + self.overlap if window.since else EPOCH)
        newest_ms: int | None = None
        for raw in stream_driver(source_db, sql, params, ROLLUP_SCHEMA, self.batch):
            attached, unknown = attach_sensors(raw, sensors)
            rows, rejected = clean_sensor_hours(attached)
            result.rows_in += raw.num_rows
            result.rows_rejected += rejected + unknown
            result.rows_out += target.insert(table, rows)
            top = pc.max(raw["bucket"]).as_py()
            if top is not None and (newest_ms is None or top > newest_ms):
                newest_ms = top
        if newest_ms is not None:
            newest = EPOCH + dt.timedelta(milliseconds=newest_ms)
            if result.watermark is None or newest > result.watermark:
                result.watermark = newest
        return result
