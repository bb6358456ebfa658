"""Benchmark: cube queries over 3 years of daily facts, from pre-aggregations and from the facts.

Run from the repository root::

    .venv/bin/python bench/cube_query.py                  # 3 years, 300 work orders a day
    .venv/bin/python bench/cube_query.py --days 365 --repeat 5   # a quick run

A synthetic plant (``analytics.semantic.synthetic``: 2 sites, 6 lines, 30 assets, one sensor
each) is written straight into a fresh warehouse: for each of ``--days`` days, ``--work-orders``
work orders, 60 alerts, 20 preventive occurrences, purchase-order lines and spend, and one row
per sensor and hour. The pre-aggregations of the shipped model are built (timed), then each
query below is answered ``--repeat`` times through the same code as ``/api/v1/semantic/load``
(compile, choose, run, shape the JSON) on a read-only connection, once allowing
pre-aggregations and once from the base facts only; the median of each is reported, and the
two answers are checked to be the same. Then one more day of facts is added and the
incremental refresh (only the touched partitions) is timed against a full rebuild. The goal is a
cube query answered in < 100 ms.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import duckdb

from maintainpro.analytics.lineage import Lineage
from maintainpro.analytics.semantic.load import Answer, answer
from maintainpro.analytics.semantic.materialise import refresh
from maintainpro.analytics.semantic.model import default_model
from maintainpro.analytics.semantic.plan import Access
from maintainpro.analytics.semantic.synthetic import SyntheticPlant, add_work_orders, populate
from maintainpro.analytics.warehouse import DuckDbWarehouse, connect
from maintainpro.core.users import Permission

START = dt.date(2023, 1, 1)


def queries(plant: SyntheticPlant) -> dict[str, tuple[dict[str, Any], Access]]:
    """The benchmark's queries, each with the caller asking it."""
    everyone = Access.unrestricted()
    site_a = Access(frozenset(Permission), frozenset({1}))
    last = plant.end
    half_year = [(last - dt.timedelta(days=181)).replace(day=1).isoformat(), last.isoformat()]
    return {
        "work orders by site x month, 6 months (the brief's query)": (
            {
                "measures": ["WorkOrders.count"],
                "dimensions": ["Assets.site"],
                "timeDimensions": [
                    {
                        "dimension": "WorkOrders.createdAt",
                        "granularity": "month",
                        "dateRange": half_year,
                    }
                ],
            },
            everyone,
        ),
        "count, MTTR, parts cost by line x quarter, 3 years": (
            {
                "measures": ["WorkOrders.count", "WorkOrders.mttrHours", "WorkOrders.partsCost"],
                "dimensions": ["Assets.line"],
                "timeDimensions": [{"dimension": "WorkOrders.createdAt", "granularity": "quarter"}],
            },
            everyone,
        ),
        "drill to assets of one line, by day, one month": (
            {
                "measures": ["WorkOrders.count", "WorkOrders.downtimeHours"],
                "dimensions": ["Assets.asset"],
                "timeDimensions": [
                    {
                        "dimension": "WorkOrders.createdAt",
                        "granularity": "day",
                        "dateRange": [last.replace(day=1).isoformat(), last.isoformat()],
                    }
                ],
                "filters": [{"member": "Assets.line", "operator": "equals", "values": ["S1-L2"]}],
            },
            everyone,
        ),
        "sensor mean by type x month, 3 years of hourly rows": (
            {
                "measures": ["SensorHours.avgValue", "SensorHours.maxValue"],
                "dimensions": ["Sensors.type"],
                "timeDimensions": [{"dimension": "SensorHours.hourStart", "granularity": "month"}],
            },
            everyone,
        ),
        "alerts by severity x week, 3 years": (
            {
                "measures": ["Alerts.count", "Alerts.avgMinutesToAcknowledge"],
                "dimensions": ["Alerts.severity"],
                "timeDimensions": [{"dimension": "Alerts.raisedAt", "granularity": "week"}],
            },
            everyone,
        ),
        "site A user: work orders by type x year": (
            {
                "measures": ["WorkOrders.count", "WorkOrders.labourHours"],
                "dimensions": ["WorkOrders.type"],
                "timeDimensions": [{"dimension": "WorkOrders.createdAt", "granularity": "year"}],
            },
            site_a,
        ),
    }


