"""Catalogue price maintenance and contract compliance over the API."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from conftest import MakeUser
from maintainpro.core.users import Role
from maintainpro.supply.catalogs import PriceChange
from maintainpro.supply.contracts import Contract
from maintainpro.supply.purchasing import PoStatus, add_line, move_order, new_purchase_order
from maintainpro.supply.rates import ExchangeRate, stored_converter
from maintainpro.supply.suppliers import Supplier
from supply.procurement_world import EUR_USD, World
from support import bearer, plant

API = "/api/v1"
TODAY = dt.datetime.now(dt.UTC).date()
PROBLEM = "application/problem+json"


@pytest.fixture
def shop(session_factory: sessionmaker[Session]) -> dict[str, int]:
    """A EUR supplier selling the bearing (1 and 10 off) under a capped contract, committed."""
    with session_factory() as db, db.begin():
        world = World(db, plant(db))
        db.add(ExchangeRate(day=TODAY, currency="USD", per_eur=EUR_USD, source="ECB"))
        supplier = world.supplier("ACME", "EUR")
        item = world.item(supplier, [("1", "10.00"), ("10", "9.00")])
        contract = world.contract(supplier, "8.00", cap="1000.00")
        contract.valid_from = TODAY - dt.timedelta(days=30)
        contract.valid_to = TODAY + dt.timedelta(days=20)
        return {**world.ids, "supplier": supplier.id, "item": item.id, "contract": contract.id}


@pytest.fixture
def buyer(make_user: MakeUser) -> dict[str, str]:
    """A procurement user's headers."""
    return bearer(make_user(Role.PROCUREMENT, username="anna")[1])


def _breaks(*pairs: tuple[str, str]) -> list[dict[str, str]]:
    return [{"min_quantity": q, "unit_price": p} for q, p in pairs]


def _problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    return body


def _prices(client: TestClient, item: int, headers: dict[str, str]) -> list[tuple[str, str]]:
    body = client.get(f"{API}/catalog-items/{item}", headers=headers).json()
    return [
        (str(Decimal(b["min_quantity"]).normalize()), str(Decimal(b["unit_price"])))
        for b in body["price_breaks"]
    ]


# --- price breaks -----------------------------------------------------------------------------


def test_replacing_price_breaks_is_versioned_with_who_and_when(
    client: TestClient, shop: dict[str, int], buyer: dict[str, str]
) -> None:
    url = f"{API}/catalog-items/{shop['item']}/price-breaks"
    body = {"currency": "EUR", "breaks": _breaks(("1", "10.00"), ("10", "8.50"), ("50", "7.25"))}
    response = client.put(url, headers=buyer, json=body)
    assert response.status_code == 200, response.text
    result = response.json()
    assert [
        (Decimal(c["min_quantity"]), c["old_price"], c["new_price"])
        for c in result["price_changes"]
    ] == [(Decimal(10), "9.000000", "8.50"), (Decimal(50), None, "7.25")]
    assert {c["changed_by"] for c in result["price_changes"]} == {"anna"}
    assert len(result["item"]["price_breaks"]) == 3
    # The same set again changes nothing and writes no history.
    assert client.put(url, headers=buyer, json=body).json()["price_changes"] == []
    history = client.get(f"{API}/catalog-items/{shop['item']}/price-history", headers=buyer)
    assert history.status_code == 200
    page = history.json()
    assert page["total"] == 2
    assert {(Decimal(i["min_quantity"]), i["changed_by"]) for i in page["items"]} == {
        (Decimal(10), "anna"),
        (Decimal(50), "anna"),
    }
    changed_at = dt.datetime.fromisoformat(page["items"][0]["changed_at"])
    assert abs(changed_at - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=5)


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"currency": "USD", "breaks": _breaks(("1", "9"))}, "prices of this item are in EUR"),
        ({"currency": "EUR", "breaks": _breaks(("2", "9"))}, "start at one pack (1), not at 2"),
        ({"currency": "EUR", "breaks": _breaks(("1", "9"), ("1", "8"))}, "ascend without repeats"),
        ({"currency": "EUR", "breaks": _breaks(("1", "9"), ("20", "8"), ("10", "7"))}, "follows"),
        ({"currency": "EUR", "breaks": _breaks(("1", "0"))}, "does not match"),
        ({"currency": "EUR", "breaks": _breaks(("1", "-3"))}, "does not match"),
        ({"currency": "EUR", "breaks": _breaks(("1", "9.1234567"))}, "does not match"),
        ({"currency": "EUR", "breaks": _breaks(("1.0001", "9"))}, "does not match"),
        ({"currency": "EUR", "breaks": []}, "does not match"),
        ({"currency": "EURO", "breaks": _breaks(("1", "9"))}, "does not match"),
        ({"currency": "XAU", "breaks": _breaks(("1", "9"))}, "does not match"),
        ({"currency": "EUR", "breaks": _breaks(("1", "9")), "note": "<b>x</b>"}, "does not match"),
        ({"currency": "EUR", "breaks": [{"min_quantity": "1", "unit_price": "NaN"}]}, "not match"),
    ],
)
def test_bad_price_breaks_are_refused_and_nothing_changes(
    client: TestClient,
    session_factory: sessionmaker[Session],
    shop: dict[str, int],
    buyer: dict[str, str],
    body: dict[str, Any],
    fragment: str,
) -> None:
    before = _prices(client, shop["item"], buyer)
    response = client.put(
        f"{API}/catalog-items/{shop['item']}/price-breaks", headers=buyer, json=body
    )
    problem = _problem(response, 422)
    assert fragment in problem["detail"]
    assert "<b>" not in response.text
    assert _prices(client, shop["item"], buyer) == before
    with session_factory() as check:
        assert check.scalars(select(PriceChange)).all() == []


