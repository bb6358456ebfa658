"""The Business Central connector against a local API v2.0 company."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from maintainpro.supply.erp.auth import OAuthClientCredentials
from maintainpro.supply.erp.base import (
    ErpConflictError,
    ErpOrderStatus,
    ErpPurchaseOrder,
    ErpPurchaseOrderLine,
    ErpValidationError,
)
from maintainpro.supply.erp.business_central import BusinessCentralConfig, BusinessCentralConnector
from maintainpro.supply.erp.http import Connection, HttpOptions, RetryPolicy
from supply.erp.fake_bc import COMPANY, BcState, iso
from supply.erp.fakes import CLIENT_ID, CLIENT_SECRET

T0 = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.UTC)
Server = tuple[BcState, str]


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def order(vendor: str = "V10000", quantity: str = "5") -> ErpPurchaseOrder:
    """A two-line order in the local currency."""
    return ErpPurchaseOrder(
        number="PO-000042",
        vendor_number=vendor,
        currency="EUR",
        order_date=dt.date(2026, 3, 2),
        lines=(
            ErpPurchaseOrderLine(1, "1896-S", "Bearing", Decimal(quantity), "PCS", Decimal("12.5")),
            ErpPurchaseOrderLine(
                2, "1900-S", "Seal", Decimal("2"), "PCS", Decimal("3.10"), dt.date(2026, 3, 20)
            ),
        ),
    )


def connect(url: str, sleeps: list[float], clock: Clock | None = None) -> BusinessCentralConnector:
    """A connector with client-credentials OAuth against the local token endpoint."""
    connection = Connection(
        base_url=f"{url}/api/v2.0",
        credentials=OAuthClientCredentials(
            token_url=f"{url}/oauth2/token", client_id=CLIENT_ID, client_secret=CLIENT_SECRET
        ),
        retry=RetryPolicy(max_attempts=3),
    )
    config = BusinessCentralConfig(connection, company_id=COMPANY, local_currency="EUR")
    options = HttpOptions(sleep=sleeps.append, clock=clock or Clock())
    return BusinessCentralConnector(config, options=options)


def test_push_creates_the_order_then_its_lines_once(bc_server: Server) -> None:
    state, url = bc_server
    connector = connect(url, [])
    first = connector.push_purchase_order(order())
    second = connector.push_purchase_order(order())
    connector.close()

    assert first == second
    assert list(state.orders) == [first]
    assert state.orders[first]["number"] == "PO-000042"
    lines = state.lines[first]
    assert [(line["sequence"], line["lineObjectNumber"], line["quantity"]) for line in lines] == [
        (10000, "1896-S", 5),
        (20000, "1900-S", 2),
    ]
    assert lines[1]["expectedReceiptDate"] == "2026-03-20"
    assert "currencyCode" not in state.orders[first]  # local currency is left blank


def test_a_line_refused_by_bc_is_permanent_and_a_fixed_retry_completes(bc_server: Server) -> None:
    state, url = bc_server
    connector = connect(url, [])
    with pytest.raises(ErpValidationError, match="Quantity must be positive"):
        connector.push_purchase_order(order(quantity="0"))
    fixed = connector.push_purchase_order(order(quantity="4"))
    connector.close()

    assert list(state.orders) == [fixed]
    assert [line["quantity"] for line in state.lines[fixed]] == [4, 2]


def test_an_unknown_vendor_surfaces_bc_s_message(bc_server: Server) -> None:
    state, url = bc_server
    connector = connect(url, [])
    with pytest.raises(ErpValidationError) as caught:
        connector.push_purchase_order(order(vendor="V99999"))
    connector.close()
    assert caught.value.code == "Internal_RecordNotFound"
    assert "No.='V99999'" in caught.value.message
    assert state.orders == {}


def test_a_token_is_reused_until_it_expires_then_fetched_anew(bc_server: Server) -> None:
    state, url = bc_server
    clock = Clock()
    connector = connect(url, [], clock)
    connector.pull_changes(T0)
    connector.pull_changes(T0)
    assert len(state.issuer.issued) == 1
    clock.now += state.issuer.lifetime_s  # the client knows the token is spent: no 401 needed
    connector.pull_changes(T0)
    connector.close()

    assert len(state.issuer.issued) == 2
    assert state.unauthorised == 0


def test_patch_sends_the_etag_and_rereads_once_after_a_412(bc_server: Server) -> None:
    state, url = bc_server
    order_id = state.add_order("PO-000042", T0)
    connector = connect(url, [])
    updated = connector.update_purchase_order(order_id, {"requestedReceiptDate": "2026-03-25"})
    assert updated["requestedReceiptDate"] == "2026-03-25"
    assert state.patches == ['W/"JzE5OzE1Oyc="']

    state.race_patches = 1
    raced = connector.update_purchase_order(order_id, {"requestedReceiptDate": "2026-03-30"})
    assert state.patches[1:] == ['W/"JzE5OzE2Oyc="', 'W/"JzE5OzE3Oyc="']
    assert (raced["requestedReceiptDate"], raced["purchaser"]) == ("2026-03-30", "ALICE")

    state.race_patches = 2
    with pytest.raises(ErpConflictError, match="another user changed the record"):
        connector.update_purchase_order(order_id, {"requestedReceiptDate": "2026-04-02"})
    connector.close()
    assert state.orders[order_id]["requestedReceiptDate"] == "2026-03-30"


def test_pulls_follow_next_links_and_keep_only_later_changes(bc_server: Server) -> None:
    state, url = bc_server
    ids = [
        state.add_order(f"PO-00000{n}", T0 + dt.timedelta(minutes=n), status=status)
        for n, status in enumerate(["Draft", "Released", "Released", "In Review", "Released"])
    ]
    state.orders[ids[4]]["fullyReceived"] = True
    state.receipts.append(
        {
            "id": "r1",
            "number": "107001",
            "orderNumber": "PO-000002",
            "postingDate": "2026-03-02",
            "lastModifiedDateTime": iso(T0 + dt.timedelta(minutes=6)),
            "purchaseReceiptLines": [
                {
                    "sequence": 10000,
                    "lineType": "Item",
                    "lineObjectNumber": "1896-S",
                    "quantity": 3,
                    "unitOfMeasureCode": "PCS",
                },
                {"sequence": 20000, "lineType": "Comment", "quantity": 0},
            ],
        }
    )
    state.vendors.append(
        {
            "number": "V20000",
            "displayName": "Seal Works",
            "currencyCode": "USD",
            "blocked": "Payment",
            "lastModifiedDateTime": iso(T0 + dt.timedelta(minutes=1)),
        }
    )
    state.items.append(
        {
            "number": "1896-S",
            "displayName": "ATHENS Desk",
            "baseUnitOfMeasureCode": "PCS",
            "lastModifiedDateTime": iso(T0 + dt.timedelta(minutes=2)),
        }
    )
    connector = connect(url, [])
    changes = connector.pull_changes(T0)
    connector.close()

    assert [(s.po_number, s.status) for s in changes.statuses] == [
        ("PO-000001", ErpOrderStatus.OPEN),
        ("PO-000002", ErpOrderStatus.OPEN),
        ("PO-000003", ErpOrderStatus.IN_APPROVAL),
        ("PO-000004", ErpOrderStatus.RECEIVED),
    ]
    assert [(r.receipt_id, r.po_number, r.line_no, r.quantity) for r in changes.receipts] == [
        ("107001/10000", "PO-000002", 1, Decimal(3))
    ]
    assert [(v.number, v.currency, v.blocked) for v in changes.vendors] == [("V20000", "USD", True)]
    assert [(i.number, i.unit) for i in changes.items] == [("1896-S", "PCS")]
    assert changes.watermark == T0 + dt.timedelta(minutes=6)
    reads = [p for m, p in state.knobs.requests if p.endswith("/purchaseOrders")]
    assert len(reads) == 2  # four changed orders at two a page
