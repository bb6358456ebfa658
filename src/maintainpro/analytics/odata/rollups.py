"""Rollups published as their own entity sets, because Power BI does not fold aggregations
over OData: daily and monthly sensor figures, work-order KPIs per asset and month, spend per
supplier and month.

Each rollup is a query over the warehouse with a column description like any warehouse table;
``Rollup.select()`` casts every column to its described type, so ``$metadata`` tells the truth.
The feed inlines the query; ``view_ddl`` gives the same as views for tools that read the file.
Group keys that can be missing (an asset of a sensor, a site of an asset) are 0 ("unknown").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import pyarrow as pa

from maintainpro.analytics.schema import (
    BOOL,
    DATE,
    F64,
    I32,
    I64,
    MONEY,
    STR,
    Column,
    WarehouseTable,
    sql_type,
)


@dataclass(frozen=True)
class Rollup:
    """An aggregate over the warehouse: its description and the query computing it."""

    table: WarehouseTable
    query: str

    def select(self) -> str:
        """The query with every column cast to its described type, in described order."""
        columns = ", ".join(
            f'CAST(r."{c.name}" AS {sql_type(c.type)}) AS "{c.name}"' for c in self.table.columns
        )
        return f"SELECT {columns} FROM ({self.query}) AS r"  # noqa: S608 - fixed text

    def view_ddl(self) -> str:
        """CREATE OR REPLACE VIEW for DuckDB."""
        return f"CREATE OR REPLACE VIEW {self.table.name} AS {self.select()}"


def _c(name: str, type_: pa.DataType, description: str = "") -> Column:
    return Column(name, type_, description, (), "aggregation")


_KEYS_UNKNOWN = "0 when unknown"

SENSOR_DAY: Final = Rollup(
    WarehouseTable(
        "rollup_sensor_day",
        "fact",
        "Per sensor and UTC day, from fact_sensor_hour: reading-weighted mean, extremes and the "
        "hours out of range.",
        (
            _c("sensor_key", I64),
            _c("date_key", I32, "yyyymmdd"),
            _c("asset_key", I64, _KEYS_UNKNOWN),
            _c("site_key", I64, _KEYS_UNKNOWN),
            _c("day", DATE),
            _c("hours", I64, "hours with data"),
            _c("reading_count", I64),
            _c("value_avg", F64, "weighted by the readings of each hour"),
            _c("value_min", F64),
            _c("value_max", F64),
            _c("out_of_range_hours", I64),
            _c("unit", STR),
        ),
        ("sensor_key", "date_key", "asset_key", "site_key"),
    ),
    """