def test_price_maintenance_needs_write_access_and_an_existing_item(
    client: TestClient, shop: dict[str, int], make_user: MakeUser
) -> None:
    body = {"currency": "EUR", "breaks": _breaks(("1", "9"))}
    analyst = bearer(make_user(Role.ANALYST)[1])
    technician = bearer(make_user(Role.TECHNICIAN)[1])
    url = f"{API}/catalog-items/{shop['item']}"
    assert client.put(url + "/price-breaks", headers=analyst, json=body).status_code == 403
    assert client.patch(url, headers=analyst, json={"lead_time_days": 3}).status_code == 403
    assert client.get(url + "/price-history", headers=analyst).status_code == 200
    assert client.get(url + "/price-history", headers=technician).status_code == 403
    assert client.put(url + "/price-breaks", json=body).status_code == 401
    admin = bearer(make_user(Role.ADMIN)[1])
    missing = client.put(f"{API}/catalog-items/999999/price-breaks", headers=admin, json=body)
    assert "999999 does not exist" in _problem(missing, 404)["detail"]
    assert client.get(f"{API}/catalog-items/999999/price-history", headers=admin).status_code == 404


# --- item terms -----------------------------------------------------------------------------


def test_patching_an_item_changes_its_terms(
    client: TestClient, shop: dict[str, int], buyer: dict[str, str]
) -> None:
    url = f"{API}/catalog-items/{shop['item']}"
    changes = {
        "description": "Deep-groove bearing 6204-2RS",
        "unit": "PCE",
        "lead_time_days": 12,
        "valid_from": str(TODAY),
        "valid_to": str(TODAY + dt.timedelta(days=365)),
    }
    response = client.patch(url, headers=buyer, json=changes)
    assert response.status_code == 200, response.text
    item = response.json()["item"]
    assert {key: item[key] for key in changes} == changes
    assert response.json()["price_changes"] == []
    # Clearing the end date is allowed: the item is then valid until further notice.
    assert (
        client.patch(url, headers=buyer, json={"valid_to": None}).json()["item"]["valid_to"] is None
    )


def test_a_new_pack_size_comes_with_its_breaks(
    client: TestClient, shop: dict[str, int], buyer: dict[str, str]
) -> None:
    url = f"{API}/catalog-items/{shop['item']}"
    alone = client.patch(url, headers=buyer, json={"pack_size": "10", "lead_time_days": 2})
    assert "send the new price breaks with the pack size" in _problem(alone, 422)["detail"]
    item = client.get(url, headers=buyer).json()
    assert (Decimal(item["pack_size"]), item["lead_time_days"]) == (1, 5)
    together = client.patch(
        url,
        headers=buyer,
        json={
            "pack_size": "10",
            "price_breaks": {"currency": "EUR", "breaks": _breaks(("10", "8.80"), ("100", "8"))},
        },
    )
    assert together.status_code == 200, together.text
    result = together.json()
    assert Decimal(result["item"]["pack_size"]) == 10
    assert [(Decimal(c["min_quantity"]), c["new_price"]) for c in result["price_changes"]] == [
        (Decimal(1), None),
        (Decimal(10), "8.80"),
        (Decimal(100), "8"),
    ]


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        ({"valid_from": str(TODAY), "valid_to": str(TODAY - dt.timedelta(days=1))}, 422, "before"),
        ({"supplier_id": 2}, 422, "does not match"),
        ({"currency": "USD"}, 422, "does not match"),
        ({"part_id": 2}, 422, "does not match"),
        ({"unit": None}, 422, "unit cannot be null"),
        ({"pack_size": None}, 422, "pack_size cannot be null"),
        ({"pack_size": "0"}, 422, "does not match"),
        ({"lead_time_days": -1}, 422, "does not match"),
        ({"unit": "<script>"}, 422, "does not match"),
        ({"description": "x" * 20_001}, 422, "does not match"),
    ],
)
def test_bad_item_changes_are_refused_whole(
    client: TestClient,
    shop: dict[str, int],
    buyer: dict[str, str],
    body: dict[str, Any],
    status: int,
    fragment: str,
) -> None:
    url = f"{API}/catalog-items/{shop['item']}"
    before = client.get(url, headers=buyer).json()
    response = client.patch(url, headers=buyer, json={"lead_time_days": 40, **body})
    assert fragment in _problem(response, status)["detail"]
    assert "<script>" not in response.text
    assert client.get(url, headers=buyer).json() == before


