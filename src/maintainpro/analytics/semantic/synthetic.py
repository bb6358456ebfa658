"""A synthetic plant written straight into a warehouse, for benchmarks and tests of the cubes.

Two sites, three lines each, five assets per line, one sensor per asset, twenty parts in four
categories and five suppliers; then, for each day of the period, work orders, alerts, preventive
occurrences, purchase-order lines, spend and (optionally) one row per sensor and hour. Values
come from DuckDB's ``hash`` of the row number, so the same plant is the same rows on every run,
and fractional figures are multiples of 1/4 (exact in binary) so that sums come out the same in
any order of addition.
"""

from __future__ import annotations

import datetime as dt
import zlib
from dataclasses import dataclass
from typing import Final

import duckdb

from maintainpro.analytics.jobs.dimensions import calendar_rows

SITES: Final = (("S1", "North plant"), ("S2", "South plant"))
LINES_PER_SITE: Final = 3
ASSETS_PER_LINE: Final = 5
PART_CATEGORIES: Final = ("bearings", "seals", "filters", "belts")
PARTS_PER_CATEGORY: Final = 5
SUPPLIERS: Final = 5


@dataclass(frozen=True)
class SyntheticPlant:
    """How much to generate, from which day."""

    start: dt.date = dt.date(2023, 1, 1)
    days: int = 1096
    work_orders_per_day: int = 100
    alerts_per_day: int = 20
    compliance_per_day: int = 10
    po_lines_per_day: int = 10
    spend_per_day: int = 10
    sensor_hours: bool = True

    @property
    def assets(self) -> int:
        """How many assets the plant has."""
        return len(SITES) * LINES_PER_SITE * ASSETS_PER_LINE

    @property
    def end(self) -> dt.date:
        """The last day with facts."""
        return self.start + dt.timedelta(days=self.days - 1)


def _h(seed: str, count: int) -> str:
    """SQL: a deterministic integer in [0, count) from the row number ``i``.

    Each seed offsets ``i`` before hashing: hash(i, seed) would combine the two hashes with an
    XOR, so the low bits of two columns (and so their values) would move together.
    """
    offset = zlib.crc32(seed.encode()) * 1_000_000_007
    return f"CAST(hash(i + {offset}) % {count} AS BIGINT)"


def _pick(seed: str, count: int, base: int = 0) -> str:
    """SQL: a deterministic integer in [base, base + count) from the row number ``i``."""
    return f"({base} + {_h(seed, count)})"


def _dimensions(connection: duckdb.DuckDBPyConnection, plant: SyntheticPlant) -> None:
    connection.register("synthetic_calendar", calendar_rows(plant.start, plant.end))
    try:
        connection.execute("INSERT INTO dim_date SELECT * FROM synthetic_calendar")
    finally:
        connection.unregister("synthetic_calendar")
    for key, (code, name) in enumerate(SITES, start=1):
        connection.execute("INSERT INTO dim_site VALUES (?, ?, ?, 'UTC')", [key, code, name])
    per_site = LINES_PER_SITE * ASSETS_PER_LINE
    connection.execute(
        f"""
        INSERT INTO dim_asset (asset_key, tag, name, asset_class, criticality, status, site_key,
                               site_code, line_code, line_name, area_code, area_name,
                               location_code)
        SELECT i, 'A-' || lpad(CAST(i AS VARCHAR), 3, '0'), 'Asset ' || i,
               ['pump', 'motor', 'conveyor'][1 + i % 3], ['a', 'b', 'c'][1 + i % 3], 'active',
               site, ['S1', 'S2'][site], ['S1', 'S2'][site] || '-L' || line,
               'Line ' || line, ['S1', 'S2'][site] || '-AREA', 'Area', NULL
        FROM (SELECT i, 1 + (i - 1) // {per_site} AS site,
                     1 + ((i - 1) % {per_site}) // {ASSETS_PER_LINE} AS line
              FROM range(1, {plant.assets + 1}) t(i))
        """  # noqa: S608 - constants
    )
    connection.execute(
        """
        INSERT INTO dim_sensor (sensor_key, device_key, sensor_code, name, type, unit, source_unit,
                                min_value, max_value, asset_key, site_key, enabled)
        SELECT asset_key, 'dev-' || asset_key, 'sensor', 'Sensor ' || asset_key,
               CASE WHEN asset_key % 2 = 0 THEN 'temperature' ELSE 'vibration' END,
               CASE WHEN asset_key % 2 = 0 THEN 'degC' ELSE 'mm/s' END,
               CASE WHEN asset_key % 2 = 0 THEN 'degC' ELSE 'mm/s' END, 0, 90, asset_key,
               site_key, TRUE
        FROM dim_asset
        """
    )
    parts = len(PART_CATEGORIES) * PARTS_PER_CATEGORY
    categories = "[" + ", ".join(f"'{c}'" for c in PART_CATEGORIES) + "]"
    connection.execute(
        f"""
        INSERT INTO dim_part SELECT i, 'P-' || lpad(CAST(i AS VARCHAR), 4, '0'), 'Part ' || i,
               {categories}[1 + (i - 1) // {PARTS_PER_CATEGORY}], 'EA', 10, 'USD'
        FROM range(1, {parts + 1}) t(i)
        """  # noqa: S608 - constants
    )
    connection.execute(
        f"""
        INSERT INTO dim_supplier SELECT i, 'SUP-' || i, 'Supplier ' || i, 'DE', 'EUR',
               'active', i = 1
        FROM range(1, {SUPPLIERS + 1}) t(i)
        """  # noqa: S608 - constants
    )


