"""Row-level security in the cubes: a site-bound caller's answers hold its site's rows only,
through totals and roll-ups too, from pre-aggregations and from the facts alike."""

from __future__ import annotations

from typing import Any

import pytest

from analytics.semantic.cube_world import SITE_A, SITE_B, ask, hand, rows_of, source_of
from maintainpro.analytics.semantic.plan import Access
from maintainpro.analytics.semantic.query import QueryForbidden
from maintainpro.analytics.warehouse import DuckDbWarehouse
from maintainpro.core.users import Permission

SITE_A_USER = Access(frozenset(Permission), frozenset({SITE_A}))
WO = "fact_work_order w JOIN dim_asset a ON a.asset_key = w.asset_key"

QUERIES: list[tuple[dict[str, Any], str, list[str]]] = [
    # A grand total: one row, which must be site A's total, not the plant's.
    (
        {"measures": ["WorkOrders.count", "WorkOrders.partsCost"]},
        f"SELECT count(*), sum(w.parts_cost_base) FROM {WO} WHERE w.site_key = ?",  # noqa: S608 - test text
        ["WorkOrders.count", "WorkOrders.partsCost"],
    ),
    # Rolled up past the site: per type (the stored (type) set never mixes sites).
    (
        {
            "measures": ["WorkOrders.count"],
            "dimensions": ["WorkOrders.type"],
            "order": {"WorkOrders.type": "asc"},
        },
        f"SELECT w.type, count(*) FROM {WO} WHERE w.site_key = ? GROUP BY 1 ORDER BY 1",  # noqa: S608 - test text
        ["WorkOrders.type", "WorkOrders.count"],
    ),
    # Per month, no site in the query.
    (
        {
            "measures": ["Alerts.count", "Alerts.avgMinutesToAcknowledge"],
            "timeDimensions": [{"dimension": "Alerts.raisedAt", "granularity": "month"}],
        },
        "SELECT date_trunc('month', raised_at), count(*),"
        " sum(minutes_to_acknowledge) / NULLIF(count(minutes_to_acknowledge), 0)"
        " FROM fact_alert WHERE site_key = ? GROUP BY 1 ORDER BY 1",
        ["Alerts.raisedAt.month", "Alerts.count", "Alerts.avgMinutesToAcknowledge"],
    ),
    # A distinct count, answered from the facts.
    (
        {"measures": ["WorkOrders.assetsAffected"]},
        "SELECT count(DISTINCT asset_key) FROM fact_work_order WHERE site_key = ?",
        ["WorkOrders.assetsAffected"],
    ),
]


@pytest.mark.parametrize(("query", "sql", "keys"), QUERIES)
@pytest.mark.parametrize("base", [False, True], ids=["pre_aggregation", "facts"])
def test_a_site_bound_caller_sees_only_its_sites_figures(
    cubes: DuckDbWarehouse, query: dict[str, Any], sql: str, keys: list[str], base: bool
) -> None:
    result = ask(cubes.connection, query, access=SITE_A_USER, base=base)
    expected = hand(cubes.connection, sql, [SITE_A])
    assert rows_of(result, keys) == expected
    everyone = ask(cubes.connection, query, base=base)
    assert everyone.body["data"] != result.body["data"]


def test_no_row_of_another_site_comes_through_any_dimension(cubes: DuckDbWarehouse) -> None:
    for dimension in ("Assets.site", "Assets.line", "Assets.asset", "Sites.name"):
        result = ask(
            cubes.connection,
            {"measures": ["WorkOrders.count"], "dimensions": [dimension]},
            access=SITE_A_USER,
        )
        values = {r[dimension] for r in result.body["data"]}
        assert values
        for value in values:
            assert "S2" not in value
            assert "South" not in value
    lines = ask(
        cubes.connection,
        {"measures": ["WorkOrders.count"], "dimensions": ["Assets.line"]},
        access=SITE_A_USER,
    )
    assert source_of(lines) == "pre_aggregation"
    assert (
        sum(r["WorkOrders.count"] for r in lines.body["data"])
        == hand(
            cubes.connection, "SELECT count(*) FROM fact_work_order WHERE site_key = ?", [SITE_A]
        )[0][0]
    )


def test_asking_for_another_site_gives_nothing(cubes: DuckDbWarehouse) -> None:
    query = {
        "measures": ["WorkOrders.count"],
        "dimensions": ["Assets.site"],
        "filters": [{"member": "Assets.site", "operator": "equals", "values": ["S2"]}],
    }
    for base in (False, True):
        assert ask(cubes.connection, query, access=SITE_A_USER, base=base).body["data"] == []
    total = {"measures": ["WorkOrders.count"], "filters": query["filters"]}
    answered = ask(cubes.connection, total, access=SITE_A_USER)
    assert answered.body["data"] == [{"WorkOrders.count": 0}]
    site_b = Access(frozenset(Permission), frozenset({SITE_B}))
    assert ask(cubes.connection, total, access=site_b).body["data"][0]["WorkOrders.count"] > 0


def test_a_site_without_rows_gets_zero_and_procurement_stays_closed(
    cubes: DuckDbWarehouse,
) -> None:
    nowhere = Access(frozenset(Permission), frozenset({999}))
    result = ask(cubes.connection, {"measures": ["WorkOrders.count"]}, access=nowhere)
    assert result.body["data"] == [{"WorkOrders.count": 0}]
    with pytest.raises(QueryForbidden):
        ask(cubes.connection, {"measures": ["Spend.amount"]}, access=SITE_A_USER)
    with pytest.raises(QueryForbidden):
        ask(cubes.connection, {"measures": ["PurchaseOrderLines.count"]}, access=SITE_A_USER)


def test_availability_for_a_site_adds_up_that_sites_assets_only(cubes: DuckDbWarehouse) -> None:
    query = {"measures": ["AssetAvailability.assetHours"]}
    mine = ask(cubes.connection, query, access=SITE_A_USER)
    # Every asset of the site, every hour from the first work order's day to the facts' end.
    ((expected,),) = cubes.connection.execute(
        "SELECT (SELECT count(*) FROM dim_asset WHERE site_key = ?)"
        " * epoch(max(greatest(created_at, coalesce(completed_at, created_at)))"
        "         - CAST(CAST(min(created_at) AS DATE) AS TIMESTAMP)) / 3600"
        " FROM fact_work_order",
        [SITE_A],
    ).fetchall()
    assert mine.body["data"][0]["AssetAvailability.assetHours"] == pytest.approx(expected)
