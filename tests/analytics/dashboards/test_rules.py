"""The pure rules: grids, date ranges, sharing, and how hostile input is reported."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from maintainpro.analytics.dashboards.filters import (
    shared_dimensions,
    with_dashboard_filters,
    with_member_filters,
)
from maintainpro.analytics.dashboards.rules import (
    DashboardError,
    DashboardIn,
    MemberFilter,
    QuestionIn,
    check_date_range,
    check_grid,
    check_query,
    may_change,
    may_view,
    parse_model,
    with_date_range,
)
from maintainpro.analytics.semantic.model import default_model
from maintainpro.core.users import Role, User

TODAY = dt.date(2026, 4, 1)
SCRIPT = "<script>alert(1)</script>"


def _user(role: Role, user_id: int = 7, site_id: int | None = None) -> User:
    return User(id=user_id, username="u", role=role, password_hash="x", site_id=site_id)


def _board(layout: list[dict[str, Any]]) -> DashboardIn:
    return parse_model(DashboardIn, {"name": "Board", "layout": layout}, "dashboard")


def test_items_must_fit_the_twelve_columns_and_not_overlap() -> None:
    check_grid(
        _board(
            [
                {"kind": "question", "question_id": 1, "x": 0, "y": 0, "w": 6, "h": 4},
                {"kind": "question", "question_id": 2, "x": 6, "y": 0, "w": 6, "h": 4},
                {"kind": "sensors", "sensor_ids": [3], "x": 0, "y": 4, "w": 12, "h": 2},
            ]
        ).layout
    )
    with pytest.raises(DashboardError, match="past column 12"):
        check_grid(_board([{"kind": "question", "question_id": 1, "x": 8, "y": 0, "w": 6}]).layout)
    with pytest.raises(DashboardError, match="past row 200"):
        check_grid(
            _board([{"kind": "question", "question_id": 1, "x": 0, "y": 197, "h": 4}]).layout
        )
    with pytest.raises(DashboardError, match=r"layout\[1\] overlaps"):
        check_grid(
            _board(
                [
                    {"kind": "question", "question_id": 1, "x": 0, "y": 0, "w": 6, "h": 4},
                    {"kind": "sensors", "sensor_ids": [3], "x": 5, "y": 3, "w": 2, "h": 1},
                ]
            ).layout
        )


@pytest.mark.parametrize(
    "body",
    [
        {"name": "B", "layout": [{"kind": SCRIPT, "x": 0, "y": 0}]},
        {"name": "B", SCRIPT: 1},
        {"name": SCRIPT},
        {"name": "B", "refresh_s": -1},
        {"name": "B", "layout": [{"kind": "sensors", "sensor_ids": [], "x": 0, "y": 0}]},
        {"name": "B", "layout": [{"kind": "question", "question_id": 1, "x": 0, "y": 0}] * 61},
        [SCRIPT],
    ],
)
def test_hostile_dashboards_are_refused_without_an_echo(body: Any) -> None:
    with pytest.raises(DashboardError) as caught:
        parse_model(DashboardIn, body, "dashboard")
    assert caught.value.status == 422
    assert "script" not in str(caught.value).lower()


def test_a_query_is_checked_against_the_model_for_the_user() -> None:
    model = default_model()
    admin = _user(Role.ADMIN)
    check_query(
        model, {"measures": ["WorkOrders.count"], "dimensions": ["Assets.site"]}, admin, TODAY
    )
    with pytest.raises(DashboardError) as unknown:
        check_query(model, {"measures": [f"WorkOrders.{SCRIPT}"]}, admin, TODAY)
    assert unknown.value.status == 422
    assert "script" not in str(unknown.value).lower()
    with pytest.raises(DashboardError) as forbidden:
        check_query(model, {"measures": ["Spend.amount"]}, _user(Role.TECHNICIAN), TODAY)
    assert forbidden.value.status == 403
    with pytest.raises(DashboardError, match="longer than"):
        check_query(model, {"measures": ["WorkOrders.count"], "x": "y" * 20_000}, admin, TODAY)


def test_a_question_needs_a_known_chart_and_shareable_roles() -> None:
    good = {"name": "Q", "query": {"measures": ["WorkOrders.count"]}, "chart": "heatmap"}
    assert parse_model(QuestionIn, good, "question").chart == "heatmap"
    with pytest.raises(DashboardError, match="chart"):
        parse_model(QuestionIn, {**good, "chart": "pie3d"}, "question")
    with pytest.raises(DashboardError, match="shared_roles"):
        parse_model(QuestionIn, {**good, "shared_roles": ["supplier"]}, "question")


def test_the_dashboard_date_range_replaces_every_time_dimensions_range() -> None:
    query = {
        "measures": ["WorkOrders.count"],
        "timeDimensions": [
            {"dimension": "WorkOrders.createdAt", "granularity": "day", "dateRange": "last year"}
        ],
    }
    changed = with_date_range(query, ["2026-01-01", "2026-01-31"])
    assert changed["timeDimensions"] == [
        {
            "dimension": "WorkOrders.createdAt",
            "granularity": "day",
            "dateRange": ["2026-01-01", "2026-01-31"],
        }
    ]
    assert query["timeDimensions"][0]["dateRange"] == "last year"  # the saved one is untouched
    assert with_date_range(query, None) is query
    plain = {"measures": ["WorkOrders.count"]}
    assert with_date_range(plain, "last week") is plain
    check_date_range("last 30 days", TODAY)
    with pytest.raises(DashboardError, match="dateRange"):
        check_date_range(["2026-02-01", "2026-01-01"], TODAY)
    with pytest.raises(DashboardError, match="dateRange"):
        check_date_range("the day after never", TODAY)


def test_sharing_owner_admin_and_shared_roles_only() -> None:
    owner = _user(Role.ANALYST, user_id=1)
    tech = _user(Role.TECHNICIAN, user_id=2)
    admin = _user(Role.ADMIN, user_id=3)
    assert may_view(1, [], owner)
    assert not may_view(1, [], tech)
    assert may_view(1, ["technician"], tech)
    assert may_view(1, [], admin)
    assert may_change(1, owner)
    assert not may_change(1, tech)
    assert may_change(1, admin)


def test_a_member_filter_reaches_a_question_through_its_cube_a_join_or_the_same_site_code() -> None:
    model = default_model()
    shared = shared_dimensions(model)
    # Dimensions of the cubes other cubes join; no keys, no times, no fact-only dimensions.
    assert {"Sites.code", "Sites.name", "Assets.asset", "Parts.category"} <= set(shared)
    assert not {"Sites.id", "Assets.installDate", "WorkOrders.status"} & set(shared)
    site = MemberFilter(member="Sites.code", values=["S1"])
    category = MemberFilter(member="Parts.category", operator="notEquals", values=["bearing"])
    own = {"member": "WorkOrders.type", "operator": "equals", "values": ["corrective"]}
    work = {"measures": ["WorkOrders.count"], "filters": [own]}
    changed, skipped = with_member_filters(model, work, [site, category], TODAY)
    assert changed["filters"] == [own, {**site.model_dump()}]
    assert skipped == ["Parts.category"]
    assert work["filters"] == [own]  # the saved query is untouched
    assets = {"measures": ["Assets.count"]}
    changed, skipped = with_member_filters(model, assets, [site], TODAY)
    assert changed["filters"] == [{"member": "Assets.site", "operator": "equals", "values": ["S1"]}]
    assert skipped == []
    spend = {"measures": ["Spend.amount"]}
    changed, skipped = with_member_filters(model, spend, [site, category], TODAY)
    assert changed["filters"] == [category.model_dump()]
    assert skipped == ["Sites.code"]
    unchanged, skipped = with_member_filters(model, spend, [site], TODAY)
    assert unchanged is spend
    assert skipped == ["Sites.code"]

    # A dashboard's saved filters, both kinds at once (what a scheduled report runs).
    timed = {
        "measures": ["WorkOrders.count"],
        "timeDimensions": [{"dimension": "WorkOrders.createdAt", "dateRange": "last year"}],
    }
    stored = {"dateRange": "last 30 days", "members": [site.model_dump(), category.model_dump()]}
    both, skipped = with_dashboard_filters(model, timed, stored, TODAY)
    assert both["timeDimensions"][0]["dateRange"] == "last 30 days"
    assert both["filters"] == [site.model_dump()]
    assert skipped == ["Parts.category"]
    assert with_dashboard_filters(model, timed, {}, TODAY) == (timed, [])
