"""The purchase-order lifecycle API: acknowledgement to close, problems, permissions."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from conftest import MakeUser
from maintainpro.app import create_app
from maintainpro.config import Settings
from maintainpro.core.users import Role
from maintainpro.supply.contracts import Contract
from maintainpro.supply.rates import ExchangeRate
from supply.lifecycle_world import build_order
from supply.procurement_world import EUR_USD, TODAY, World
from support import bearer, plant

API = "/api/v1"
PROBLEM = "application/problem+json"
SHIPPED = "2026-11-29T07:30:00Z"


@pytest.fixture
def buyer(make_user: MakeUser) -> dict[str, str]:
    """A procurement user: reads, writes and approves."""
    return bearer(make_user(Role.PROCUREMENT)[1])


def _order(
    factory: sessionmaker[Session], lines: list[tuple[str, str]], **kw: Any
) -> dict[str, int]:
    with factory() as db, db.begin():
        world = World(db, plant(db))
        db.add(ExchangeRate(day=TODAY, currency="USD", per_eur=EUR_USD, source="ECB"))
        order = build_order(world, lines, **kw)
        return {"order": order.id, "contract": order.lines[0].contract_id or 0}


def _ok(response: Any, code: int = 200) -> Any:
    assert response.status_code == code, response.text
    return response.json()


def _problem(response: Any, code: int) -> dict[str, Any]:
    assert response.status_code == code, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    return body


def test_from_acknowledgement_to_close(
    client: TestClient, session_factory: sessionmaker[Session], buyer: dict[str, str]
) -> None:
    ids = _order(session_factory, [("10", "9.00"), ("4", "2.50")])
    po = f"{API}/purchase-orders/{ids['order']}"
    acked = _ok(
        client.post(
            f"{po}/acknowledgement",
            headers=buyer,
            json={
                "source": "edi",
                "lines": [
                    {"line_no": 1, "status": "accepted", "promised_date": "2026-12-05"},
                    {"line_no": 2, "status": "changed", "quantity": "5", "note": "pack of 5"},
                ],
            },
        )
    )
    assert acked["status"] == "acknowledged"
    assert acked["acknowledged_at"] is not None
    assert [(line["ack_status"], line["promised_date"]) for line in acked["lines"]] == [
        ("accepted", "2026-12-05"),
        ("changed", None),
    ]
    assert Decimal(acked["lines"][1]["quantity"]) == 5
    assert {"line": 2, "field": "quantity", "old": "4", "new": "5"} in acked["history"][-1][
        "detail"
    ]
    changed = _ok(
        client.post(
            f"{po}/changes",
            headers=buyer,
            json={"lines": [{"line_no": 1, "need_by": "2026-12-09"}], "reason": "later"},
        )
    )
    assert (changed["revision"], changed["lines"][0]["need_by"]) == (1, "2026-12-09")

    notice = {
        "shipment_number": "ASN-100",
        "shipped_at": SHIPPED,
        "expected_delivery": "2026-12-01T12:00:00Z",
        "carrier_scac": "DHLC",
        "carrier_name": "DHL",
        "tracking_number": "JD0146",
        "lines": [{"line_no": 1, "quantity": "10"}, {"line_no": 2, "quantity": "5"}],
    }
    shipment = _ok(client.post(f"{po}/shipments", headers=buyer, json=notice), 201)
    assert [(s["line_no"], Decimal(s["quantity"])) for s in shipment["lines"]] == [(1, 10), (2, 5)]
    again = _ok(client.post(f"{po}/shipments", headers=buyer, json=notice), 200)
    assert again["id"] == shipment["id"]
    clash = client.post(
        f"{po}/shipments",
        headers=buyer,
        json={**notice, "lines": [{"line_no": 1, "quantity": "1"}]},
    )
    assert "different ship notice" in _problem(clash, 409)["detail"]
    order = _ok(client.get(po, headers=buyer))
    assert order["status"] == "shipped"
    assert [Decimal(line["shipped_quantity"]) for line in order["lines"]] == [10, 5]

    events = f"{API}/shipments/{shipment['id']}/events"
    _ok(
        client.post(
            events,
            headers=buyer,
            json={"status": "delivered", "occurred_at": "2026-12-01T09:00:00Z", "raw_code": "D1"},
        )
    )
    late = _ok(
        client.post(
            events,
            headers=buyer,
            json={"status": "in_transit", "occurred_at": "2026-11-30T09:00:00Z"},
        )
    )
    assert (late["status"], late["delivered_at"]) == ("delivered", "2026-12-01T09:00:00Z")
    assert len(late["events"]) == 2
    listed = _ok(
        client.get(
            f"{API}/shipments",
            headers=buyer,
            params={"purchase_order_id": ids["order"], "status": "delivered"},
        )
    )
    assert [s["id"] for s in listed["items"]] == [shipment["id"]]
    assert (
        _ok(client.get(f"{API}/shipments", headers=buyer, params={"status": "exception"}))["total"]
        == 0
    )

    for line in order["lines"]:
        _ok(
            client.post(
                f"{po}/receipts",
                headers=buyer,
                json={"line_id": line["id"], "quantity_received": line["quantity"]},
            ),
            201,
        )
    invoice = _ok(
        client.post(
            f"{po}/invoices",
            headers=buyer,
            json={
                "invoice_number": "INV-9",
                "invoice_date": "2026-12-02",
                "currency": "USD",
                "total": "114.75",
                "tax": "12.25",
                "lines": [
                    {"order_line_no": 1, "quantity": "10", "unit_price": "9.00"},
                    {"order_line_no": 2, "quantity": "5", "unit_price": "2.50"},
                ],
            },
        ),
        201,
    )
    assert (invoice["status"], invoice["exceptions"]) == ("matched", [])
    assert _ok(client.get(f"{API}/invoices/{invoice['id']}", headers=buyer))["id"] == invoice["id"]
    order = _ok(client.get(po, headers=buyer))
    assert order["status"] == "invoiced"
    assert [Decimal(line["invoiced_quantity"]) for line in order["lines"]] == [10, 5]
    closed = _ok(client.post(f"{po}/close", headers=buyer))
    assert closed["status"] == "closed"
    assert _problem(client.post(f"{po}/close", headers=buyer), 409)["title"] == (
        "Illegal status change"
    )

    pdf = client.get(f"{po}/pdf", headers=buyer, params={"explanations": "true"})
    assert pdf.status_code == 200
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF-")
    assert b"PO-000001 rev. 1" in pdf.content
    assert b"cheapest catalogue price" in pdf.content


def test_exception_invoices_need_an_approver_and_a_reason(
    client: TestClient,
    session_factory: sessionmaker[Session],
    buyer: dict[str, str],
    make_user: MakeUser,
) -> None:
    ids = _order(session_factory, [("10", "9.00")])
    po = f"{API}/purchase-orders/{ids['order']}"
    body = {
        "invoice_number": "EX-1",
        "invoice_date": "2026-12-02",
        "currency": "USD",
        "total": "95.00",
        "lines": [{"order_line_no": 1, "quantity": "10", "unit_price": "9.50"}],
    }
    invoice = _ok(client.post(f"{po}/invoices", headers=buyer, json=body), 201)
    assert invoice["status"] == "exception"
    assert [e["kind"] for e in invoice["exceptions"]] == ["price_variance", "not_received"]
    analyst = bearer(make_user(Role.ANALYST)[1])
    manager = bearer(make_user(Role.MAINTENANCE_MANAGER)[1])
    listed = _ok(client.get(f"{API}/invoices", headers=analyst, params={"status": "exception"}))
    assert [i["id"] for i in listed["items"]] == [invoice["id"]]
    approve = f"{API}/invoices/{invoice['id']}/approve"
    _problem(client.post(approve, headers=analyst, json={"reason": "fine"}), 403)
    _problem(client.post(f"{po}/invoices", headers=manager, json=body), 403)
    _problem(client.post(approve, headers=buyer, json={}), 422)
    _problem(client.post(approve, headers=buyer, json={"reason": ""}), 422)
    duplicate = client.post(f"{po}/invoices", headers=buyer, json=body)
    assert _problem(duplicate, 409)["title"] == "Duplicate document"
    approved = _ok(client.post(approve, headers=buyer, json={"reason": "price rise agreed"}))
    assert approved["status"] == "approved"
    history = _ok(client.get(po, headers=analyst))["history"]
    assert history[-1]["note"].endswith("2 exception(s): price rise agreed")
    assert _problem(client.post(approve, headers=buyer, json={"reason": "again"}), 409)


def test_bad_input_is_refused_and_nothing_is_half_applied(
    client: TestClient, session_factory: sessionmaker[Session], buyer: dict[str, str]
) -> None:
    ids = _order(session_factory, [("10", "9.00"), ("4", "2.50")], contract_cap="95.00")
    po = f"{API}/purchase-orders/{ids['order']}"
    bad_ack = client.post(
        f"{po}/acknowledgement",
        headers=buyer,
        json={
            "lines": [
                {"line_no": 2, "status": "rejected", "note": "gone"},
                {"line_no": 7, "status": "accepted"},
            ]
        },
    )
    assert _problem(bad_ack, 422)["detail"] == "line 7 is not on the order"
    order = _ok(client.get(po, headers=buyer))
    assert order["status"] == "sent"
    assert [line["ack_status"] for line in order["lines"]] == ["pending", "pending"]
    negative = client.post(
        f"{po}/acknowledgement",
        headers=buyer,
        json={"lines": [{"line_no": 1, "status": "changed", "quantity": "-1"}]},
    )
    assert _problem(negative, 422)["errors"][0]["loc"][-1] == "quantity"
    pending = client.post(
        f"{po}/acknowledgement",
        headers=buyer,
        json={"lines": [{"line_no": 1, "status": "pending"}]},
    )
    _problem(pending, 422)
    # Line 1 is under a contract with 5.00 left: one more bearing does not fit.
    over_cap = client.post(
        f"{po}/changes",
        headers=buyer,
        json={"lines": [{"line_no": 2, "quantity": "2"}, {"line_no": 1, "quantity": "11"}]},
    )
    assert "5.00 USD left" in _problem(over_cap, 409)["detail"]
    order = _ok(client.get(po, headers=buyer))
    assert (order["revision"], [Decimal(line["quantity"]) for line in order["lines"]]) == (
        0,
        [10, 4],
    )
    with session_factory() as db:
        contract = db.get(Contract, ids["contract"])
        assert contract is not None
        assert contract.drawn == Decimal("90.00")
    hostile = client.post(
        f"{po}/shipments",
        headers=buyer,
        json={
            "shipment_number": "<script>alert(1)</script>",
            "shipped_at": SHIPPED,
            "lines": [{"line_no": 1, "quantity": "1"}],
        },
    )
    assert "<script>" not in _problem(hostile, 422).__repr__()
    naive = client.post(
        f"{po}/shipments",
        headers=buyer,
        json={
            "shipment_number": "A1",
            "shipped_at": "2026-11-29T07:30:00",
            "lines": [{"line_no": 1, "quantity": "1"}],
        },
    )
    _problem(naive, 422)
    too_many = client.post(
        f"{po}/shipments",
        headers=buyer,
        json={
            "shipment_number": "A1",
            "shipped_at": SHIPPED,
            "lines": [{"line_no": 1, "quantity": "11"}],
        },
    )
    assert "exceeds the limit of 10" in _problem(too_many, 422)["detail"]
    extra = client.post(
        f"{po}/lines/1/cancel", headers=buyer, json={"reason": "x", "unexpected": True}
    )
    _problem(extra, 422)
    _problem(client.post(f"{po}/lines/9/cancel", headers=buyer, json={}), 422)
    cancelled = _ok(client.post(f"{po}/lines/2/cancel", headers=buyer, json={"reason": "dup"}))
    assert (cancelled["revision"], Decimal(cancelled["lines"][1]["quantity"])) == (1, 0)
    missing = f"{API}/purchase-orders/999999"
    _problem(client.post(f"{missing}/acknowledgement", headers=buyer, json={"lines": []}), 422)
    ack = {"lines": [{"line_no": 1, "status": "accepted"}]}
    _problem(client.post(f"{missing}/acknowledgement", headers=buyer, json=ack), 404)
    _problem(client.get(f"{API}/shipments/999999", headers=buyer), 404)
    _problem(client.get(f"{API}/invoices/999999", headers=buyer), 404)
    _problem(client.get(f"{missing}/pdf", headers=buyer), 404)


def test_an_order_not_sent_is_not_acknowledged(
    client: TestClient, session_factory: sessionmaker[Session], buyer: dict[str, str]
) -> None:
    ids = _order(session_factory, [("10", "9.00")], send=False)
    response = client.post(
        f"{API}/purchase-orders/{ids['order']}/acknowledgement",
        headers=buyer,
        json={"lines": [{"line_no": 1, "status": "accepted"}]},
    )
    assert "not sent" in _problem(response, 409)["detail"]


@pytest.fixture
def lenient_client(settings: Settings, engine: Any) -> Iterator[TestClient]:
    """An app that lets invoiced prices run 10 % over the order's."""
    tuned = settings.model_copy(update={"invoice_price_tolerance_pct": Decimal(10)})
    with TestClient(create_app(tuned)) as test_client:
        yield test_client


