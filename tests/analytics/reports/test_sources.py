"""The built-in reports over the two-site world: figures per site scope, worked out by hand."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy.orm import Session

from analytics.reports.report_world import BERLIN, FEB_END, FEB_START, RUN_AT, World
from maintainpro.analytics.reports.data import ReportData, RunParams, SourceError
from maintainpro.analytics.reports.maintenance_sources import age_bucket
from maintainpro.analytics.reports.sources import checked_params, source_for
from maintainpro.analytics.reports.supply_sources import NO_SITE_NOTE
from maintainpro.supply.rates import ExchangeRate
from supply.procurement_world import EUR_USD, TODAY
from supply.procurement_world import World as SupplierWorld
from supply.test_performance import AFTER, two_deliveries_one_late
from support import plant

UTC = dt.UTC


def params(**options: Any) -> RunParams:
    """February in Berlin, run on 1 March 06:00."""
    return RunParams(
        period_start=FEB_START,
        period_end=FEB_END,
        timezone=BERLIN,
        as_of=RUN_AT,
        title="Report",
        options=options,
    )


def figures(data: ReportData) -> dict[str, Any]:
    """The summary as label -> value."""
    return {f.label: f.value for f in data.summary}


def rows(data: ReportData, table: str, *keys: str) -> list[tuple[Any, ...]]:
    """Chosen columns of a table's rows."""
    found = data.table(table)
    index = [found.column(k) for k in keys]
    return [tuple(row[i] for i in index) for row in found.rows]


def test_pm_compliance_counts_each_outcome_per_site(db: Session, world: World) -> None:
    data = source_for("pm_compliance").run(db, params(), None)
    # Site A: on time (due 3, done 4), late (due 10, done 20), missed (due 25, open past the
    # 3-day grace). Site B: on time (due 12), pending (due 27 12:00, grace to 2 March).
    # The January occurrence is outside the period.
    assert rows(data, "by_site", "site", "on_time", "late", "missed", "pending", "compliance") == [
        ("SA", 1, 1, 1, 0, 33.3),
        ("SB", 1, 0, 0, 1, 100.0),
    ]
    assert figures(data)["PM compliance"] == 50.0  # 2 on time of 4 judged
    assert figures(data)["PM occurrences due"] == 5
    outcomes = rows(data, "occurrences", "asset", "outcome", "days_late")
    assert ("PA-2", "late", 10.0) in outcomes
    assert ("PA-1", "missed", None) in outcomes


def test_a_site_scope_keeps_that_site_only(db: Session, world: World) -> None:
    data = source_for("pm_compliance").run(db, params(), frozenset({world.site_b}))
    assert rows(data, "by_site", "site") == [("SB",)]
    assert figures(data)["PM compliance"] == 100.0
    assert {r[0] for r in rows(data, "occurrences", "site")} == {"SB"}
    nothing = source_for("pm_compliance").run(db, params(), frozenset())
    assert nothing.is_empty


def test_bad_actors_rank_by_failures_downtime_or_alerts(db: Session, world: World) -> None:
    source = source_for("bad_actors")
    columns = ("rank", "asset", "failures", "downtime_hours", "alerts")
    # PA-1: 3 failures (the cancelled one does not count), 6 h down; PA-2: 1 failure, 2 alerts;
    # PB-1: 1 failure, 30 h down (created 6 Feb 10:00, completed 7 Feb 16:00), 3 alerts.
    by_orders = source.run(db, params(), None)
    assert rows(by_orders, "top_assets", *columns) == [
        (1, "PA-1", 3, 6.0, 0),
        (2, "PB-1", 1, 30.0, 3),  # ties on failures go to more downtime
        (3, "PA-2", 1, 0.0, 2),
    ]
    assert figures(by_orders)["Failure downtime"] == 36.0
    by_downtime = source.run(db, params(rank_by="downtime", top=2), None)
    assert rows(by_downtime, "top_assets", "asset") == [("PB-1",), ("PA-1",)]
    by_alerts = source.run(db, params(rank_by="alerts"), frozenset({world.site_a}))
    assert rows(by_alerts, "top_assets", "asset", "alerts") == [("PA-2", 2), ("PA-1", 0)]
    assert figures(by_alerts)["Failure work orders"] == 4


