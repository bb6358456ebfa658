"""Maintenance KPIs over the warehouse: MTBF, MTTR, availability, PM compliance, backlog age,
cost per asset and parts-waiting time (definitions in docs/warehouse.md).

The SQL lives in DuckDB table macros, ``kpi_assets(start, end)`` and ``kpi_sites(start, end)``,
so any reader of the warehouse file gets the same figures; the views ``kpi_asset`` and
``kpi_site`` apply them to ``kpi_period``: from the first work order to the end of the last
successful work-order load.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, fields
from typing import Any, Final

import duckdb

from maintainpro.analytics.warehouse import naive_utc

# Per asset over [p_start, p_end). Downtime intervals are merged per asset (gaps and islands)
# so that two work orders on the same stoppage are not counted twice.
ASSET_MACRO: Final = """
CREATE OR REPLACE MACRO kpi_assets(p_start, p_end) AS TABLE
WITH bounds AS (
  SELECT CAST(p_start AS TIMESTAMP) AS s, CAST(p_end AS TIMESTAMP) AS e
),
down AS (
  SELECT w.asset_key,
         greatest(CASE WHEN w.is_failure THEN w.created_at
                       ELSE coalesce(w.started_at, w.created_at) END, b.s) AS a,
         least(coalesce(w.completed_at, b.e), b.e) AS z
  FROM fact_work_order w, bounds b
  WHERE w.status <> 'cancelled'
    AND (w.is_failure OR w.started_at IS NOT NULL)
),
clipped AS (SELECT * FROM down WHERE z > a),
ordered AS (
  SELECT *, max(z) OVER (PARTITION BY asset_key ORDER BY a, z
                         ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prev_z
  FROM clipped
),
islands AS (
  SELECT *, sum(CASE WHEN prev_z IS NULL OR a > prev_z THEN 1 ELSE 0 END)
            OVER (PARTITION BY asset_key ORDER BY a, z) AS island
  FROM ordered
),
merged AS (
  SELECT asset_key, min(a) AS a, max(z) AS z FROM islands GROUP BY asset_key, island
),
downtime AS (
  SELECT asset_key, sum(epoch(z - a)) / 3600.0 AS hours FROM merged GROUP BY asset_key
),
done AS (
  SELECT w.asset_key,
         count(*) FILTER (WHERE w.is_failure) AS failures,
         sum(w.downtime_hours) FILTER (WHERE w.is_failure) AS failure_hours,
         sum(w.parts_cost_base) AS cost_base,
         sum(w.labour_hours) AS labour_hours,
         sum(w.waiting_for_parts_hours) AS waiting_hours,
         count(*) FILTER (WHERE w.waiting_for_parts_hours > 0) AS waiting_orders
  FROM fact_work_order w, bounds b
  WHERE w.completed_at >= b.s AND w.completed_at < b.e
  GROUP BY w.asset_key
),
pm AS (
  SELECT c.asset_key,
         count(*) FILTER (WHERE c.outcome = 'on_time') AS on_time,
         count(*) FILTER (WHERE c.outcome = 'late') AS late,
         count(*) FILTER (WHERE c.outcome = 'missed') AS missed
  FROM fact_schedule_compliance c, bounds b
  WHERE c.due_at >= b.s AND c.due_at < b.e
  GROUP BY c.asset_key
),
backlog AS (
  SELECT w.asset_key, count(*) AS orders,
         avg(epoch(b.e - w.created_at)) / 86400.0 AS avg_age_days,
         max(epoch(b.e - w.created_at)) / 86400.0 AS max_age_days
  FROM fact_work_order_status st
  JOIN fact_work_order w USING (work_order_key), bounds b
  WHERE st.status IN ('open', 'assigned', 'in_progress', 'on_hold', 'waiting_for_parts')
    AND st.entered_at <= b.e AND (st.left_at IS NULL OR st.left_at > b.e)
  GROUP BY w.asset_key
)
SELECT a.asset_key, a.tag, a.site_key, a.site_code, a.line_code, a.area_code,
       b.s AS period_start, b.e AS period_end,
       epoch(b.e - b.s) / 3600.0 AS period_hours,
       coalesce(d.failures, 0) AS failures,
       coalesce(d.failure_hours, 0) AS failure_downtime_hours,
       d.failure_hours / nullif(d.failures, 0) AS mttr_hours,
       coalesce(t.hours, 0) AS downtime_hours,
       epoch(b.e - b.s) / 3600.0 - coalesce(t.hours, 0) AS uptime_hours,
       (epoch(b.e - b.s) / 3600.0 - coalesce(t.hours, 0)) / nullif(d.failures, 0) AS mtbf_hours,
       1 - coalesce(t.hours, 0) / nullif(epoch(b.e - b.s) / 3600.0, 0) AS availability,
       coalesce(p.on_time, 0) AS pm_on_time,
       coalesce(p.late, 0) AS pm_late,
       coalesce(p.missed, 0) AS pm_missed,
       p.on_time / nullif(p.on_time + p.late + p.missed, 0) AS pm_compliance,
       coalesce(k.orders, 0) AS backlog_orders,
       k.avg_age_days AS backlog_avg_age_days,
       k.max_age_days AS backlog_max_age_days,
       coalesce(d.cost_base, 0) AS cost_base,
       coalesce(d.labour_hours, 0) AS labour_hours,
       coalesce(d.waiting_hours, 0) AS parts_waiting_hours,
       coalesce(d.waiting_orders, 0) AS parts_waiting_orders,
       d.waiting_hours / nullif(d.waiting_orders, 0) AS avg_parts_waiting_hours
FROM dim_asset a CROSS JOIN bounds b
LEFT JOIN done d USING (asset_key)
LEFT JOIN downtime t USING (asset_key)
LEFT JOIN pm p USING (asset_key)
LEFT JOIN backlog k USING (asset_key)
"""

# Per site: sums of the asset figures; ratios recomputed from the sums, never averaged.
SITE_MACRO: Final = """
CREATE OR REPLACE MACRO kpi_sites(p_start, p_end) AS TABLE
SELECT site_key, site_code,
       min(period_start) AS period_start, max(period_end) AS period_end,
       count(*) AS assets,
       sum(failures) AS failures,
       sum(failure_downtime_hours) / nullif(sum(failures), 0) AS mttr_hours,
       sum(uptime_hours) / nullif(sum(failures), 0) AS mtbf_hours,
       sum(uptime_hours) / nullif(sum(period_hours), 0) AS availability,
       sum(pm_on_time) / nullif(sum(pm_on_time + pm_late + pm_missed), 0) AS pm_compliance,
       sum(backlog_orders) AS backlog_orders,
       sum(backlog_avg_age_days * backlog_orders) / nullif(sum(backlog_orders), 0)
         AS backlog_avg_age_days,
       max(backlog_max_age_days) AS backlog_max_age_days,
       sum(cost_base) AS cost_base,
       sum(parts_waiting_hours) AS parts_waiting_hours,
       sum(parts_waiting_hours) / nullif(sum(parts_waiting_orders), 0)
         AS avg_parts_waiting_hours
FROM kpi_assets(p_start, p_end)
GROUP BY site_key, site_code
"""

MACROS: Final = (ASSET_MACRO, SITE_MACRO)

PERIOD_VIEW: Final = """
SELECT (SELECT min(created_at) FROM fact_work_order) AS period_start,
       (SELECT max(window_end) FROM etl_runs
         WHERE job = 'fact_work_order' AND status = 'completed') AS period_end
"""
VIEWS: Final[dict[str, str]] = {
    "kpi_period": PERIOD_VIEW,
    "kpi_asset": (
        "SELECT * FROM kpi_assets((SELECT period_start FROM kpi_period), "
        "(SELECT period_end FROM kpi_period))"
    ),
    "kpi_site": (
        "SELECT * FROM kpi_sites((SELECT period_start FROM kpi_period), "
        "(SELECT period_end FROM kpi_period))"
    ),
}


@dataclass(frozen=True)
class AssetKpis:
    """The KPIs of one asset over a period (hours, days, ratios 0..1; cost in base currency)."""

    asset_key: int
    tag: str
    site_key: int
    site_code: str
    line_code: str | None
    area_code: str | None
    period_start: dt.datetime
    period_end: dt.datetime
    period_hours: float
    failures: int
    failure_downtime_hours: float
    mttr_hours: float | None
    downtime_hours: float
    uptime_hours: float
    mtbf_hours: float | None
    availability: float | None
    pm_on_time: int
    pm_late: int
    pm_missed: int
    pm_compliance: float | None
    backlog_orders: int
    backlog_avg_age_days: float | None
    backlog_max_age_days: float | None
    cost_base: Any
    labour_hours: Any
    parts_waiting_hours: float
    parts_waiting_orders: int
    avg_parts_waiting_hours: float | None


def asset_kpis(
    connection: duckdb.DuckDBPyConnection,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
    *,
    tag: str | None = None,
) -> list[AssetKpis]:
    """KPIs per asset over [start, end) (default: ``kpi_period``), optionally one asset."""
    names = [f.name for f in fields(AssetKpis)]
    if start is None or end is None:
        sql = f"SELECT {', '.join(names)} FROM kpi_asset"  # noqa: S608 - dataclass field names
        params: list[Any] = []
    else:
        sql = f"SELECT {', '.join(names)} FROM kpi_assets(?, ?)"  # noqa: S608 - field names
        params = [naive_utc(start), naive_utc(end)]
    if tag is not None:
        sql += " WHERE tag = ?"
        params.append(tag)
    rows = connection.execute(sql + " ORDER BY site_code, tag", params).fetchall()
    return [AssetKpis(*row) for row in rows if row[6] is not None]
