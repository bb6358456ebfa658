"""The scheduled ML jobs on the synthetic plant: retraining and the RUL refresh write registry
versions and fact_prediction rows (a re-run replaces its own rows), the RUL estimate pulls the
pump's PM forward, and a site-bound analyst sees only their site's predictions over OData."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import duckdb
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from analytics.ml.ml_plant import EXPECTED_RUL_DAYS, NOW, PM_DUE, VIB_CRITICAL, ml_plant
from analytics.odata.conftest import basic
from maintainpro.analytics.lineage import lineage_for
from maintainpro.analytics.ml.registry import ModelRegistry, models_dir
from maintainpro.analytics.ml.training import (
    RUL_REASON,
    RUL_TARGET,
    load_rul_run,
    refresh_rul,
    retrain,
    rul_forecasts,
    rul_method_params,
)
from maintainpro.analytics.runs import BuildOptions, build
from maintainpro.analytics.warehouse import DuckDbWarehouse, warehouse_file
from maintainpro.config import Settings
from maintainpro.core.schedules import MaintenanceSchedule
from maintainpro.core.users import Role, User
from maintainpro.iot.trends import update_predictions

MakeUser = Callable[..., tuple[User, str]]


@pytest.fixture
def site(session_factory: sessionmaker[Session]) -> dict[str, int]:
    """One site of the synthetic plant, committed."""
    with session_factory() as session, session.begin():
        return ml_plant(session)


def facts(settings: Settings, kind: str) -> list[dict[str, Any]]:
    """The fact_prediction rows of a kind, oldest run first."""
    with duckdb.connect(str(warehouse_file(settings)), read_only=True) as connection:
        cursor = connection.execute(
            "SELECT * FROM fact_prediction WHERE kind = ? ORDER BY predicted_at, sensor_key",
            [kind],
        )
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def test_retraining_registers_a_live_version_per_sensor_and_writes_anomaly_facts(
    session_factory: sessionmaker[Session], settings: Settings, site: dict[str, int]
) -> None:
    first = retrain(session_factory, settings, NOW)
    registry = ModelRegistry(models_dir(settings))
    records = {r.id: r for r in registry.records()}
    assert sorted(records) == sorted(first)
    targets = {records[i].target for i in first}
    assert targets == {f"sensor:{site['vibration']}", f"sensor:{site['temperature']}"}
    assert all(records[i].live and records[i].version == 1 for i in first)
    # Held-out evaluation recorded with every version.
    assert all({"false_alarm_rate", "spike_recall"} <= set(records[i].metrics) for i in first)

    rows = facts(settings, "anomaly")
    assert {r["model_id"] for r in rows} == set(first)
    assert {r["sensor_key"] for r in rows} == {site["vibration"], site["temperature"]}
    assert {r["asset_key"] for r in rows} == {site["pump"], site["motor"]}
    assert {r["site_key"] for r in rows} == {site["site"]}
    assert all(r["predicted_at"] == NOW.replace(tzinfo=None) for r in rows)
    assert all(r["threshold"] is not None and r["value"] is not None for r in rows)

    # The same run again: new versions go live and replace that run's rows, not add to them.
    second = retrain(session_factory, settings, NOW)
    assert set(second).isdisjoint(first)
    assert {registry.get(i).version for i in second} == {2}
    live = [registry.live(t) for t in targets]
    assert {r.id for r in live if r is not None} == set(second)
    again = facts(settings, "anomaly")
    assert len(again) == 2
    assert {r["model_id"] for r in again} == set(second)


def test_the_rul_refresh_estimates_the_degrading_pump_and_explains_the_flat_motor(
    session_factory: sessionmaker[Session], settings: Settings, site: dict[str, int]
) -> None:
    estimates = refresh_rul(session_factory, settings, NOW)
    assert [e.asset_id for e in estimates] == [site["pump"]]
    pump = estimates[0]
    assert pump.sensor_id == site["vibration"]
    assert pump.threshold == VIB_CRITICAL
    assert pump.threshold_source == "alert rule"
    assert pump.site_id == site["site"]
    assert abs(pump.rul_days - EXPECTED_RUL_DAYS) < 2.0
    assert pump.low_days <= EXPECTED_RUL_DAYS
    assert pump.high_days is None or pump.high_days >= EXPECTED_RUL_DAYS

    # The RUL method is a registry version; its id and version travel with the estimate.
    registry = ModelRegistry(models_dir(settings))
    method = registry.live(RUL_TARGET)
    assert method is not None
    assert method.params == rul_method_params()
    assert (pump.model_id, pump.model_version) == (method.id, 1)

    run = load_rul_run(models_dir(settings))
    assert run is not None
    assert run.estimate_of(site["pump"]) == pump
    gap = run.gap_of(site["motor"])
    assert gap is not None
    assert gap.reason.startswith("no degrading trend: Motor temperature S1")
    assert run.gap_of(site["idle"]) is None  # no sensor at all: not looked at

    rows = facts(settings, "rul")
    assert len(rows) == 1
    row = rows[0]
    assert (row["asset_key"], row["sensor_key"], row["site_key"]) == (
        site["pump"],
        site["vibration"],
        site["site"],
    )
    assert (row["model_id"], row["model_version"]) == (method.id, 1)
    assert row["value"] == pytest.approx(pump.rul_days)
    assert row["failure_at"] == pump.failure_at.replace(tzinfo=None)
    assert row["date_key"] == 20261127

    # Re-running the same run replaces its row and registers no new method version; the next
    # hour's run adds its own.
    refresh_rul(session_factory, settings, NOW)
    assert len(facts(settings, "rul")) == 1
    assert [r.version for r in registry.records() if r.target == RUL_TARGET] == [1]
    refresh_rul(session_factory, settings, NOW + dt.timedelta(hours=1))
    assert len(facts(settings, "rul")) == 2


def test_a_rul_version_promoted_by_hand_stays_live_and_its_settings_are_used(
    session_factory: sessionmaker[Session], settings: Settings, site: dict[str, int]
) -> None:
    first = refresh_rul(session_factory, settings, NOW)[0]
    registry = ModelRegistry(models_dir(settings))
    # A version with a 50 % band instead of 90 %.
    narrower = {**rul_method_params(), "coverage": 0.5}
    record = registry.register(
        RUL_TARGET,
        "degradation_trend",
        narrower,
        window=(NOW - dt.timedelta(days=14), NOW),
        features=["hourly average"],
        metrics={},
        params=narrower,
    )
    second = refresh_rul(session_factory, settings, NOW)[0]
    assert (second.model_id, second.model_version) == (record.id, 2)
    live = registry.live(RUL_TARGET)
    assert live is not None
    assert live.id == record.id
    # Same data, same trend: the same central estimate with a narrower band.
    assert second.rul_days == pytest.approx(first.rul_days)
    assert first.low_days < second.low_days <= second.rul_days


def test_the_rul_estimate_pulls_the_pm_forward(
    session_factory: sessionmaker[Session], settings: Settings, site: dict[str, int]
) -> None:
    propose = settings.model_copy(update={"pm_pull_forward": "propose"})
    pump = refresh_rul(session_factory, propose, NOW)[0]
    # As the "predictions" job in app.py calls it; with a one-day window the trend fit sees too
    # few points, so only the RUL estimate can drive the pull-forward here.
    update_predictions(
        session_factory,
        propose,
        NOW,
        days=1,
        min_points=48,
        extra_forecasts=rul_forecasts(models_dir(propose)),
    )
    with session_factory() as session:
        schedule = session.get(MaintenanceSchedule, site["schedule"])
        assert schedule is not None
        assert schedule.next_due_at == PM_DUE
        assert schedule.proposed_due_at == pump.earliest_at
        assert RUL_REASON in (schedule.proposal_reason or "")
        assert "Pump vibration S1" in (schedule.proposal_reason or "")


def test_a_site_b_analyst_sees_only_site_b_predictions_over_odata(
    engine: Engine,
    session_factory: sessionmaker[Session],
    settings: Settings,
    client: TestClient,
    make_user: MakeUser,
) -> None:
    with session_factory() as session, session.begin():
        site_a = ml_plant(session, "SA", seed=1)
        site_b = ml_plant(session, "SB", seed=2)
    path = warehouse_file(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    with DuckDbWarehouse(path) as target:
        records = build(
            engine,
            target,
            lineage_for(settings, path),
            BuildOptions(base_currency="USD", full=True),
        )
    assert all(r.status == "completed" for r in records), records
    found = refresh_rul(session_factory, settings, NOW)
    by_site = {
        ids["site"]: {e.asset_id for e in found if e.site_id == ids["site"]}
        for ids in (site_a, site_b)
    }
    assert site_a["pump"] in by_site[site_a["site"]]
    assert site_b["pump"] in by_site[site_b["site"]]
    _, token_a = make_user(Role.ANALYST, "analyst-a", site_id=site_a["site"])
    _, token_b = make_user(Role.ANALYST, "analyst-b", site_id=site_b["site"])
    _, token_all = make_user(Role.ANALYST, "analyst-all")

    def rows(token: str) -> list[dict[str, Any]]:
        response = client.get("/odata/fact_prediction", headers=basic(token))
        assert response.status_code == 200, response.text
        return list(response.json()["value"])

    everyone = rows(token_all)
    assert {r["asset_key"] for r in everyone} == {e.asset_id for e in found}
    seen_by_b = rows(token_b)
    assert {r["asset_key"] for r in seen_by_b} == by_site[site_b["site"]]
    assert {r["site_key"] for r in seen_by_b} == {site_b["site"]}
    seen_by_a = rows(token_a)
    assert {r["asset_key"] for r in seen_by_a} == by_site[site_a["site"]]
    assert {r["site_key"] for r in seen_by_a} == {site_a["site"]}
    # Not by a filter either.
    filtered = client.get(
        "/odata/fact_prediction",
        params={"$filter": f"site_key eq {site_a['site']}"},
        headers=basic(token_b),
    )
    assert filtered.status_code == 200
    assert filtered.json()["value"] == []
