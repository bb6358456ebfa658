"""Answers equal hand-written GROUP BYs over the facts, from pre-aggregations and from the facts."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from analytics.semantic.cube_world import ask, hand, rows_of, source_of
from maintainpro.analytics.warehouse import DuckDbWarehouse

WO = "fact_work_order w JOIN dim_asset a ON a.asset_key = w.asset_key"
MONTH = "WorkOrders.createdAt.month"


def test_the_briefs_query_equals_a_hand_written_group_by(cubes: DuckDbWarehouse) -> None:
    query = {
        "measures": ["WorkOrders.count", "WorkOrders.downtimeHours", "WorkOrders.partsCost"],
        "dimensions": ["Assets.site"],
        "timeDimensions": [
            {
                "dimension": "WorkOrders.createdAt",
                "granularity": "month",
                "dateRange": ["2025-12-01", "2026-02-28"],
            }
        ],
        "order": {"Assets.site": "asc", MONTH: "asc"},
    }
    result = ask(cubes.connection, query)
    assert source_of(result) == "pre_aggregation"
    expected = hand(
        cubes.connection,
        f"SELECT a.site_code, date_trunc('month', w.created_at), count(*), sum(w.downtime_hours),"  # noqa: S608 - test text
        f" sum(w.parts_cost_base) FROM {WO}"
        " WHERE w.created_at >= TIMESTAMP '2025-12-01' AND w.created_at < TIMESTAMP '2026-03-01'"
        " GROUP BY 1, 2 ORDER BY 1, 2",
    )
    keys = ["Assets.site", MONTH, *query["measures"]]
    assert rows_of(result, keys) == expected
    assert len(expected) == 6
    row = result.body["data"][0]
    assert row["WorkOrders.createdAt"] == row[MONTH] == "2025-12-01T00:00:00.000"
    assert isinstance(row["WorkOrders.count"], int)
    assert isinstance(row["WorkOrders.partsCost"], str)  # decimals keep every digit


@pytest.mark.parametrize("granularity", ["year", "quarter", "month", "week", "day"])
def test_drilling_year_quarter_month_day_equals_group_by_date_trunc(
    cubes: DuckDbWarehouse, granularity: str
) -> None:
    key = f"WorkOrders.createdAt.{granularity}"
    query = {
        "measures": ["WorkOrders.count", "WorkOrders.failures", "WorkOrders.mttrHours"],
        "timeDimensions": [{"dimension": "WorkOrders.createdAt", "granularity": granularity}],
    }
    result = ask(cubes.connection, query)
    assert source_of(result) == "pre_aggregation"
    expected = hand(
        cubes.connection,
        f"SELECT date_trunc('{granularity}', created_at), count(*),"  # noqa: S608 - test text
        " count(*) FILTER (WHERE is_failure),"
        " sum(downtime_hours) FILTER (WHERE is_failure)"
        " / NULLIF(count(*) FILTER (WHERE is_failure), 0)"
        " FROM fact_work_order GROUP BY 1 ORDER BY 1",
    )
    assert rows_of(result, [key, *query["measures"]]) == expected


def test_each_level_of_the_calendar_adds_up_to_the_level_above(cubes: DuckDbWarehouse) -> None:
    totals: dict[str, int] = {}
    for granularity in ("year", "quarter", "month", "day"):
        result = ask(
            cubes.connection,
            {
                "measures": ["WorkOrders.count"],
                "timeDimensions": [
                    {
                        "dimension": "WorkOrders.createdAt",
                        "granularity": granularity,
                        "dateRange": ["2025-12-01", "2026-02-28"],
                    }
                ],
            },
        )
        totals[granularity] = sum(r["WorkOrders.count"] for r in result.body["data"])
        assert (
            len(result.body["data"])
            == {"year": 2, "quarter": 2, "month": 3, "day": 90}[granularity]
        )
    assert len(set(totals.values())) == 1


def test_drilling_site_line_asset_with_the_parent_as_filter(cubes: DuckDbWarehouse) -> None:
    sites = ask(cubes.connection, {"measures": ["WorkOrders.count"], "dimensions": ["Assets.site"]})
    assert rows_of(sites, ["Assets.site", "WorkOrders.count"]) == hand(
        cubes.connection,
        f"SELECT a.site_code, count(*) FROM {WO} GROUP BY 1 ORDER BY 2 DESC, 1",  # noqa: S608 - test text
    )
    lines = ask(
        cubes.connection,
        {
            "measures": ["WorkOrders.count"],
            "dimensions": ["Assets.line"],
            "filters": [{"member": "Assets.site", "operator": "equals", "values": ["S2"]}],
            "order": {"Assets.line": "asc"},
        },
    )
    assert rows_of(lines, ["Assets.line", "WorkOrders.count"]) == hand(
        cubes.connection,
        f"SELECT a.line_code, count(*) FROM {WO} WHERE a.site_code = 'S2' GROUP BY 1 ORDER BY 1",  # noqa: S608 - test text
    )
    assets = ask(
        cubes.connection,
        {
            "measures": ["WorkOrders.count", "WorkOrders.maxDowntimeHours"],
            "dimensions": ["Assets.asset"],
            "filters": [{"member": "Assets.line", "operator": "equals", "values": ["S2-L3"]}],
            "order": {"Assets.asset": "asc"},
        },
    )
    assert rows_of(assets, ["Assets.asset", "WorkOrders.count", "WorkOrders.maxDowntimeHours"]) == (
        hand(
            cubes.connection,
            f"SELECT a.tag, count(*), max(w.downtime_hours) FROM {WO} WHERE a.line_code = 'S2-L3'"  # noqa: S608 - test text
            " GROUP BY 1 ORDER BY 1",
        )
    )
    assert len(assets.body["data"]) == 5
    for result in (sites, lines, assets):
        assert source_of(result) == "pre_aggregation"
    site_total = next(r for r in sites.body["data"] if r["Assets.site"] == "S2")
    assert sum(r["WorkOrders.count"] for r in lines.body["data"]) == site_total["WorkOrders.count"]


def test_filters_order_limit_and_offset(cubes: DuckDbWarehouse) -> None:
    query: dict[str, Any] = {
        "measures": ["WorkOrders.count", "WorkOrders.labourHours"],
        "dimensions": ["Assets.asset", "WorkOrders.priority"],
        "filters": [
            {
                "or": [
                    {"member": "WorkOrders.type", "operator": "equals", "values": ["corrective"]},
                    {"member": "WorkOrders.type", "operator": "startsWith", "values": ["insp"]},
                ]
            },
            {"member": "WorkOrders.priority", "operator": "notEquals", "values": ["low"]},
            {"member": "Assets.asset", "operator": "contains", "values": ["-01"]},
            {"member": "WorkOrders.count", "operator": "gte", "values": ["8"]},
        ],
        "order": [["WorkOrders.count", "desc"], ["Assets.asset", "asc"]],
        "limit": 5,
        "offset": 2,
        "total": True,
    }
    result = ask(cubes.connection, query)
    assert source_of(result) == "pre_aggregation"
    expected = hand(
        cubes.connection,
        f"SELECT a.tag, w.priority, count(*), sum(w.labour_hours) FROM {WO}"  # noqa: S608 - test text
        " WHERE (w.type = 'corrective' OR w.type LIKE 'insp%') AND w.priority <> 'low'"
        " AND a.tag LIKE '%-01%' GROUP BY 1, 2 HAVING count(*) >= 8"
        " ORDER BY 3 DESC, 1, 2",
    )
    keys = ["Assets.asset", "WorkOrders.priority", "WorkOrders.count", "WorkOrders.labourHours"]
    assert rows_of(result, keys) == expected[2:7]
    assert result.body["total"] == len(expected)
    assert len(expected) > 7
    assert result.body["query"]["order"] == [
        ["WorkOrders.count", "desc"],
        ["Assets.asset", "asc"],
        ["WorkOrders.priority", "asc"],
    ]


QUERIES: list[dict[str, Any]] = [
    {"measures": ["WorkOrders.count"]},
    {
        "measures": ["WorkOrders.count", "WorkOrders.avgHoursToComplete", "WorkOrders.partsCost"],
        "dimensions": ["WorkOrders.type", "Assets.line"],
        "timeDimensions": [{"dimension": "WorkOrders.createdAt", "granularity": "quarter"}],
    },
    {
        "measures": ["WorkOrders.downtimeHours", "WorkOrders.labourHours"],
        "dimensions": ["WorkOrders.status"],
        "timeDimensions": [
            {
                "dimension": "WorkOrders.createdAt",
                "granularity": "month",
                "dateRange": ["2025-11-01", "2026-01-31"],
            }
        ],
    },
    {
        "measures": ["Alerts.count", "Alerts.acknowledgedShare", "Alerts.avgMinutesToAcknowledge"],
        "dimensions": ["Alerts.severity", "Assets.site"],
        "filters": [
            {"member": "Alerts.raisedAt", "operator": "afterOrOnDate", "values": ["2026-01-15"]}
        ],
    },
    {
        "measures": ["SensorHours.avgValue", "SensorHours.maxValue", "SensorHours.outOfRangeHours"],
        "dimensions": ["Sensors.type"],
        "timeDimensions": [{"dimension": "SensorHours.hourStart", "granularity": "week"}],
    },
    {
        "measures": ["ScheduleCompliance.pmCompliance", "ScheduleCompliance.avgDaysLate"],
        "dimensions": ["Assets.line"],
        "filters": [
            {"member": "ScheduleCompliance.outcome", "operator": "notEquals", "values": ["pending"]}
        ],
    },
    {
        "measures": ["Spend.amount", "Spend.lines"],
        "dimensions": ["Parts.category", "Suppliers.code"],
        "timeDimensions": [{"dimension": "Spend.invoiceDate", "granularity": "month"}],
    },
    {
        "measures": ["PurchaseOrderLines.orderedValue", "PurchaseOrderLines.quantity"],
        "dimensions": ["Parts.part"],
        "filters": [{"member": "Parts.category", "operator": "equals", "values": ["seals"]}],
    },
    {
        "measures": ["WorkOrders.count", "WorkOrders.partsCost"],
        "dimensions": ["Assets.site", "WorkOrders.status", "WorkOrders.origin"],
        "timeDimensions": [{"dimension": "WorkOrders.createdAt", "granularity": "year"}],
    },
]


@pytest.mark.parametrize("query", QUERIES)
def test_a_pre_aggregation_answers_exactly_as_the_facts_do(
    cubes: DuckDbWarehouse, query: dict[str, Any]
) -> None:
    stored = ask(cubes.connection, query)
    facts = ask(cubes.connection, query, base=True)
    assert source_of(stored) == "pre_aggregation", stored.body["answeredFrom"]
    assert source_of(facts) == "base"
    assert stored.body["data"]
    assert stored.body["data"] == facts.body["data"]


def test_availability_mtbf_and_mttr_follow_the_warehouse_kpis(cube_path: Path) -> None:
    with DuckDbWarehouse(cube_path) as target:
        target.ensure_schema()  # the KPI macros
        connection = target.connection
        result = ask(
            connection,
            {
                "measures": [
                    "AssetAvailability.availability",
                    "AssetAvailability.mtbfHours",
                    "AssetAvailability.mttrHours",
                    "AssetAvailability.failures",
                ],
                "dimensions": ["Assets.site"],
                "timeDimensions": [
                    {
                        "dimension": "AssetAvailability.day",
                        "dateRange": ["2025-12-01", "2026-02-28"],
                    }
                ],
                "order": {"Assets.site": "asc"},
            },
        )
        assert source_of(result) == "pre_aggregation"
        kpis = connection.execute(
            "SELECT site_code, availability, mtbf_hours, mttr_hours, failures"
            " FROM kpi_sites(TIMESTAMP '2025-12-01', TIMESTAMP '2026-03-01') ORDER BY 1"
        ).fetchall()
    got = rows_of(
        result,
        [
            "Assets.site",
            "AssetAvailability.availability",
            "AssetAvailability.mtbfHours",
            "AssetAvailability.mttrHours",
            "AssetAvailability.failures",
        ],
    )
    assert len(got) == len(kpis) == 2
    for mine, theirs in zip(got, kpis, strict=True):
        assert mine[0] == theirs[0]
        assert mine[1:4] == pytest.approx(theirs[1:4], rel=1e-9)
        assert mine[4] == theirs[4]
