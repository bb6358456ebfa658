"""Dimension jobs: the calendar, and snapshots of sites, assets, sensors, parts, suppliers,
currencies and users (reloaded whole when their source tables changed: type 1)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Connection, select, union

from maintainpro.analytics import schema
from maintainpro.analytics.extract import fetch, to_arrow
from maintainpro.analytics.jobs.base import (
    JobResult,
    Window,
    count_rows,
    latest_change,
    source,
)
from maintainpro.analytics.schema import WarehouseTable
from maintainpro.analytics.transforms import code, unit_rule
from maintainpro.analytics.warehouse import WarehouseTarget
from maintainpro.supply.money import CURRENCY_EXPONENTS, WITHDRAWN_CURRENCY_EXPONENTS

# The calendar covers every date a fact can carry; 40,000 rows cost nothing to keep.
CALENDAR_START: Final = dt.date(1990, 1, 1)
CALENDAR_END: Final = dt.date(2099, 12, 31)
_MONTHS: Final = [dt.date(2000, m, 1).strftime("%B") for m in range(1, 13)]
_DAYS: Final = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
NO_OVERLAP: Final = dt.timedelta(0)
SNAPSHOT_OVERLAP: Final = dt.timedelta(minutes=10)


def calendar_rows(start: dt.date = CALENDAR_START, end: dt.date = CALENDAR_END) -> pa.Table:
    """dim_date rows for every day from start to end."""
    epoch = dt.date(1970, 1, 1)
    days = pa.array(range((start - epoch).days, (end - epoch).days + 1), pa.int32()).cast(
        pa.date32()
    )
    year = pc.cast(pc.year(days), pa.int32())
    month = pc.cast(pc.month(days), pa.int32())
    day = pc.cast(pc.day(days), pa.int32())
    weekday = pc.cast(pc.day_of_week(days, count_from_zero=False), pa.int32())
    return pa.table(
        {
            "date_key": pc.add(pc.add(pc.multiply(year, 10000), pc.multiply(month, 100)), day),
            "date": days,
            "year": year,
            "quarter": pc.cast(pc.quarter(days), pa.int32()),
            "month": month,
            "month_name": pc.take(pa.array(_MONTHS), pc.subtract(month, 1)),
            "day": day,
            "day_of_week": weekday,
            "day_name": pc.take(pa.array(_DAYS), pc.subtract(weekday, 1)),
            "iso_week": pc.cast(pc.iso_week(days), pa.int32()),
            "is_weekend": pc.greater_equal(weekday, 6),
        }
    )


def time_of_day_rows() -> pa.Table:
    """dim_time_of_day: one row per minute of the day."""
    minutes = list(range(24 * 60))
    parts = ("night", "morning", "afternoon", "evening")
    return pa.table(
        {
            "time_key": pa.array(minutes, pa.int32()),
            "hour": pa.array([m // 60 for m in minutes], pa.int32()),
            "minute": pa.array([m % 60 for m in minutes], pa.int32()),
            "day_part": pa.array([parts[m // 360] for m in minutes]),
        }
    )


@dataclass(frozen=True)
class CalendarJob:
    """Generated dimensions: calendar days and minutes of the day (built once)."""

    name: str = "dim_calendar"
    description: str = "Calendar days 1990-2099 and minutes of the day, generated."
    outputs: tuple[WarehouseTable, ...] = (schema.DIM_DATE, schema.DIM_TIME_OF_DAY)
    overlap: dt.timedelta = NO_OVERLAP

    def run(self, source: Connection, target: WarehouseTarget, window: Window) -> JobResult:
        """Write both tables when a full load asks or when they are not complete."""
        result = JobResult()
        for table, build in (
            (schema.DIM_DATE, calendar_rows),
            (schema.DIM_TIME_OF_DAY, time_of_day_rows),
        ):
            rows = build()
            if not window.full and target.count(table) == rows.num_rows:
                continue
            target.delete_all(table)
            result.rows_in += rows.num_rows
            result.rows_out += target.insert(table, rows)
        return result


Builder = Callable[[Connection, Window], pa.Table]


@dataclass(frozen=True)
class SnapshotJob:
    """A dimension reloaded whole whenever a watched source table changed.

    Changed means a newer updated_at than the window's start, or a different row count
    (deletions leave no updated_at behind).
    """

    name: str
    description: str
    output: WarehouseTable
    watch: tuple[str, ...]
    counted: str | None
    build: Builder
    overlap: dt.timedelta = SNAPSHOT_OVERLAP
    outputs: tuple[WarehouseTable, ...] = field(init=False)

    def __post_init__(self) -> None:
        """outputs is the one table, as the Job protocol wants a tuple."""
        object.__setattr__(self, "outputs", (self.output,))

    def run(self, source: Connection, target: WarehouseTarget, window: Window) -> JobResult:
        """Reload the dimension if anything it is built from changed."""
        if not window.full and window.since is not None:
            newest = latest_change(source, self.watch)
            unchanged = newest is None or newest < window.since
            same_count = self.counted is None or count_rows(source, self.counted) == target.count(
                self.output
            )
            if unchanged and same_count:
                return JobResult()
        rows = self.build(source, window)
        target.delete_all(self.output)
        return JobResult(rows_in=rows.num_rows, rows_out=target.insert(self.output, rows))


def _sites(connection: Connection, _window: Window) -> pa.Table:
    t = source("sites")
    stmt = select(t.c.id, t.c.code, t.c.name, t.c.timezone).order_by(t.c.id)
    return fetch(connection, stmt, schema.DIM_SITE.arrow_schema)


@dataclass(frozen=True)
class Place:
    """A location as the hierarchy walk sees it."""

    code: str
    name: str
    kind: str
    parent_id: int | None


def asset_hierarchy(
    location_id: int | None, places: dict[int, Place]
) -> tuple[Place | None, Place | None, Place | None]:
    """(own location, nearest line, nearest area) walking up from an asset's location."""
    own = places.get(location_id) if location_id is not None else None
    line = area = None
    seen: set[int] = set()
    current = location_id
    while current is not None and current in places and current not in seen:
        seen.add(current)
        place = places[current]
        if place.kind == "line" and line is None:
            line = place
        if place.kind == "area" and area is None:
            area = place
        current = place.parent_id
    return own, line, area