def test_the_price_tolerance_comes_from_the_settings(
    lenient_client: TestClient, session_factory: sessionmaker[Session], make_user: MakeUser
) -> None:
    assert Settings().invoice_price_tolerance_pct == 2
    assert Settings().invoice_quantity_tolerance_pct == 0
    headers = bearer(make_user(Role.PROCUREMENT)[1])
    ids = _order(session_factory, [("10", "9.00")])
    po = f"{API}/purchase-orders/{ids['order']}"
    with session_factory() as db, db.begin():
        from maintainpro.supply.purchasing import PurchaseOrder
        from maintainpro.supply.receiving import receive

        order = db.get(PurchaseOrder, ids["order"])
        assert order is not None
        receive(db, order.lines[0], quantity=Decimal(10), received_at=dt.datetime.now(dt.UTC))
    invoice = _ok(
        lenient_client.post(
            f"{po}/invoices",
            headers=headers,
            json={
                "invoice_number": "T-1",
                "invoice_date": "2026-12-02",
                "currency": "USD",
                "total": "95.00",
                "lines": [{"order_line_no": 1, "quantity": "10", "unit_price": "9.50"}],
            },
        ),
        201,
    )
    assert (invoice["status"], invoice["exceptions"]) == ("matched", [])


def test_the_pdf_names_the_buyer_from_the_settings(
    settings: Settings, engine: Any, session_factory: sessionmaker[Session], make_user: MakeUser
) -> None:
    named = settings.model_copy(update={"buyer_name": "Plant 7 <Purchasing>"})
    headers = bearer(make_user(Role.PROCUREMENT)[1])
    ids = _order(session_factory, [("10", "9.00")])
    with TestClient(create_app(named)) as client:
        pdf = client.get(f"{API}/purchase-orders/{ids['order']}/pdf", headers=headers)
    assert pdf.status_code == 200
    assert b"Buyer: Plant 7 <" in pdf.content
    assert b"Buyer: MaintAInPro" not in pdf.content