def _day_and_time(plant: SyntheticPlant, per_day: int, seed: str, first_day: int = 0) -> str:
    # Row i falls on day first_day + i // per_day at a pseudo-random second of that day.
    return (
        f"TIMESTAMP '{plant.start.isoformat()}'"
        f" + to_days(CAST({first_day} + i // {per_day} AS INTEGER))"
        f" + to_seconds({_h(seed, 86400)})"
    )


def work_order_rows(
    plant: SyntheticPlant, first: int, count: int, per_day: int, first_day: int = 0
) -> str:
    """SQL selecting ``count`` work orders with keys from ``first``; row i on plant day
    ``first_day + i // per_day``."""
    created = _day_and_time(plant, per_day, "wo-time", first_day)
    types = "['corrective', 'preventive', 'inspection', 'condition_based']"
    return f"""
        SELECT i + {first} AS work_order_key, a.asset_key, a.site_key, NULL, NULL,
               {types}[1 + {_h("wo-type", 4)}],
               ['low', 'medium', 'high', 'urgent'][1 + {_h("wo-prio", 4)}],
               ['open', 'in_progress', 'completed', 'closed', 'cancelled'][1 + {_h("wo-st", 5)}],
               'manual', {_h("wo-type", 4)} IN (0, 3), c, CAST(strftime(c, '%Y%m%d') AS INTEGER),
               NULL, c + INTERVAL 1 HOUR, c + to_minutes(CAST(15 * d AS BIGINT)), NULL,
               1.0, d / 4.0, d / 4.0, ({_h("wo-wait", 8)}) / 4.0, 0.0,
               ({_h("wo-lab", 100)}) / 4.0, ({_h("wo-cost", 100000)}) / 100.0, 'USD', TRUE
        FROM (SELECT i, {created} AS c, {_h("wo-down", 40)} AS d,
                     {_pick("wo-asset", plant.assets, 1)} AS asset
              FROM range({count}) t(i)) w
        JOIN dim_asset a ON a.asset_key = w.asset
    """  # noqa: S608 - constants


def add_work_orders(
    connection: duckdb.DuckDBPyConnection,
    plant: SyntheticPlant,
    *,
    first: int,
    count: int,
    per_day: int,
    first_day: int = 0,
) -> None:
    """Append work orders (keys from ``first``); row i falls on plant day
    ``first_day + i // per_day``."""
    rows = work_order_rows(plant, first, count, per_day, first_day)
    connection.execute(f"INSERT INTO fact_work_order {rows}")