# --- compliance and utilisation -----------------------------------------------------------------


def _approved_order(
    session_factory: sessionmaker[Session], shop: dict[str, int], price: str, contract: bool
) -> int:
    with session_factory() as db, db.begin():
        world = World(db, shop)
        supplier = db.get(Supplier, shop["supplier"])
        assert supplier is not None
        order = new_purchase_order(
            db,
            supplier=supplier,
            currency="EUR",
            base_currency="USD",
            rate=stored_converter(db).rate("EUR", "USD", TODAY),
        )
        db.flush()
        add_line(
            order,
            part_id=world.ids["part"],
            quantity=Decimal(5),
            unit_price=Decimal(price),
            contract_id=shop["contract"] if contract else None,
        )
        move_order(order, PoStatus.APPROVED)
        db.flush()
        return order.id


def test_compliance_lists_off_contract_lines_with_reasons(
    client: TestClient,
    session_factory: sessionmaker[Session],
    shop: dict[str, int],
    buyer: dict[str, str],
) -> None:
    off = _approved_order(session_factory, shop, "10.00", contract=False)
    _approved_order(session_factory, shop, "8.00", contract=True)
    differs = _approved_order(session_factory, shop, "8.40", contract=True)
    window = {"start": str(TODAY - dt.timedelta(days=7)), "end": str(TODAY)}
    response = client.get(f"{API}/contracts/compliance", headers=buyer, params=window)
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["counts"] == {"off_contract_price": 1, "contract_price_differs": 1}
    assert report["total"] == 2
    flagged = {(i["purchase_order_id"], i["reason"]): i for i in report["items"]}
    first = flagged[(off, "off_contract_price")]
    assert (first["contract_number"], Decimal(first["contract_price"])) == ("C-ACME", 8)
    assert Decimal(first["excess"]) == Decimal("10.00")
    assert first["ordered_on"] == str(TODAY)
    assert "outside contract C-ACME" in first["message"]
    assert Decimal(flagged[(differs, "contract_price_differs")]["excess"]) == Decimal("2.00")
    only = client.get(
        f"{API}/contracts/compliance",
        headers=buyer,
        params={**window, "reason": "off_contract_price", "limit": 1},
    ).json()
    assert [(i["purchase_order_id"], i["reason"]) for i in only["items"]] == [
        (off, "off_contract_price")
    ]
    later = {"start": str(TODAY + dt.timedelta(days=1)), "end": str(TODAY + dt.timedelta(days=9))}
    empty = client.get(f"{API}/contracts/compliance", headers=buyer, params=later).json()
    assert (empty["total"], empty["items"], empty["counts"]) == (0, [], {})


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"start": "2026-02-01", "end": "2026-01-01"}, "end is before start"),
        ({"start": "2024-01-01", "end": "2026-01-01"}, "at most 366 days"),
        ({"start": "2026-01-01"}, "does not match"),
        ({"start": "yesterday", "end": "2026-01-01"}, "does not match"),
        ({"start": "2026-01-01", "end": "2026-01-02", "reason": "<i>"}, "does not match"),
    ],
)
def test_bad_compliance_questions_are_refused(
    client: TestClient,
    shop: dict[str, int],
    buyer: dict[str, str],
    params: dict[str, str],
    fragment: str,
) -> None:
    response = client.get(f"{API}/contracts/compliance", headers=buyer, params=params)
    assert fragment in _problem(response, 422)["detail"]
    assert "<i>" not in response.text


def test_utilisation_shows_drawn_cap_share_and_days_left(
    client: TestClient,
    session_factory: sessionmaker[Session],
    shop: dict[str, int],
    buyer: dict[str, str],
    make_user: MakeUser,
) -> None:
    with session_factory() as db, db.begin():
        contract = db.get(Contract, shop["contract"])
        assert contract is not None
        contract.drawn = Decimal("812.34")
    url = f"{API}/contracts/{shop['contract']}/utilisation"
    body = client.get(url, headers=buyer).json()
    assert Decimal(body["spend_cap"]) == 1000
    assert Decimal(body["drawn"]) == Decimal("812.34")
    assert Decimal(body["remaining"]) == Decimal("187.66")
    assert Decimal(body["pct_used"]) == Decimal("81.2")
    assert (body["days_left"], body["state"], body["number"]) == (20, "in_force", "C-ACME")
    later = client.get(url, headers=buyer, params={"on": str(TODAY + dt.timedelta(days=25))})
    assert (later.json()["days_left"], later.json()["state"]) == (0, "expired")
    assert client.get(f"{API}/contracts/999999/utilisation", headers=buyer).status_code == 404
    technician = bearer(make_user(Role.TECHNICIAN)[1])
    assert client.get(url, headers=technician).status_code == 403