SELECT sensor_key, date_key,
       coalesce(asset_key, 0) AS asset_key, coalesce(site_key, 0) AS site_key,
       make_date(date_key // 10000, date_key // 100 % 100, date_key % 100) AS day,
       count(*) AS hours,
       sum(reading_count) AS reading_count,
       sum(value_avg * reading_count) / nullif(sum(reading_count), 0) AS value_avg,
       min(value_min) AS value_min,
       max(value_max) AS value_max,
       count(*) FILTER (WHERE out_of_range) AS out_of_range_hours,
       max(unit) AS unit
FROM fact_sensor_hour
GROUP BY ALL
""",
)

SENSOR_MONTH: Final = Rollup(
    WarehouseTable(
        "rollup_sensor_month",
        "fact",
        "Per sensor and UTC month, from fact_sensor_hour.",
        (
            _c("sensor_key", I64),
            _c("month_key", I32, "yyyymm"),
            _c("asset_key", I64, _KEYS_UNKNOWN),
            _c("site_key", I64, _KEYS_UNKNOWN),
            _c("month_start", DATE),
            _c("year", I32),
            _c("month", I32),
            _c("days", I64, "days with data"),
            _c("hours", I64, "hours with data"),
            _c("reading_count", I64),
            _c("value_avg", F64, "weighted by the readings of each hour"),
            _c("value_min", F64),
            _c("value_max", F64),
            _c("out_of_range_hours", I64),
            _c("unit", STR),
        ),
        ("sensor_key", "month_key", "asset_key", "site_key"),
    ),
    """
SELECT sensor_key, date_key // 100 AS month_key,
       coalesce(asset_key, 0) AS asset_key, coalesce(site_key, 0) AS site_key,
       make_date(date_key // 10000, date_key // 100 % 100, 1) AS month_start,
       date_key // 10000 AS year, date_key // 100 % 100 AS month,
       count(DISTINCT date_key) AS days,
       count(*) AS hours,
       sum(reading_count) AS reading_count,
       sum(value_avg * reading_count) / nullif(sum(reading_count), 0) AS value_avg,
       min(value_min) AS value_min,
       max(value_max) AS value_max,
       count(*) FILTER (WHERE out_of_range) AS out_of_range_hours,
       max(unit) AS unit
FROM fact_sensor_hour
GROUP BY ALL
""",
)

WORK_ORDER_ASSET_MONTH: Final = Rollup(
    WarehouseTable(
        "rollup_work_order_asset_month",
        "fact",
        "Maintenance KPIs per asset and UTC month: orders created and completed, failures, "
        "MTTR, downtime, labour, parts cost and waiting, PM compliance (work orders by the month "
        "they were created or completed, preventive occurrences by the month they were due).",
        (
            _c("asset_key", I64, _KEYS_UNKNOWN),
            _c("month_key", I32, "yyyymm"),
            _c("site_key", I64, _KEYS_UNKNOWN),
            _c("month_start", DATE),
            _c("year", I32),
            _c("month", I32),
            _c("orders_created", I64),
            _c("orders_completed", I64, "not cancelled"),
            _c("failures", I64, "corrective or condition-based orders completed"),
            _c("failure_downtime_hours", F64),
            _c("mttr_hours", F64, "failure downtime / failures"),
            _c("downtime_hours", F64),
            _c("labour_hours", pa.decimal128(14, 2)),
            _c("parts_cost_base", MONEY, "in base currency"),
            _c("base_currency", STR),
            _c("parts_waiting_hours", F64),
            _c("pm_on_time", I64),
            _c("pm_late", I64),
            _c("pm_missed", I64),
            _c("pm_compliance", F64, "on time / (on time + late + missed)"),
        ),
        ("asset_key", "month_key", "site_key"),
    ),
    """
WITH events AS (
  SELECT asset_key, site_key, created_at AS happened_at, 1 AS created, base_currency
  FROM fact_work_order
  UNION ALL BY NAME
  SELECT asset_key, site_key, completed_at AS happened_at, 1 AS completed,
         CASE WHEN is_failure THEN 1 ELSE 0 END AS failures,
         CASE WHEN is_failure THEN downtime_hours END AS failure_downtime_hours,
         downtime_hours, labour_hours, parts_cost_base,
         waiting_for_parts_hours AS parts_waiting_hours, base_currency
  FROM fact_work_order
  WHERE completed_at IS NOT NULL AND status <> 'cancelled'
  UNION ALL BY NAME
  SELECT asset_key, site_key, due_at AS happened_at,
         CASE WHEN outcome = 'on_time' THEN 1 ELSE 0 END AS pm_on_time,
         CASE WHEN outcome = 'late' THEN 1 ELSE 0 END AS pm_late,
         CASE WHEN outcome = 'missed' THEN 1 ELSE 0 END AS pm_missed
  FROM fact_schedule_compliance
)
SELECT coalesce(asset_key, 0) AS asset_key,
       year(happened_at) * 100 + month(happened_at) AS month_key,
       coalesce(site_key, 0) AS site_key,
       CAST(date_trunc('month', happened_at) AS DATE) AS month_start,
       year(happened_at) AS year, month(happened_at) AS month,
       coalesce(sum(created), 0) AS orders_created,
       coalesce(sum(completed), 0) AS orders_completed,
       coalesce(sum(failures), 0) AS failures,
       coalesce(sum(failure_downtime_hours), 0) AS failure_downtime_hours,
       sum(failure_downtime_hours) / nullif(sum(failures), 0) AS mttr_hours,
       coalesce(sum(downtime_hours), 0) AS downtime_hours,
       coalesce(sum(labour_hours), 0) AS labour_hours,
       coalesce(sum(parts_cost_base), 0) AS parts_cost_base,
       max(base_currency) AS base_currency,
       coalesce(sum(parts_waiting_hours), 0) AS parts_waiting_hours,
       coalesce(sum(pm_on_time), 0) AS pm_on_time,
       coalesce(sum(pm_late), 0) AS pm_late,
       coalesce(sum(pm_missed), 0) AS pm_missed,
       sum(pm_on_time) / nullif(sum(pm_on_time) + sum(pm_late) + sum(pm_missed), 0)
         AS pm_compliance
FROM events
WHERE happened_at IS NOT NULL
GROUP BY ALL
""",
)

SPEND_SUPPLIER_MONTH: Final = Rollup(
    WarehouseTable(
        "rollup_spend_supplier_month",
        "fact",
        "Spend per supplier and month of the invoice date, in base currency (rejected invoices "
        "excluded, as in fact_spend).",
        (
            _c("supplier_key", I64),
            _c("month_key", I32, "yyyymm"),
            _c("base_currency", STR, "XXX when unknown"),
            _c("month_start", DATE),
            _c("year", I32),
            _c("month", I32),
            _c("invoices", I64),
            _c("invoice_lines", I64),
            _c("amount_base", MONEY),
            _c("complete", BOOL, "false when a line had no base amount"),
        ),
        ("supplier_key", "month_key", "base_currency"),
    ),
    """
SELECT supplier_key, date_key // 100 AS month_key,
       coalesce(base_currency, 'XXX') AS base_currency,
       make_date(date_key // 10000, date_key // 100 % 100, 1) AS month_start,
       date_key // 10000 AS year, date_key // 100 % 100 AS month,
       count(DISTINCT invoice_key) AS invoices,
       count(*) AS invoice_lines,
       coalesce(sum(amount_base), 0) AS amount_base,
       count(*) = count(amount_base) AS complete
FROM fact_spend
WHERE supplier_key IS NOT NULL AND date_key IS NOT NULL
GROUP BY ALL
""",
)

ROLLUPS: Final = (SENSOR_DAY, SENSOR_MONTH, WORK_ORDER_ASSET_MONTH, SPEND_SUPPLIER_MONTH)


def view_ddl() -> list[str]:
    """CREATE OR REPLACE VIEW statements for every rollup (for the warehouse's own schema)."""
    return [rollup.view_ddl() for rollup in ROLLUPS]