def _assets(connection: Connection, _window: Window) -> pa.Table:
    loc, asset, site = source("locations"), source("assets"), source("sites")
    places = {
        row.id: Place(row.code, row.name, str(row.kind), row.parent_id)
        for row in connection.execute(
            select(loc.c.id, loc.c.code, loc.c.name, loc.c.kind, loc.c.parent_id)
        )
    }
    rows: list[tuple[Any, ...]] = []
    stmt = (
        select(asset, site.c.code.label("site_code"))
        .join(site, site.c.id == asset.c.site_id)
        .order_by(asset.c.id)
    )
    for a in connection.execute(stmt):
        own, line, area = asset_hierarchy(a.location_id, places)
        rows.append(
            (
                a.id,
                a.tag,
                a.name,
                code(a.asset_class),
                a.criticality,
                a.status,
                a.site_id,
                a.site_code,
                line.code if line else None,
                line.name if line else None,
                area.code if area else None,
                area.name if area else None,
                own.code if own else None,
                a.parent_id,
                a.manufacturer,
                a.model,
                a.install_date,
            )
        )
    return to_arrow(rows, schema.DIM_ASSET.arrow_schema)


def _sensors(connection: Connection, _window: Window) -> pa.Table:
    sensor, device, asset = source("sensors"), source("devices"), source("assets")
    stmt = (
        select(
            sensor.c.id,
            device.c.key.label("device_key"),
            sensor.c.key,
            sensor.c.name,
            sensor.c.type,
            sensor.c.unit,
            sensor.c.min_value,
            sensor.c.max_value,
            device.c.asset_id,
            asset.c.site_id,
            sensor.c.enabled,
        )
        .join(device, device.c.id == sensor.c.device_id)
        .outerjoin(asset, asset.c.id == device.c.asset_id)
        .order_by(sensor.c.id)
    )
    rows = []
    for s in connection.execute(stmt):
        rule = unit_rule(s.unit)
        rows.append(
            (
                s.id,
                s.device_key,
                s.key,
                s.name,
                code(s.type),
                rule.canonical,
                s.unit,
                rule.apply(s.min_value),
                rule.apply(s.max_value),
                s.asset_id,
                s.site_id,
                s.enabled,
            )
        )
    return to_arrow(rows, schema.DIM_SENSOR.arrow_schema)