def same(a: Answer, b: Answer) -> bool:
    """Whether two answers hold the same rows (doubles to 1e-9 relative)."""
    rows_a, rows_b = a.body["data"], b.body["data"]
    if len(rows_a) != len(rows_b):
        return False
    for x, y in zip(rows_a, rows_b, strict=True):
        if x.keys() != y.keys():
            return False
        for key, value in x.items():
            other = y[key]
            if isinstance(value, float) and isinstance(other, float):
                if not math.isclose(value, other, rel_tol=1e-9):
                    return False
            elif value != other:
                return False
    return True


def timed(
    connection: duckdb.DuckDBPyConnection,
    query: dict[str, Any],
    access: Access,
    repeat: int,
    *,
    base: bool,
    today: dt.date,
) -> tuple[float, Answer]:
    """Median milliseconds of ``repeat`` answers (after one warm-up), and the answer."""
    model = default_model()
    result = answer(connection, model, query, access, today=today, use_pre_aggregations=not base)
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        result = answer(
            connection, model, query, access, today=today, use_pre_aggregations=not base
        )
        times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times), result


def per_request(path: Path, query: dict[str, Any], repeat: int, today: dt.date) -> float:
    """Median milliseconds with the connection opened and closed per query, as the API does."""
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        connection = connect(path, read_only=True)
        try:
            answer(connection, default_model(), query, Access.unrestricted(), today=today)
        finally:
            connection.close()
        times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times)


def main() -> None:
    """Build, refresh, query, report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=1096, help="days of facts (default 3 years)")
    parser.add_argument("--work-orders", type=int, default=300, help="work orders a day")
    parser.add_argument("--repeat", type=int, default=30, help="timed answers per query")
    parser.add_argument("--dir", type=Path, default=None, help="where to keep the warehouse")
    args = parser.parse_args()
    plant = SyntheticPlant(
        start=START,
        days=args.days,
        work_orders_per_day=args.work_orders,
        alerts_per_day=60,
        compliance_per_day=20,
        po_lines_per_day=30,
        spend_per_day=30,
    )
    folder = args.dir or Path(tempfile.mkdtemp(prefix="cube-bench-"))
    path = folder / "warehouse.duckdb"
    path.unlink(missing_ok=True)
    lineage = Lineage(
        None, namespace="bench", source=("sqlite:///bench", "main."), warehouse_path=path
    )
    report: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "duckdb": duckdb.__version__,
            "platform": platform.platform(),
        },
        "days": plant.days,
    }
    with DuckDbWarehouse(path) as target:
        target.ensure_schema()
        began = time.perf_counter()
        report["facts"] = populate(target.connection, plant)
        report["generate_s"] = round(time.perf_counter() - began, 2)
        began = time.perf_counter()
        results = refresh(target.connection, default_model(), lineage)
        report["full_refresh_s"] = round(time.perf_counter() - began, 2)
        report["pre_aggregation_rows"] = {r.table: r.rows for r in results}
        failed = [r.error for r in results if r.status != "completed"]
        if failed:
            raise SystemExit(f"refresh failed: {failed}")
    today = plant.end + dt.timedelta(days=1)
    report["queries"] = {}
    connection = connect(path, read_only=True)
    try:
        for name, (query, access) in queries(plant).items():
            stored_ms, stored = timed(
                connection, query, access, args.repeat, base=False, today=today
            )
            base_ms, facts = timed(connection, query, access, args.repeat, base=True, today=today)
            report["queries"][name] = {
                "pre_aggregation_ms": round(stored_ms, 1),
                "base_facts_ms": round(base_ms, 1),
                "answered_from": stored.body["answeredFrom"].get("preAggregation")
                or "base: " + str(stored.body["answeredFrom"].get("reason")),
                "rows": stored.rows,
                "same_answer": same(stored, facts),
            }
    finally:
        connection.close()
    first_query = next(iter(queries(plant).values()))[0]
    report["per_request_open_ms"] = round(per_request(path, first_query, args.repeat, today), 1)
    with DuckDbWarehouse(path) as target:
        # One more day of work orders (on the last day): only its month is recomputed.
        add_work_orders(
            target.connection,
            plant,
            first=10_000_000,
            count=plant.work_orders_per_day,
            per_day=plant.work_orders_per_day,
            first_day=plant.days - 1,
        )
        began = time.perf_counter()
        incremental = refresh(target.connection, default_model(), lineage, only=("WorkOrders",))
        report["incremental_refresh_s"] = round(time.perf_counter() - began, 2)
        report["incremental_partitions"] = {
            r.table: [str(p) for p in r.refreshed] for r in incremental
        }
        began = time.perf_counter()
        refresh(target.connection, default_model(), lineage, only=("WorkOrders",), full=True)
        report["full_rebuild_work_orders_s"] = round(time.perf_counter() - began, 2)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
