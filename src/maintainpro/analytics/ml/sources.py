"""Where training data comes from: the warehouse when it has been built, else the operational
store. Raw readings (for anomaly models, which score raw live readings) always come from the
operational store, the only place that keeps them; hourly values (for degradation trends) come
from `fact_sensor_hour` when the warehouse exists, completed from the operational hourly rollups
for the hours the warehouse has not loaded yet."""

from __future__ import annotations

import datetime as dt
from typing import Protocol

import duckdb
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from maintainpro.analytics.transforms import unit_rule
from maintainpro.analytics.warehouse import WarehouseError, connect, naive_utc, warehouse_file
from maintainpro.config import Settings
from maintainpro.iot.devices import Sensor
from maintainpro.iot.timeseries import readings_table, to_ms
from maintainpro.iot.trends import hourly_averages


class TrainingSource(Protocol):
    """What the training jobs read."""

    def raw(self, sensor_id: int, start: dt.datetime, end: dt.datetime) -> list[float]:
        """A sensor's raw good-quality values with start <= ts < end, oldest first."""

    def hourly(
        self, sensor_id: int, start: dt.datetime, end: dt.datetime
    ) -> list[tuple[dt.datetime, float]]:
        """(hour middle, average) of a sensor with start <= hour < end, oldest first."""


class OperationalSource:
    """Training data from the operational database (raw readings and hourly rollups)."""

    def __init__(self, factory: sessionmaker[Session]) -> None:
        """Read through this session factory."""
        self.factory = factory

    def raw(self, sensor_id: int, start: dt.datetime, end: dt.datetime) -> list[float]:
        """A sensor's raw good-quality values with start <= ts < end, oldest first."""
        c = readings_table.c
        with self.factory() as session:
            rows = session.execute(
                select(c.value)
                .where(
                    c.sensor_id == sensor_id,
                    c.ts >= to_ms(start),
                    c.ts < to_ms(end),
                    c.quality == 0,
                )
                .order_by(c.ts)
            )
            return [float(v) for (v,) in rows]

    def hourly(
        self, sensor_id: int, start: dt.datetime, end: dt.datetime
    ) -> list[tuple[dt.datetime, float]]:
        """(hour middle, average) from the operational hourly rollups."""
        with self.factory() as session:
            return hourly_averages(session, sensor_id, start, end)


class WarehouseSource(OperationalSource):
    """Hourly values from the warehouse's fact_sensor_hour; raw readings from operations."""

    def __init__(self, factory: sessionmaker[Session], settings: Settings) -> None:
        """Read the warehouse of these settings."""
        super().__init__(factory)
        self.path = warehouse_file(settings)

    def hourly(
        self, sensor_id: int, start: dt.datetime, end: dt.datetime
    ) -> list[tuple[dt.datetime, float]]:
        """(hour middle, average) from fact_sensor_hour, completed from operations.

        Hours after the warehouse's newest one (it is loaded periodically, so it lags) come from
        the operational rollups, as does everything when the file is busy or not yet built.
        """
        try:
            connection = connect(self.path, read_only=True)
        except WarehouseError:
            return super().hourly(sensor_id, start, end)
        try:
            rows = connection.execute(
                "SELECT hour_start, value_avg FROM fact_sensor_hour WHERE sensor_key = ? "
                "AND hour_start >= ? AND hour_start < ? ORDER BY hour_start",
                [sensor_id, naive_utc(start), naive_utc(end)],
            ).fetchall()
        except duckdb.Error:
            # A warehouse file without its tables yet (only predictions written so far).
            return super().hourly(sensor_id, start, end)
        finally:
            connection.close()
        if not rows:
            return super().hourly(sensor_id, start, end)
        # The warehouse holds canonical units (°F as °C, psi as bar, ...); alert levels and the
        # operational rollups are in the sensor's own unit, so convert back.
        with self.factory() as session:
            rule = unit_rule(session.scalar(select(Sensor.unit).where(Sensor.id == sensor_id)))
        half = dt.timedelta(minutes=30)
        found = [
            (h.replace(tzinfo=dt.UTC) + half, (float(v) - rule.offset) / rule.scale)
            for h, v in rows
            if v is not None
        ]
        after = rows[-1][0].replace(tzinfo=dt.UTC) + dt.timedelta(hours=1)
        return found + (super().hourly(sensor_id, after, end) if after < end else [])


def training_source(factory: sessionmaker[Session], settings: Settings) -> TrainingSource:
    """The warehouse when it has been built, else the operational store."""
    if warehouse_file(settings).exists():
        return WarehouseSource(factory, settings)
    return OperationalSource(factory)