def _parts(connection: Connection, _window: Window) -> pa.Table:
    p = source("parts")
    stmt = select(
        p.c.id, p.c.number, p.c.name, p.c.category, p.c.unit, p.c.unit_cost, p.c.currency
    ).order_by(p.c.id)
    rows = [
        (r.id, r.number, r.name, code(r.category), (r.unit or "").strip().upper(), *r[5:])
        for r in connection.execute(stmt)
    ]
    return to_arrow(rows, schema.DIM_PART.arrow_schema)


def _suppliers(connection: Connection, _window: Window) -> pa.Table:
    s = source("suppliers")
    stmt = select(
        s.c.id, s.c.code, s.c.legal_name, s.c.country, s.c.currency, s.c.status, s.c.preferred
    ).order_by(s.c.id)
    return fetch(connection, stmt, schema.DIM_SUPPLIER.arrow_schema)


def _currencies(connection: Connection, window: Window) -> pa.Table:
    names = ("parts", "suppliers", "purchase_orders", "supplier_invoices", "catalog_items")
    stmt = union(*(select(source(n).c.currency) for n in names))
    seen = {str(c).strip().upper() for (c,) in connection.execute(stmt) if c}
    seen.add(window.base_currency)
    exponents = {**WITHDRAWN_CURRENCY_EXPONENTS, **CURRENCY_EXPONENTS}
    rows = [(c, exponents.get(c), c == window.base_currency) for c in sorted(seen)]
    return to_arrow(rows, schema.DIM_CURRENCY.arrow_schema)


def _users(connection: Connection, _window: Window) -> pa.Table:
    u = source("users")
    stmt = select(u.c.id, u.c.username, u.c.full_name, u.c.role, u.c.site_id, u.c.active)
    return fetch(connection, stmt.order_by(u.c.id), schema.DIM_USER.arrow_schema)


DIMENSION_JOBS: Final = (
    CalendarJob(),
    SnapshotJob("dim_site", "Sites.", schema.DIM_SITE, ("sites",), "sites", _sites),
    SnapshotJob(
        "dim_asset",
        "Assets with site, line and area.",
        schema.DIM_ASSET,
        ("assets", "locations", "sites"),
        "assets",
        _assets,
    ),
    SnapshotJob(
        "dim_sensor",
        "Sensors with device, asset and canonical unit.",
        schema.DIM_SENSOR,
        ("sensors", "devices", "assets"),
        "sensors",
        _sensors,
    ),
    SnapshotJob("dim_part", "Spare parts.", schema.DIM_PART, ("parts",), "parts", _parts),
    SnapshotJob(
        "dim_supplier", "Suppliers.", schema.DIM_SUPPLIER, ("suppliers",), "suppliers", _suppliers
    ),
    SnapshotJob(
        "dim_currency",
        "Currencies in use.",
        schema.DIM_CURRENCY,
        ("parts", "suppliers", "purchase_orders", "supplier_invoices"),
        None,
        _currencies,
    ),
    SnapshotJob("dim_user", "People.", schema.DIM_USER, ("users",), "users", _users),
)
