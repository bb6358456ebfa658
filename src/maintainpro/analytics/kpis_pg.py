"""The KPI views of ``kpis`` in PostgreSQL's SQL, for the PostgreSQL warehouse.

Same names and columns as in DuckDB: the views ``kpi_period``, ``kpi_asset`` and ``kpi_site``,
and the functions ``kpi_assets(start, end)`` and ``kpi_sites(start, end)`` in place of DuckDB's
table macros (each returns its view's row type). The differences from the DuckDB text are
spelling only: ``extract(epoch FROM ...)`` for ``epoch(...)``, and an explicit ``float8`` where
DuckDB's ``/`` divides integers as doubles and PostgreSQL's would truncate (or give numeric).
"""

from __future__ import annotations

from typing import Final

# The asset query over a one-row ``bounds`` (s, e); see kpis.ASSET_MACRO for the reasoning.
ASSET_SQL: Final = """
WITH bounds AS ({bounds}),
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
  SELECT asset_key, sum(extract(epoch FROM z - a)::float8) / 3600.0::float8 AS hours
  FROM merged GROUP BY asset_key
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
         avg(extract(epoch FROM b.e - w.created_at)::float8) / 86400.0::float8 AS avg_age_days,
         max(extract(epoch FROM b.e - w.created_at)::float8) / 86400.0::float8 AS max_age_days
  FROM fact_work_order_status st
  JOIN fact_work_order w USING (work_order_key), bounds b
  WHERE st.status IN ('open', 'assigned', 'in_progress', 'on_hold', 'waiting_for_parts')
    AND st.entered_at <= b.e AND (st.left_at IS NULL OR st.left_at > b.e)
  GROUP BY w.asset_key
)
SELECT a.asset_key, a.tag, a.site_key, a.site_code, a.line_code, a.area_code,
       b.s AS period_start, b.e AS period_end,
       extract(epoch FROM b.e - b.s)::float8 / 3600.0::float8 AS period_hours,
       coalesce(d.failures, 0) AS failures,
       coalesce(d.failure_hours, 0) AS failure_downtime_hours,
       d.failure_hours / nullif(d.failures, 0) AS mttr_hours,
       coalesce(t.hours, 0) AS downtime_hours,
       extract(epoch FROM b.e - b.s)::float8 / 3600.0::float8 - coalesce(t.hours, 0)
         AS uptime_hours,
       (extract(epoch FROM b.e - b.s)::float8 / 3600.0::float8 - coalesce(t.hours, 0))
         / nullif(d.failures, 0) AS mtbf_hours,
       1 - coalesce(t.hours, 0)
         / nullif(extract(epoch FROM b.e - b.s)::float8 / 3600.0::float8, 0) AS availability,
       coalesce(p.on_time, 0) AS pm_on_time,
       coalesce(p.late, 0) AS pm_late,
       coalesce(p.missed, 0) AS pm_missed,
       p.on_time::float8 / nullif(p.on_time + p.late + p.missed, 0) AS pm_compliance,
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

# Per site from the asset rows; sums of counts are cast back to bigint (PostgreSQL sums bigints
# as numeric) and ratios are divided as float8, as DuckDB does.
SITE_SQL: Final = """
SELECT site_key, site_code,
       min(period_start) AS period_start, max(period_end) AS period_end,
       count(*) AS assets,
       sum(failures)::bigint AS failures,
       sum(failure_downtime_hours) / nullif(sum(failures)::float8, 0) AS mttr_hours,
       sum(uptime_hours) / nullif(sum(failures)::float8, 0) AS mtbf_hours,
       sum(uptime_hours) / nullif(sum(period_hours), 0) AS availability,
       sum(pm_on_time)::float8 / nullif(sum(pm_on_time + pm_late + pm_missed)::float8, 0)
         AS pm_compliance,
       sum(backlog_orders)::bigint AS backlog_orders,
       sum(backlog_avg_age_days * backlog_orders) / nullif(sum(backlog_orders)::float8, 0)
         AS backlog_avg_age_days,
       max(backlog_max_age_days) AS backlog_max_age_days,
       sum(cost_base) AS cost_base,
       sum(parts_waiting_hours) AS parts_waiting_hours,
       sum(parts_waiting_hours) / nullif(sum(parts_waiting_orders)::float8, 0)
         AS avg_parts_waiting_hours
FROM {assets}
GROUP BY site_key, site_code
"""

PERIOD_VIEW: Final = """
SELECT (SELECT min(created_at) FROM fact_work_order) AS period_start,
       (SELECT max(window_end) FROM etl_runs
         WHERE job = 'fact_work_order' AND status = 'completed') AS period_end
"""

# In creation order: each view reads the ones before it.
VIEWS: Final[dict[str, str]] = {
    "kpi_period": PERIOD_VIEW,
    "kpi_asset": ASSET_SQL.format(
        bounds="SELECT period_start AS s, period_end AS e FROM kpi_period"
    ),
    "kpi_site": SITE_SQL.format(assets="kpi_asset"),
}

# Functions take the views' row types, so a function and its view cannot drift apart.
FUNCTIONS: Final = (
    "CREATE OR REPLACE FUNCTION kpi_assets(p_start timestamp, p_end timestamp) "
    "RETURNS SETOF kpi_asset LANGUAGE sql STABLE AS $kpi$"
    + ASSET_SQL.format(bounds="SELECT p_start AS s, p_end AS e")
    + "$kpi$",
    "CREATE OR REPLACE FUNCTION kpi_sites(p_start timestamp, p_end timestamp) "
    "RETURNS SETOF kpi_site LANGUAGE sql STABLE AS $kpi$"
    + SITE_SQL.format(assets="kpi_assets(p_start, p_end)")
    + "$kpi$",
)

# Used when CREATE OR REPLACE cannot apply (a release changed a view's columns): functions
# first, then views, newest first. No CASCADE: a reader's own view on top is never dropped
# silently; the refresh fails with PostgreSQL's reason instead.
DROP: Final = (
    "DROP FUNCTION IF EXISTS kpi_sites(timestamp, timestamp)",
    "DROP FUNCTION IF EXISTS kpi_assets(timestamp, timestamp)",
    "DROP VIEW IF EXISTS kpi_site",
    "DROP VIEW IF EXISTS kpi_asset",
    "DROP VIEW IF EXISTS kpi_period",
)