def test_backlog_buckets_open_orders_by_age(db: Session, world: World) -> None:
    data = source_for("backlog").run(db, params(), None)
    columns = ("site", "age_0", "age_1", "age_2", "age_3", "total", "overdue")
    # Site A: the PM opened 22 Feb 10:00 is 6.8 days old at 1 March 05:00 (and overdue); the
    # corrective (15 Feb), condition-based (20 Feb) and fan belt (5 Feb) orders are 8-30 days
    # old. Site B: the PM opened 25 Feb (3.8 days, overdue) and the leak opened 100 days ago.
    assert rows(data, "by_site", *columns) == [("SA", 1, 3, 0, 0, 4, 1), ("SB", 1, 0, 0, 1, 2, 1)]
    assert figures(data)["Open work orders"] == 6
    assert figures(data)["Oldest"] == 100.0
    assert rows(data, "orders", "title")[0] == ("Old leak",)  # oldest first


@pytest.mark.parametrize(
    ("days", "bucket"),
    [
        (0, "0-7 days"),
        (6.99, "0-7 days"),
        (7, "8-30 days"),
        (30, "31-90 days"),
        (91, "over 90 days"),
    ],
)
def test_age_buckets(days: float, bucket: str) -> None:
    assert age_bucket(dt.timedelta(days=days)) == bucket


def test_spend_per_site_scope(db: Session, world: World) -> None:
    source = source_for("spend")
    everyone = source.run(db, params(), None)
    assert rows(everyone, "spend", "key", "amount") == [("ACME", Decimal("75.00"))]
    site_a = source.run(db, params(group_by="site"), frozenset({world.site_a}))
    assert rows(site_a, "spend", "key", "amount") == [("SA", Decimal("70.00"))]
    site_b = source.run(db, params(), frozenset({world.site_b}))
    assert figures(site_b)["Total spend"] == Decimal("5.00")


def test_scorecards_go_to_recipients_of_every_site_only(db: Session, world: World) -> None:
    source = source_for("supplier_scorecards")
    scoped = source.run(db, params(), frozenset({world.site_a}))
    assert scoped.is_empty
    assert NO_SITE_NOTE in scoped.notes


@pytest.mark.parametrize(
    ("source", "given", "problem"),
    [
        ("nonsense", {}, "unknown report source"),
        ("pm_compliance", {"period": "fortnight"}, "period must be one of"),
        ("pm_compliance", {"colour": "red"}, "no options"),
        ("bad_actors", {"top": 0}, "top must be"),
        ("bad_actors", {"top": True}, "top must be"),
        ("bad_actors", {"rank_by": "cost"}, "rank_by must be"),
        ("spend", {"group_by": "colour"}, "group_by must be"),
    ],
)
def test_bad_params_are_refused(source: str, given: dict[str, Any], problem: str) -> None:
    with pytest.raises(SourceError, match=problem):
        checked_params(source, given)


def test_params_get_their_defaults() -> None:
    assert checked_params("bad_actors", {}) == {
        "period": "previous_month",
        "top": 10,
        "rank_by": "work_orders",
    }


def test_scorecards_reuse_the_supplier_scorecard(db: Session) -> None:
    # The supplier tests' EUR order: acknowledged after 6 h, 2 of 4 bearings two days late,
    # scored 69.2 (grade D) over November and December 2026 (derived in test_performance).
    supplier_world = SupplierWorld(db, plant(db))
    db.add(ExchangeRate(day=TODAY, currency="USD", per_eur=EUR_USD, source="ECB"))
    two_deliveries_one_late(supplier_world)
    winter = RunParams(
        period_start=dt.datetime(2026, 11, 1, tzinfo=UTC),
        period_end=dt.datetime(2027, 1, 1, tzinfo=UTC),
        timezone="UTC",
        as_of=AFTER,
        title="Scorecards",
    )
    data = source_for("supplier_scorecards").run(db, winter, None)
    assert rows(data, "scorecards", "supplier", "score", "grade", "on_time_delivery") == [
        ("EUROBEAR", Decimal("69.2"), "D", Decimal("50.0"))
    ]
    assert figures(data)["Grade D or F"] == 1
