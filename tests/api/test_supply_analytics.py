"""The scorecard and spend API: figures of the end-to-end order, "no data", bad input, access."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from conftest import MakeUser
from maintainpro.core.users import Role
from maintainpro.supply.rates import ExchangeRate
from supply.procurement_world import EUR_USD, TODAY, World
from supply.test_performance import two_deliveries_one_late
from support import bearer, plant

API = "/api/v1"
WINTER = {"start": "2026-11-01", "end": "2027-01-01"}


@pytest.fixture
def supplier_ids(session_factory: sessionmaker[Session]) -> dict[str, int]:
    """The end-to-end EUR order, delivered in two parts (one late), and an idle supplier."""
    with session_factory() as db, db.begin():
        world = World(db, plant(db))
        db.add(ExchangeRate(day=TODAY, currency="USD", per_eur=EUR_USD, source="ECB"))
        db.flush()
        po = two_deliveries_one_late(world)
        idle = world.supplier("IDLE", "USD")
        return {"EUROBEAR": po.supplier_id, "IDLE": idle.id}


@pytest.fixture
def reader(make_user: MakeUser) -> dict[str, str]:
    """An analyst: may read supply data, change nothing."""
    return bearer(make_user(Role.ANALYST)[1])


def _get(client: TestClient, path: str, headers: dict[str, str], **params: Any) -> Any:
    response = client.get(API + path, headers=headers, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def _metric(card: dict[str, Any], key: str) -> dict[str, Any]:
    found: dict[str, Any] = next(m for m in card["metrics"] if m["key"] == key)
    return found


def test_scorecard_of_the_end_to_end_order(
    client: TestClient, supplier_ids: dict[str, int], reader: dict[str, str]
) -> None:
    card = _get(client, f"/suppliers/{supplier_ids['EUROBEAR']}/scorecard", reader, **WINTER)
    assert (card["code"], card["start"], card["end"]) == ("EUROBEAR", *WINTER.values())
    on_time = _metric(card, "on_time_delivery")
    assert (on_time["value"], on_time["display"], on_time["basis"]) == ("50.0", "50.0%", 2)
    assert (on_time["detail"]["late"], on_time["detail"]["mean_days_late"]) == (1, "2.00")
    lead = _metric(card, "lead_time")
    assert (lead["value"], lead["display"]) == ("9.00", "9.00 days")
    assert lead["detail"]["std_dev_days"] == "3.00"
    assert _metric(card, "acknowledgement")["value"] == "6.0"
    assert _metric(card, "price_compliance")["value"] == "100.0"
    assert card["grade"] in {"A", "B", "C", "D", "F"}
    late = [r for r in card["recommendations"] if r["kind"] == "late_deliveries"]
    assert late[0]["figures"]["on_time_pct"] == "50.0"


def test_all_scorecards_put_suppliers_without_data_last(
    client: TestClient, supplier_ids: dict[str, int], reader: dict[str, str]
) -> None:
    body = _get(client, "/supplier-scorecards", reader, **WINTER)
    assert [c["code"] for c in body["items"]] == ["EUROBEAR", "IDLE"]
    idle = body["items"][1]
    assert (idle["score"], idle["grade"], idle["display"]) == (None, None, "no data")
    assert {m["display"] for m in idle["metrics"]} == {"no data"}
    assert {m["value"] for m in idle["metrics"]} == {None}


def test_a_quiet_period_shows_no_data(
    client: TestClient, supplier_ids: dict[str, int], reader: dict[str, str]
) -> None:
    card = _get(
        client,
        f"/suppliers/{supplier_ids['EUROBEAR']}/scorecard",
        reader,
        start="2026-01-01",
        end="2026-02-01",
    )
    assert card["score"] is None
    assert [m["display"] for m in card["metrics"]] == ["no data"] * 7
    assert card["recommendations"] == []


def test_weights_can_be_chosen(
    client: TestClient, supplier_ids: dict[str, int], reader: dict[str, str]
) -> None:
    path = f"/suppliers/{supplier_ids['EUROBEAR']}/scorecard"
    only = _get(client, path, reader, weights="on_time_delivery:2", **WINTER)
    assert (only["score"], only["grade"], only["weights_used"]) == (
        "50.0",
        "F",
        {"on_time_delivery": "1.0000"},
    )
    both = _get(client, path, reader, weights="on_time_delivery:1,quality:1", **WINTER)
    assert (both["score"], both["grade"]) == ("75.0", "C")


def test_spend_of_the_end_to_end_order_is_its_usd_total(
    client: TestClient, supplier_ids: dict[str, int], reader: dict[str, str]
) -> None:
    by_supplier = _get(client, "/spend", reader, group_by="supplier", **WINTER)
    assert (by_supplier["base_currency"], by_supplier["total"]) == ("USD", "129.60")
    assert [(g["key"], g["amount"], g["share_pct"]) for g in by_supplier["groups"]] == [
        ("EUROBEAR", "129.60", "100.0")
    ]
    for grouping, key in [
        ("category", "general"),
        ("site", "S1"),
        ("asset", "P-1"),
        ("month", "2026-11"),
        ("quarter", "2026-Q4"),
        ("year", "2026"),
    ]:
        body = _get(client, "/spend", reader, group_by=grouping, **WINTER)
        assert [(g["key"], g["amount"]) for g in body["groups"]] == [(key, "129.60")], grouping
    summary = _get(client, "/spend/summary", reader, **WINTER)
    assert (summary["on_contract"], summary["maverick"], summary["maverick_pct"]) == (
        "129.60",
        "0.00",
        "0.0",
    )
    assert summary["savings"]["total"] == "25.92"
    assert summary["concentration"]["hhi"] == "10000"
    assert summary["concentration"]["top"][0]["code"] == "EUROBEAR"


def test_spend_of_an_empty_period_is_zero_with_no_shares(
    client: TestClient, supplier_ids: dict[str, int], reader: dict[str, str]
) -> None:
    body = _get(client, "/spend", reader, start="2025-01-01", end="2025-04-01")
    assert (body["total"], body["groups"], body["group_by"]) == ("0.00", [], "supplier")
    summary = _get(client, "/spend/summary", reader, start="2025-01-01", end="2025-04-01")
    assert (summary["on_contract_pct"], summary["concentration"]["hhi"]) == (None, None)


@pytest.mark.parametrize(
    ("path", "params", "detail"),
    [
        ("/spend", {"start": "2026-12-01", "end": "2026-12-01"}, "start must be before end"),
        ("/spend/summary", {"start": "2027-01-01", "end": "2026-12-01"}, "before end"),
        ("/supplier-scorecards", {"start": "1900-01-01", "end": "2026-01-01"}, "start must lie"),
        ("/supplier-scorecards", {"end": "0001-01-02"}, "end must lie"),
        ("/spend", {"start": "2000-01-01", "end": "2026-01-01"}, "at most 3660 days"),
        ("/spend", {"start": "2026-02-30"}, "expected shape"),
        ("/spend", {"group_by": "<script>"}, "expected shape"),
        ("/spend/summary", {"top": "0"}, "expected shape"),
        ("/supplier-scorecards", {"weights": "speed:1"}, "metric:number pairs"),
        ("/supplier-scorecards", {"weights": "quality:-1"}, "metric:number pairs"),
        ("/supplier-scorecards", {"weights": "quality:0"}, "at least one weight"),
        ("/supplier-scorecards", {"weights": "quality:1,quality:2"}, "given twice"),
    ],
)
def test_bad_input_is_a_problem_that_does_not_echo_it(
    client: TestClient,
    reader: dict[str, str],
    path: str,
    params: dict[str, str],
    detail: str,
) -> None:
    response = client.get(API + path, headers=reader, params=params)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert detail in response.json()["detail"]
    for value in params.values():
        if not value[:1].isdigit():
            assert value not in response.text


def test_unknown_supplier_is_404(client: TestClient, reader: dict[str, str]) -> None:
    response = client.get(f"{API}/suppliers/999999/scorecard", headers=reader)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


def test_defaults_cover_the_last_90_days(client: TestClient, reader: dict[str, str]) -> None:
    body = _get(client, "/spend", reader)
    start, end = dt.date.fromisoformat(body["start"]), dt.date.fromisoformat(body["end"])
    assert (end - start).days == 90
    assert end == dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1)


@pytest.mark.parametrize(
    "path", ["/supplier-scorecards", "/suppliers/1/scorecard", "/spend", "/spend/summary"]
)
def test_reading_analytics_needs_supply_read(
    client: TestClient, make_user: MakeUser, path: str
) -> None:
    assert client.get(API + path).status_code == 401
    technician = bearer(make_user(Role.TECHNICIAN)[1])
    denied = client.get(API + path, headers=technician)
    assert denied.status_code == 403
    assert denied.headers["content-type"] == "application/problem+json"
