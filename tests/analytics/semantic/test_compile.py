"""Compiling queries (pure): validation, parameters, access, and which pre-aggregation covers."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from maintainpro.analytics.semantic.compile import Compiled, StoredState, choose, compile_query
from maintainpro.analytics.semantic.model import default_model, parse_model
from maintainpro.analytics.semantic.plan import Access, plan_query
from maintainpro.analytics.semantic.preaggs import layouts
from maintainpro.analytics.semantic.query import QueryError, QueryForbidden, parse_query
from maintainpro.core.users import Permission

TODAY = dt.date(2026, 4, 15)
HOSTILE = "x'); DROP TABLE fact_work_order; --"
SCRIPT = "<script>alert(1)</script>"


def compiled(query: dict[str, Any], access: Access | None = None) -> Compiled:
    """Compile with every pre-aggregation built and current."""
    model = default_model()
    states = {
        x.table: StoredState(x.table, x.definition_hash, dt.datetime(2026, 1, 1), None, {})
        for x in layouts(model)
    }
    return compile_query(
        model,
        query,
        access or Access.unrestricted(),
        today=TODAY,
        layouts=layouts(model),
        states=states,
    )


def refused(query: Any, access: Access | None = None) -> str:
    with pytest.raises(QueryError) as caught:
        compiled(query, access)
    return str(caught.value)


COUNT = {"measures": ["WorkOrders.count"]}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"measures": ["WorkOrders.nothing"]}, "unknown measure WorkOrders.nothing"),
        ({"measures": ["Nowhere.count"]}, "unknown measure Nowhere.count"),
        ({"dimensions": ["WorkOrders.count"]}, "unknown dimension WorkOrders.count"),
        ({"measures": ["count"]}, "members are written Cube.member"),
        (
            {
                **COUNT,
                "filters": [{"member": "WorkOrders.type", "operator": "like", "values": ["a"]}],
            },
            "unknown filter operator on WorkOrders.type",
        ),
        (
            {
                **COUNT,
                "filters": [{"member": "WorkOrders.type", "operator": "gt", "values": ["a"]}],
            },
            "the operator gt does not apply to WorkOrders.type",
        ),
        (
            {
                **COUNT,
                "filters": [
                    {"member": "WorkOrders.createdAt", "operator": "contains", "values": ["2026"]}
                ],
            },
            "the operator contains does not apply to WorkOrders.createdAt",
        ),
        (
            {
                **COUNT,
                "filters": [{"member": "WorkOrders.id", "operator": "equals", "values": ["seven"]}],
            },
            "a value compared with a number is a number",
        ),
        (
            {**COUNT, "filters": [{"member": "WorkOrders.id", "operator": "gt", "values": [1, 2]}]},
            "gt on WorkOrders.id takes exactly 1 value(s)",
        ),
        (
            {**COUNT, "filters": [{"member": "WorkOrders.type", "operator": "equals"}]},
            "equals on WorkOrders.type takes at least one value(s)",
        ),
        (
            {
                **COUNT,
                "filters": [{"member": "WorkOrders.type", "operator": "set", "values": ["a"]}],
            },
            "set takes no values",
        ),
        (
            {
                **COUNT,
                "filters": [{"member": "WorkOrders.type", "operator": "equals", "values": [None]}],
            },
            "has a null value",
        ),
        (
            {
                **COUNT,
                "filters": [
                    {"member": "WorkOrders.isFailure", "operator": "equals", "values": ["maybe"]}
                ],
            },
            "true or false",
        ),
        (
            {
                **COUNT,
                "filters": [
                    {
                        "or": [
                            {"member": "WorkOrders.type", "operator": "set"},
                            {"member": "WorkOrders.count", "operator": "gt", "values": [1]},
                        ]
                    }
                ],
            },
            "cannot mix measures and dimensions",
        ),
        ({"measures": ["WorkOrders.count", "Alerts.count"]}, "measures come from one cube"),
        ({**COUNT, "dimensions": ["Parts.category"]}, "cannot be combined: no join"),
        (
            {**COUNT, "timeDimensions": [{"dimension": "WorkOrders.type", "granularity": "day"}]},
            "WorkOrders.type is not a time dimension",
        ),
        (
            {
                **COUNT,
                "timeDimensions": [
                    {"dimension": "WorkOrders.createdAt", "granularity": "fortnight"}
                ],
            },
            "unknown granularity",
        ),
        (
            {
                **COUNT,
                "timeDimensions": [
                    {"dimension": "WorkOrders.createdAt", "dateRange": ["2026-03-01", "2026-01-01"]}
                ],
            },
            "ends before it starts",
        ),
        (
            {
                **COUNT,
                "timeDimensions": [
                    {"dimension": "WorkOrders.createdAt", "dateRange": ["2026-13-45", "2026-01-01"]}
                ],
            },
            "not an ISO 8601 date",
        ),
        (
            {
                **COUNT,
                "timeDimensions": [
                    {"dimension": "WorkOrders.createdAt", "dateRange": "since the dawn of time"}
                ],
            },
            "a date range is two dates or one of",
        ),
        ({**COUNT, "order": {"WorkOrders.type": "asc"}}, "order names WorkOrders.type"),
        ({**COUNT, "order": {"WorkOrders.count": "sideways"}}, "is not one of the accepted"),
        ({**COUNT, "limit": 50_001}, "limit: is too large"),
        ({**COUNT, "limit": 0}, "limit: is too small"),
        ({**COUNT, "timezone": "Europe/Paris"}, "timezone: is not one of the accepted values"),
        ({**COUNT, "segments": ["WorkOrders.open"]}, "segments: has too many items"),
        ({**COUNT, "ungrouped": True}, "ungrouped"),
        (
            {"timeDimensions": [{"dimension": "WorkOrders.createdAt", "dateRange": "today"}]},
            "at least one measure, dimension or time granularity",
        ),
        ([], "the query is a JSON object"),
    ],
)
def test_a_query_that_cannot_be_answered_is_refused_with_a_clear_reason(
    query: Any, expected: str
) -> None:
    assert expected in refused(query)


@pytest.mark.parametrize(
    "query",
    [
        {"measures": [f"WorkOrders.{SCRIPT}"]},
        {"measures": [SCRIPT]},
        {"dimensions": [HOSTILE]},
        {**COUNT, "order": {SCRIPT: "asc"}},
        {**COUNT, "filters": [{"member": HOSTILE, "operator": "equals", "values": ["a"]}]},
        {**COUNT, SCRIPT: 1},
        {**COUNT, "filters": [{"member": "WorkOrders.type", "operator": SCRIPT, "values": ["a"]}]},
        {**COUNT, "timeDimensions": [{"dimension": "WorkOrders.createdAt", "dateRange": SCRIPT}]},
    ],
)
def test_an_error_never_repeats_hostile_input(query: dict[str, Any]) -> None:
    message = refused(query)
    for fragment in ("<script>", "DROP TABLE", "alert(1)"):
        assert fragment not in message


def test_filter_values_are_bound_never_written_into_the_sql() -> None:
    query = {
        **COUNT,
        "dimensions": ["WorkOrders.type"],
        "filters": [
            {"member": "WorkOrders.type", "operator": "equals", "values": [HOSTILE]},
            {"member": "WorkOrders.status", "operator": "contains", "values": ["50%_off\\"]},
            {"member": "WorkOrders.id", "operator": "gte", "values": ["12.5"]},
        ],
    }
    statement = compiled(query).statement
    assert HOSTILE not in statement.sql
    assert "50%" not in statement.sql
    assert HOSTILE in statement.params
    # LIKE wildcards and the escape character in a value match themselves only.
    assert "%50\\%\\_off\\\\%" in statement.params
    assert statement.sql.count("?") == len(statement.params)


def test_a_date_range_includes_its_last_day_and_is_bound() -> None:
    query = {
        **COUNT,
        "timeDimensions": [
            {
                "dimension": "WorkOrders.createdAt",
                "granularity": "month",
                "dateRange": ["2026-01-01", "2026-06-30"],
            }
        ],
    }
    statement = compiled(query).statement
    assert dt.datetime(2026, 1, 1) in statement.params
    assert dt.datetime(2026, 7, 1) in statement.params


@pytest.mark.parametrize(
    ("phrase", "start", "end"),
    [
        ("today", dt.datetime(2026, 4, 15), dt.datetime(2026, 4, 16)),
        ("yesterday", dt.datetime(2026, 4, 14), dt.datetime(2026, 4, 15)),
        ("last 7 days", dt.datetime(2026, 4, 8), dt.datetime(2026, 4, 15)),
        ("this month", dt.datetime(2026, 4, 1), dt.datetime(2026, 5, 1)),
        ("last month", dt.datetime(2026, 3, 1), dt.datetime(2026, 4, 1)),
        ("last quarter", dt.datetime(2026, 1, 1), dt.datetime(2026, 4, 1)),
        ("last 2 years", dt.datetime(2024, 1, 1), dt.datetime(2026, 1, 1)),
        ("this week", dt.datetime(2026, 4, 13), dt.datetime(2026, 4, 20)),
    ],
)
def test_relative_date_ranges(phrase: str, start: dt.datetime, end: dt.datetime) -> None:
    query = {
        **COUNT,
        "timeDimensions": [{"dimension": "WorkOrders.createdAt", "dateRange": phrase}],
    }
    plan = plan_query(default_model(), parse_query(query), Access.unrestricted(), TODAY)
    span = plan.times[0].range
    assert span is not None
    assert (span.start, span.end) == (start, end)


def test_a_cube_needs_one_of_its_permissions() -> None:
    technician = Access(frozenset({Permission.ASSETS_READ}), None)
    with pytest.raises(QueryForbidden, match="the cube Spend"):
        compiled({"measures": ["Spend.amount"]}, technician)
    buyer = Access(frozenset({Permission.SUPPLY_READ}), None)
    with pytest.raises(QueryForbidden, match="the cube WorkOrders"):
        compiled(COUNT, buyer)
    # A joined cube is checked too.
    model = parse_model(
        {
            "cubes": [
                {
                    "name": "Orders",
                    "table": "fact_work_order",
                    "permissions": ["assets:read"],
                    "measures": [{"name": "count", "type": "count"}],
                    "joins": [{"cube": "Stock", "sql": "{CUBE}.asset_key = {Stock}.part_key"}],
                },
                {
                    "name": "Stock",
                    "table": "dim_part",
                    "permissions": ["supply:read"],
                    "dimensions": [{"name": "category", "type": "string", "sql": "category"}],
                },
            ]
        }
    )
    query = {"measures": ["Orders.count"], "dimensions": ["Stock.category"]}
    with pytest.raises(QueryForbidden, match="the cube Stock"):
        compile_query(model, query, technician, today=TODAY)
    everything = Access(frozenset(Permission), None)
    assert compile_query(model, query, everything, today=TODAY).plan.joined
    # ... and so is its site rule: parts belong to no site, so a site-bound user gets none.
    with pytest.raises(QueryForbidden, match="the cube Stock"):
        compile_query(model, query, Access(frozenset(Permission), frozenset({7})), today=TODAY)


def test_a_site_bound_caller_reads_no_cube_without_sites_and_others_only_for_its_site() -> None:
    site_user = Access(frozenset(Permission), frozenset({7}))
    with pytest.raises(QueryForbidden):
        compiled({"measures": ["Spend.amount"]}, site_user)
    with pytest.raises(QueryForbidden):
        compiled({"measures": ["Parts.count"]}, site_user)
    statement = compiled({**COUNT, "dimensions": ["Assets.site"]}, site_user).statement
    assert '"p"."_site" IN (?)' in statement.sql
    assert 7 in statement.params
    base = compiled({"measures": ["WorkOrders.assetsAffected"]}, site_user).statement
    assert '"WorkOrders"."site_key" IN (?)' in base.sql


def test_default_order_then_every_grouping_column_for_a_stable_order() -> None:
    by_time = parse_query(
        {
            **COUNT,
            "dimensions": ["WorkOrders.type"],
            "timeDimensions": [{"dimension": "WorkOrders.createdAt", "granularity": "day"}],
        }
    )
    plan = plan_query(default_model(), by_time, Access.unrestricted(), TODAY)
    assert plan.order == ((1, False), (0, False))
    by_measure = parse_query({**COUNT, "dimensions": ["WorkOrders.type"]})
    plan = plan_query(default_model(), by_measure, Access.unrestricted(), TODAY)
    assert plan.order == ((1, True), (0, False))
    listed = parse_query(
        {**COUNT, "dimensions": ["WorkOrders.type"], "order": [["WorkOrders.type", "desc"]]}
    )
    plan = plan_query(default_model(), listed, Access.unrestricted(), TODAY)
    assert plan.order == ((0, True),)


def _source(query: dict[str, Any]) -> tuple[str | None, str | None]:
    choice = compiled(query).choice
    return (choice.layout.name if choice.layout else None), choice.reason


@pytest.mark.parametrize(
    "query",
    [
        {**COUNT, "dimensions": ["Assets.site"]},
        {
            "measures": ["WorkOrders.mttrHours", "WorkOrders.avgHoursToStart"],
            "dimensions": ["WorkOrders.type"],
            "timeDimensions": [
                {
                    "dimension": "WorkOrders.createdAt",
                    "granularity": "week",
                    "dateRange": ["2026-01-01", "2026-03-31"],
                }
            ],
        },
        {
            **COUNT,
            "filters": [
                {"member": "Assets.line", "operator": "equals", "values": ["L1"]},
                {
                    "member": "WorkOrders.createdAt",
                    "operator": "beforeDate",
                    "values": ["2026-02-01"],
                },
                {"member": "WorkOrders.count", "operator": "gt", "values": [3]},
            ],
        },
    ],
)
def test_a_pre_aggregation_covers_queries_within_its_members_and_buckets(
    query: dict[str, Any],
) -> None:
    name, reason = _source(query)
    assert name is not None, reason


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ({"measures": ["WorkOrders.assetsAffected"]}, "distinct count"),
        ({**COUNT, "dimensions": ["WorkOrders.origin", "Assets.asset"]}, "not grouped by"),
        ({**COUNT, "dimensions": ["WorkOrders.createdAt"]}, "raw time"),
        (
            {
                **COUNT,
                "timeDimensions": [{"dimension": "WorkOrders.createdAt", "granularity": "hour"}],
            },
            "holds days, not hours",
        ),
        (
            {
                **COUNT,
                "timeDimensions": [
                    {
                        "dimension": "WorkOrders.createdAt",
                        "dateRange": ["2026-01-01T06:00:00", "2026-01-31"],
                    }
                ],
            },
            "does not fall on day boundaries",
        ),
        (
            {**COUNT, "timeDimensions": [{"dimension": "WorkOrders.dueAt", "granularity": "day"}]},
            "not bucketed by WorkOrders.dueAt",
        ),
        ({"measures": ["Assets.count"]}, "no pre-aggregation of this cube"),
    ],
)
def test_the_base_facts_answer_what_no_pre_aggregation_covers(
    query: dict[str, Any], reason: str
) -> None:
    name, why = _source(query)
    assert name is None
    assert why is not None
    assert reason in why


def test_the_smallest_covering_grouping_set_is_read_and_stale_ones_are_not() -> None:
    model = default_model()
    daily = next(x for x in layouts(model) if x.name == "WorkOrders.daily")
    site = daily.position("Assets.site")
    kind = daily.position("WorkOrders.type")
    assert site is not None
    assert kind is not None
    rows = {daily.gid(s): 1000 + 10 * len(s) for s in daily.sets}
    marker = dt.datetime(2026, 2, 1)
    states = {daily.table: StoredState(daily.table, daily.definition_hash, marker, marker, rows)}
    query = parse_query({**COUNT, "dimensions": ["WorkOrders.type"]})
    plan = plan_query(model, query, Access.unrestricted(), TODAY)
    choice = choose(plan, layouts(model), states, marker)
    assert choice.layout is daily
    assert choice.gid == daily.gid(frozenset({kind}))
    assert choice.grouping_set == ("WorkOrders.type",)
    # Make the (site, type) set the cheapest: it is chosen although it holds more columns.
    rows[daily.gid(frozenset({site, kind}))] = 1
    assert choose(plan, layouts(model), states, marker).grouping_set == (
        "Assets.site",
        "WorkOrders.type",
    )
    later = choose(plan, layouts(model), states, marker + dt.timedelta(hours=1))
    assert later.layout is None
    assert later.reason is not None
    assert "older than the last warehouse load" in later.reason
    changed = {daily.table: StoredState(daily.table, "other", marker, marker, rows)}
    unbuilt = choose(plan, layouts(model), changed, marker)
    assert unbuilt.reason is not None
    assert "has not been built" in unbuilt.reason