def populate(connection: duckdb.DuckDBPyConnection, plant: SyntheticPlant) -> dict[str, int]:
    """Fill an empty warehouse (schema already created); returns the rows of each fact."""
    _dimensions(connection, plant)
    wo = plant.work_orders_per_day
    add_work_orders(connection, plant, first=1, count=plant.days * wo, per_day=wo)
    al = plant.alerts_per_day
    raised = _day_and_time(plant, al, "al-time")
    connection.execute(
        f"""
        INSERT INTO fact_alert
        SELECT i + 1, 1, a.asset_key, a.asset_key, a.site_key,
               ['threshold', 'rate', 'stale'][1 + {_h("al-kind", 3)}],
               ['info', 'warning', 'critical'][1 + {_h("al-sev", 3)}],
               ['open', 'acknowledged', 'closed'][1 + {_h("al-st", 3)}],
               r, CAST(strftime(r, '%Y%m%d') AS INTEGER), hour(r) * 60 + minute(r),
               CASE WHEN m IS NULL THEN NULL ELSE r + to_minutes(CAST(m * 4 AS BIGINT)) END,
               NULL, NULL, m, NULL, CAST({_h("al-esc", 3)} AS INTEGER), NULL
        FROM (SELECT i, {raised} AS r,
                     CASE WHEN {_h("al-ack", 4)} = 0 THEN NULL
                          ELSE ({_h("al-min", 400)}) / 4.0 END AS m,
                     {_pick("al-asset", plant.assets, 1)} AS asset
              FROM range({plant.days * al}) t(i)) x
        JOIN dim_asset a ON a.asset_key = x.asset
        """  # noqa: S608 - constants
    )
    pm = plant.compliance_per_day
    due = _day_and_time(plant, pm, "pm-time")
    connection.execute(
        f"""
        INSERT INTO fact_schedule_compliance
        SELECT i + 1, 1 + {_h("pm-sch", 10)}, a.asset_key, a.site_key, d,
               CAST(strftime(d, '%Y%m%d') AS INTEGER), 24, NULL,
               ['on_time', 'late', 'missed', 'pending'][1 + {_h("pm-out", 4)}],
               ({_h("pm-late", 20)}) / 4.0
        FROM (SELECT i, {due} AS d, {_pick("pm-asset", plant.assets, 1)} AS asset
              FROM range({plant.days * pm}) t(i)) x
        JOIN dim_asset a ON a.asset_key = x.asset
        """  # noqa: S608 - constants
    )
    parts = len(PART_CATEGORIES) * PARTS_PER_CATEGORY
    po = plant.po_lines_per_day
    ordered = _day_and_time(plant, po, "po-time")
    connection.execute(
        f"""
        INSERT INTO fact_po_line
        SELECT i + 1, i // 3 + 1, CAST(i % 3 + 1 AS INTEGER), {_pick("po-sup", SUPPLIERS, 1)},
               {_pick("po-part", parts, 1)}, 'sent', o, CAST(strftime(o, '%Y%m%d') AS INTEGER),
               o, NULL, NULL, q, q, 0, 0, 2.5, 'EUR', q * 2.5, 1.08, 'USD', q * 2.5 * 1.08
        FROM (SELECT i, {ordered} AS o, 1 + {_h("po-q", 20)} AS q
              FROM range({plant.days * po}) t(i))
        """  # noqa: S608 - constants
    )
    sp = plant.spend_per_day
    connection.execute(
        f"""
        INSERT INTO fact_spend
        SELECT i + 1, i // 2 + 1, {_pick("sp-sup", SUPPLIERS, 1)}, {_pick("sp-part", parts, 1)},
               i // 2 + 1, CAST(strftime(day, '%Y%m%d') AS INTEGER), 'EUR', amount, 1.08, 'USD',
               amount * 1.08
        FROM (SELECT i, DATE '{plant.start.isoformat()}' + CAST(i // {sp} AS INTEGER) AS day,
                     ({_h("sp-amt", 100000)}) / 100.0 AS amount
              FROM range({plant.days * sp}) t(i))
        """  # noqa: S608 - constants
    )
    if plant.sensor_hours:
        connection.execute(
            f"""
            INSERT INTO fact_sensor_hour
            SELECT s.sensor_key, s.asset_key, s.site_key, h, CAST(strftime(h, '%Y%m%d') AS INTEGER),
                   hour(h) * 60, 60, v, v - 2, v + 2, v, s.unit, v + 2 > 90
            FROM dim_sensor s,
                 (SELECT TIMESTAMP '{plant.start.isoformat()}' + to_hours(i) AS h,
                         ({_h("sh-v", 360)}) / 4.0 AS v
                  FROM range({plant.days * 24}) t(i))
            """  # noqa: S608 - constants
        )
    facts = ("fact_work_order", "fact_alert", "fact_schedule_compliance", "fact_po_line")
    counts: dict[str, int] = {}
    for table in (*facts, "fact_spend", "fact_sensor_hour"):
        row = connection.execute(f"SELECT count(*) FROM {table}").fetchall()  # noqa: S608 - constants
        counts[table] = int(row[0][0])
    return counts
