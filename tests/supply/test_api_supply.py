"""The procurement API, including the end-to-end path from a work-order shortage to stock."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from conftest import MakeUser
from maintainpro.core.db import utcnow
from maintainpro.core.events import deliver_pending
from maintainpro.core.inventory import StockLevel
from maintainpro.core.users import Role
from maintainpro.core.work_orders import WorkOrderNote
from maintainpro.supply.purchasing import PurchaseOrder
from maintainpro.supply.requisitions import part_demand_handler
from support import bearer, plant

API = "/api/v1"


def _setup(session_factory: sessionmaker[Session]) -> dict[str, int]:
    with session_factory() as db, db.begin():
        ids = plant(db)
        stock = db.get(StockLevel, ids["stock"])
        assert stock is not None
        stock.on_hand = Decimal(0)  # out of stock
    return ids


def _post(client: TestClient, path: str, headers: dict[str, str], body: Any) -> Any:
    response = client.post(API + path, headers=headers, json=body)
    assert response.status_code in (200, 201), response.text
    return response.json()


def _supplier(client: TestClient, headers: dict[str, str], code: str, currency: str) -> int:
    body = {
        "code": code,
        "legal_name": f"{code} GmbH",
        "country": "DE",
        "currency": currency,
        "incoterms": "DAP",
        "status": "active",
        "connection_type": "edi",
        "capabilities": ["asn", "invoice"],
        "contacts": [{"name": "Anna", "email": "anna@example.com"}],
    }
    result: int = _post(client, "/suppliers", headers, body)["id"]
    return result


def test_end_to_end_from_shortage_to_stock(
    client: TestClient, session_factory: sessionmaker[Session], make_user: MakeUser
) -> None:
    ids = _setup(session_factory)
    admin = bearer(make_user(Role.ADMIN)[1])
    buyer = bearer(make_user(Role.PROCUREMENT)[1])
    today = dt.datetime.now(dt.UTC).date()
    _post(
        client,
        "/exchange-rates",
        buyer,
        {"day": str(today), "currency": "USD", "per_eur": "1.08", "source": "ECB"},
    )
    eu = _supplier(client, buyer, "EUROBEAR", "EUR")
    us = _supplier(client, buyer, "USBEAR", "USD")
    for supplier, price in ((eu, "30.00"), (us, "8.00")):
        _post(
            client,
            "/catalog-items",
            buyer,
            {
                "supplier_id": supplier,
                "supplier_part_number": f"B-{supplier}",
                "part_id": ids["part"],
                "currency": "EUR" if supplier == eu else "USD",
                "lead_time_days": 3,
                "price_breaks": [{"min_quantity": "1", "unit_price": price}],
            },
        )
    contract = _post(
        client,
        "/contracts",
        buyer,
        {
            "number": "BLANKET-2026",
            "supplier_id": eu,
            "kind": "blanket",
            "currency": "EUR",
            "valid_from": str(today - dt.timedelta(days=10)),
            "spend_cap": "500.00",
            "prices": [{"part_id": ids["part"], "unit_price": "9.50"}],
        },
    )

    # A work order needs 6 bearings; none are in stock, so part.demand is emitted.
    wo = _post(
        client,
        "/work-orders",
        admin,
        {
            "asset_id": ids["pump"],
            "title": "Replace bearings",
            "type": "corrective",
            "parts": [{"part_id": ids["part"], "quantity": "6"}],
        },
    )
    handlers = {"part.demand": [part_demand_handler(session_factory)]}
    assert deliver_pending(session_factory, handlers, now=utcnow() + dt.timedelta(seconds=1)) >= 1
    requisitions = client.get(f"{API}/requisitions", headers=buyer).json()["items"]
    assert [(r["source"], r["quantity"], r["work_order_id"]) for r in requisitions] == [
        ("work_order", "6.000", wo["id"])
    ]

    auto = _post(client, "/purchase-orders/auto", buyer, None)
    assert auto["automation_rate"] == "1.0000"
    (po,) = auto["orders"]
    assert po["supplier_id"] == eu  # the contract wins over the cheaper US catalogue
    assert (po["currency"], po["base_currency"]) == ("EUR", "USD")
    assert (Decimal(po["total"]), Decimal(po["total_base"])) == (Decimal("57.00"), Decimal("61.56"))
    assert (Decimal(po["fx_rate"]), po["fx_rate_date"], po["fx_source"]) == (
        Decimal("1.08"),
        str(today),
        "ECB",
    )
    assert "contract BLANKET-2026" in po["lines"][0]["explanation"]

    approved = _post(client, f"/purchase-orders/{po['id']}/approve", buyer, None)
    assert approved["status"] == "approved"
    contract = client.get(f"{API}/contracts/{contract['id']}", headers=buyer).json()
    assert Decimal(contract["drawn"]) == Decimal("57.00")
    sent = _post(client, f"/purchase-orders/{po['id']}/send", buyer, None)
    assert sent["status"] == "sent"
    # The order went out five days ago, so both deliveries below lie in the past.
    sent_at = dt.datetime.fromisoformat(sent["sent_at"]) - dt.timedelta(days=5)
    with session_factory() as db, db.begin():
        order = db.get(PurchaseOrder, po["id"])
        assert order is not None
        order.sent_at = sent_at
    promised = sent_at.date() + dt.timedelta(days=1)
    acknowledged = _post(
        client,
        f"/purchase-orders/{po['id']}/acknowledgement",
        buyer,
        {"lines": [{"line_no": 1, "status": "accepted", "promised_date": str(promised)}]},
    )
    assert acknowledged["status"] == "acknowledged"

    # Two partial deliveries: the first an hour after sending (on time), the second four days
    # after sending, three days past the promised date.
    on_time_at = sent_at + dt.timedelta(hours=1)
    late_at = sent_at + dt.timedelta(days=4)
    line_id = po["lines"][0]["id"]
    first = _post(
        client,
        f"/purchase-orders/{po['id']}/receipts",
        buyer,
        {"line_id": line_id, "quantity_received": "2", "received_at": on_time_at.isoformat()},
    )
    assert first["order_status"] == "partially_received"
    assert first["notified_work_orders"] == [wo["id"]]
    refused = client.post(
        f"{API}/purchase-orders/{po['id']}/receipts",
        headers=buyer,
        json={"line_id": line_id, "quantity_received": "5"},
    )
    assert refused.status_code == 422
    assert refused.headers["content-type"] == "application/problem+json"
    future = client.post(
        f"{API}/purchase-orders/{po['id']}/receipts",
        headers=buyer,
        json={
            "line_id": line_id,
            "quantity_received": "1",
            "received_at": (utcnow() + dt.timedelta(days=1)).isoformat(),
        },
    )
    assert future.status_code == 422
    assert "future" in future.text
    second = _post(
        client,
        f"/purchase-orders/{po['id']}/receipts",
        buyer,
        {
            "line_id": line_id,
            "quantity_received": "4",
            "quantity_rejected": "1",
            "rejection_reason": "damaged box",
            "received_at": late_at.isoformat(),
        },
    )
    assert second["order_status"] == "received"

    with session_factory() as db:
        stock = db.get(StockLevel, ids["stock"])
        assert stock is not None
        assert (stock.on_hand, stock.reserved) == (Decimal(6), Decimal(6))
        notes = db.scalars(
            select(WorkOrderNote).where(WorkOrderNote.work_order_id == wo["id"])
        ).all()
        assert len(notes) == 2
        assert "nothing missing" in notes[-1].body
    history = client.get(f"{API}/purchase-orders/{po['id']}", headers=buyer).json()["history"]
    assert [h["to_status"] for h in history] == [
        "draft",
        "approved",
        "sent",
        "acknowledged",
        "partially_received",
        "received",
    ]

    # The scorecard sees one of two deliveries late and a lead time of (1 h + 4 d) / 2.
    period = {"start": str(today - dt.timedelta(days=6)), "end": str(today + dt.timedelta(days=1))}
    card = client.get(f"{API}/suppliers/{eu}/scorecard", headers=buyer, params=period)
    assert card.status_code == 200, card.text
    metrics = {m["key"]: m for m in card.json()["metrics"]}
    assert Decimal(metrics["on_time_delivery"]["value"]) == Decimal(50)
    assert metrics["on_time_delivery"]["basis"] == 2
    lead = metrics["lead_time"]
    expected_mean = (Decimal(1) / 24 + Decimal(4)) / 2
    assert Decimal(lead["value"]) == expected_mean.quantize(Decimal("0.01"))
    assert Decimal(lead["detail"]["max_days"]) == Decimal("4.00")
    assert Decimal(metrics["quality"]["value"]) < Decimal(100)  # one of seven rejected

    # Spend is reported in the company's base currency at the order's stored rate.
    spend = client.get(f"{API}/spend", headers=buyer, params={**period, "group_by": "supplier"})
    assert spend.status_code == 200, spend.text
    report = spend.json()
    assert report["base_currency"] == "USD"
    assert [(g["label"], Decimal(g["amount"])) for g in report["groups"]] == [
        ("EUROBEAR GmbH", Decimal("61.56"))
    ]


def test_permissions_follow_roles(
    client: TestClient, session_factory: sessionmaker[Session], make_user: MakeUser
) -> None:
    _setup(session_factory)
    analyst = bearer(make_user(Role.ANALYST)[1])
    manager = bearer(make_user(Role.MAINTENANCE_MANAGER)[1])
    tech = bearer(make_user(Role.TECHNICIAN)[1])
    assert client.get(f"{API}/suppliers", headers=analyst).status_code == 200
    assert client.get(f"{API}/purchase-orders", headers=manager).status_code == 200
    assert client.get(f"{API}/suppliers", headers=tech).status_code == 403
    body = {"code": "X", "legal_name": "X", "country": "DE", "currency": "EUR"}
    assert client.post(f"{API}/suppliers", headers=analyst, json=body).status_code == 403
    assert client.post(f"{API}/suppliers", headers=manager, json=body).status_code == 403
    assert client.post(f"{API}/purchase-orders/1/approve", headers=manager).status_code == 403


def test_currency_codes_and_amounts_are_validated(
    client: TestClient, session_factory: sessionmaker[Session], make_user: MakeUser
) -> None:
    _setup(session_factory)
    buyer = bearer(make_user(Role.PROCUREMENT)[1])
    base = {"code": "X", "legal_name": "X", "country": "DE"}
    for currency in ("EUX", "eur", "XAU", "EURO"):
        response = client.post(
            f"{API}/suppliers", headers=buyer, json={**base, "currency": currency}
        )
        assert response.status_code == 422, currency
        assert response.headers["content-type"] == "application/problem+json"
    supplier = _supplier(client, buyer, "JP", "JPY")
    contract = {
        "number": "C1",
        "supplier_id": supplier,
        "kind": "price_agreement",
        "currency": "JPY",
        "valid_from": "2026-01-01",
    }
    assert (
        client.post(
            f"{API}/contracts", headers=buyer, json={**contract, "spend_cap": "1000.5"}
        ).status_code
        == 422
    )  # yen have no minor unit
    assert (
        client.post(
            f"{API}/contracts", headers=buyer, json={**contract, "spend_cap": "-1"}
        ).status_code
        == 422
    )
    assert (
        client.post(
            f"{API}/contracts", headers=buyer, json={**contract, "spend_cap": "1e40"}
        ).status_code
        == 422
    )
    created = client.post(f"{API}/contracts", headers=buyer, json={**contract, "spend_cap": "1000"})
    assert created.status_code == 201


def test_catalog_import_endpoint_reports_lines_and_applies_nothing(
    client: TestClient, session_factory: sessionmaker[Session], make_user: MakeUser
) -> None:
    _setup(session_factory)
    buyer = bearer(make_user(Role.PROCUREMENT)[1])
    supplier = _supplier(client, buyer, "SKF", "EUR")
    bad = b"supplier_part_number,part_number,unit_price\nA,BRG-1,1.00\nB,NOPE,2.00\n"
    response = client.post(
        f"{API}/suppliers/{supplier}/catalog/import",
        headers={**buyer, "Content-Type": "text/csv"},
        content=bad,
    )
    assert response.status_code == 422
    report = response.json()["report"]
    assert report["applied"] is False
    assert [(e["line"], e["column"]) for e in report["errors"]] == [(3, "part_number")]
    assert client.get(f"{API}/catalog-items", headers=buyer).json()["total"] == 0
    good = b"supplier_part_number,part_number,unit_price\nA,BRG-1,1.00\n"
    response = client.post(
        f"{API}/suppliers/{supplier}/catalog/import",
        headers=buyer,
        files={"file": ("catalog.csv", good, "text/csv")},
    )
    assert response.status_code == 200, response.text
    assert response.json()["items_created"] == 1
    wrong_type = client.post(
        f"{API}/suppliers/{supplier}/catalog/import",
        headers={**buyer, "Content-Type": "application/json"},
        content=b"{}",
    )
    assert wrong_type.status_code == 415


def test_approval_limit_and_illegal_moves_over_the_api(
    client: TestClient, session_factory: sessionmaker[Session], make_user: MakeUser
) -> None:
    ids = _setup(session_factory)
    buyer = bearer(make_user(Role.PROCUREMENT)[1])
    admin = bearer(make_user(Role.ADMIN)[1])
    supplier = _supplier(client, buyer, "ACME", "USD")
    _post(
        client,
        "/catalog-items",
        buyer,
        {
            "supplier_id": supplier,
            "supplier_part_number": "A1",
            "part_id": ids["part"],
            "currency": "USD",
            "price_breaks": [{"unit_price": "2500.00"}],
        },
    )
    _post(client, "/requisitions", buyer, {"part_id": ids["part"], "quantity": "5"})
    (po,) = _post(client, "/purchase-orders/auto", buyer, None)["orders"]
    assert Decimal(po["total_base"]) == Decimal("12500.00")
    send_early = client.post(f"{API}/purchase-orders/{po['id']}/send", headers=buyer)
    assert send_early.status_code == 409
    over = client.post(f"{API}/purchase-orders/{po['id']}/approve", headers=buyer)
    assert over.status_code == 403
    assert "approval limit" in over.json()["detail"]
    assert (
        _post(client, f"/purchase-orders/{po['id']}/approve", admin, None)["status"] == "approved"
    )
    cancelled = _post(client, f"/purchase-orders/{po['id']}/cancel", buyer, {"reason": "dup"})
    assert cancelled["status"] == "cancelled"
    again = client.post(f"{API}/purchase-orders/{po['id']}/approve", headers=admin)
    assert again.status_code == 409
