"""KPIs against figures worked out by hand from the world's work orders (see
analytics_world.maintenance_history)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import Engine

from analytics.analytics_world import KPI_PERIOD, at
from maintainpro.analytics.kpis import asset_kpis
from maintainpro.analytics.lineage import Lineage
from maintainpro.analytics.runs import BuildOptions, build
from maintainpro.analytics.warehouse import DuckDbWarehouse, naive_utc


@pytest.fixture
def built(
    engine: Engine, seeded: dict[str, int], warehouse: DuckDbWarehouse, lineage: Lineage
) -> DuckDbWarehouse:
    """The warehouse after one build of the seeded world."""
    build(engine, warehouse, lineage, BuildOptions(base_currency="USD"))
    return warehouse


def test_asset_kpis_match_the_hand_computed_figures(built: DuckDbWarehouse) -> None:
    by_tag = {k.tag: k for k in asset_kpis(built.connection, *KPI_PERIOD)}
    pump, motor = by_tag["P-1"], by_tag["M-1"]

    assert pump.period_hours == pytest.approx(100.0)
    # Two failures (4 h and 2 h from report to completion) and one planned job (2 h).
    assert pump.failures == 2
    assert pump.failure_downtime_hours == pytest.approx(6.0)
    assert pump.mttr_hours == pytest.approx(3.0)
    assert pump.downtime_hours == pytest.approx(8.0)
    assert pump.mtbf_hours == pytest.approx((100 - 8) / 2)
    assert pump.availability == pytest.approx(0.92)
    # Preventive: one on time (due 30 h, done 33 h), one missed (due 60 h, open at 100 h).
    assert (pump.pm_on_time, pump.pm_late, pump.pm_missed) == (1, 0, 1)
    assert pump.pm_compliance == pytest.approx(0.5)
    # Backlog at the period end: the missed preventive order, opened at 55 h.
    assert pump.backlog_orders == 1
    assert pump.backlog_avg_age_days == pytest.approx(45 / 24)
    assert pump.backlog_max_age_days == pytest.approx(45 / 24)
    # 2 x 10.00 USD + 100.00 EUR x 1.08.
    assert pump.cost_base == Decimal("128.0000")
    assert pump.labour_hours == Decimal("2.50")
    assert pump.parts_waiting_hours == pytest.approx(1.5)
    assert pump.parts_waiting_orders == 1
    assert pump.avg_parts_waiting_hours == pytest.approx(1.5)

    # Two failures on one stoppage: 10 h down (20-30 h), not 13.
    assert motor.failures == 2
    assert motor.mttr_hours == pytest.approx((10 + 3) / 2)
    assert motor.downtime_hours == pytest.approx(10.0)
    assert motor.mtbf_hours == pytest.approx(45.0)
    assert motor.availability == pytest.approx(0.9)
    assert motor.pm_compliance is None
    assert motor.backlog_orders == 0
    assert motor.cost_base == 0


def test_a_shorter_period_clips_downtime_and_counts_only_its_failures(
    built: DuckDbWarehouse,
) -> None:
    # 0-12 h: the pump's first failure started at 10 h and is still running at 12 h.
    (pump,) = asset_kpis(built.connection, at(0), at(12), tag="P-1")
    assert pump.failures == 0
    assert pump.mtbf_hours is None
    assert pump.downtime_hours == pytest.approx(2.0)
    assert pump.availability == pytest.approx(10 / 12)
    # It is in the backlog then, waiting for parts since 10.5 h.
    assert pump.backlog_orders == 1
    assert pump.backlog_avg_age_days == pytest.approx(2 / 24)


def test_site_kpis_recompute_ratios_from_sums(built: DuckDbWarehouse) -> None:
    start, end = (naive_utc(t) for t in KPI_PERIOD)
    (site,) = built.connection.execute(
        "SELECT site_code, assets, failures, mttr_hours, mtbf_hours, availability, "
        "pm_compliance, backlog_orders, cost_base FROM kpi_sites(?, ?)",
        [start, end],
    ).fetchall()
    assert site[:3] == ("S1", 2, 4)
    assert site[3] == pytest.approx((6 + 13) / 4)
    assert site[4] == pytest.approx((92 + 90) / 4)
    assert site[5] == pytest.approx(182 / 200)
    assert site[6] == pytest.approx(0.5)
    assert site[7:] == (1, Decimal("128.0000"))


def test_the_kpi_views_cover_the_first_order_to_the_last_load(built: DuckDbWarehouse) -> None:
    period = built.connection.execute("SELECT period_start, period_end FROM kpi_period").fetchone()
    assert period is not None
    assert period[0] == at(10).replace(tzinfo=None)
    (record,) = built.recent_runs(limit=1, job="fact_work_order")
    assert period[1] == naive_utc(record.window_end)
    viewed = {k.tag: k for k in asset_kpis(built.connection)}
    assert viewed["P-1"].failures == 2
    assert viewed["M-1"].downtime_hours == pytest.approx(10.0)
