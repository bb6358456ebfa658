"""The Finance & Operations connector against a local environment speaking OData v4."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from maintainpro.supply.erp.auth import OAuthClientCredentials
from maintainpro.supply.erp.base import (
    ErpAuthError,
    ErpOrderStatus,
    ErpPurchaseOrder,
    ErpPurchaseOrderLine,
    ErpRetryableError,
    ErpValidationError,
)
from maintainpro.supply.erp.dynamics_fo import FinanceOperationsConfig, FinanceOperationsConnector
from maintainpro.supply.erp.http import Connection, HttpOptions, RetryPolicy
from supply.erp.fake_fo import FoState, iso
from supply.erp.fakes import CLIENT_ID, CLIENT_SECRET

T0 = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.UTC)
Server = tuple[FoState, str]


def order(vendor: str = "US-101") -> ErpPurchaseOrder:
    """A two-line order."""
    return ErpPurchaseOrder(
        number="PO-000042",
        vendor_number=vendor,
        currency="USD",
        order_date=dt.date(2026, 3, 2),
        lines=(
            ErpPurchaseOrderLine(1, "BRG-1", "Bearing 6205", Decimal("5"), "ea", Decimal("12.50")),
            ErpPurchaseOrderLine(
                2, "SEAL-7", "Shaft seal", Decimal("2"), "ea", Decimal("3.10"), dt.date(2026, 3, 20)
            ),
        ),
    )


def connect(
    url: str, sleeps: list[float], *, secret: str = CLIENT_SECRET
) -> FinanceOperationsConnector:
    """A connector with client-credentials OAuth against the local token endpoint."""
    connection = Connection(
        base_url=url,
        credentials=OAuthClientCredentials(
            token_url=f"{url}/oauth2/token",
            client_id=CLIENT_ID,
            client_secret=secret,
            scope=f"{url}/.default",
        ),
        retry=RetryPolicy(max_attempts=3),
    )
    config = FinanceOperationsConfig(
        connection, data_area_id="usmf", receiving_site_id="1", receiving_warehouse_id="11"
    )
    return FinanceOperationsConnector(config, options=HttpOptions(sleep=sleeps.append))


def test_push_creates_header_and_lines_in_the_company_once(fo_server: Server) -> None:
    state, url = fo_server
    connector = connect(url, [])
    first = connector.push_purchase_order(order())
    second = connector.push_purchase_order(order())
    connector.close()

    assert first == second == "usmf/PO-000042"
    headers = state.rows("PurchaseOrderHeadersV2")
    assert [
        (h["dataAreaId"], h["PurchaseOrderNumber"], h["OrderVendorAccountNumber"]) for h in headers
    ] == [("usmf", "PO-000042", "US-101")]
    lines = state.rows("PurchaseOrderLinesV2")
    assert [
        (line["LineNumber"], line["OrderedPurchaseQuantity"], line["PurchasePrice"])
        for line in lines
    ] == [
        (1, 5, 12.50),
        (2, 2, 3.10),
    ]
    assert lines[1]["RequestedDeliveryDate"] == "2026-03-20T12:00:00Z"
    assert lines[0]["ReceivingWarehouseId"] == "11"
    # One token for the whole exchange: it is cached until it expires.
    assert len(state.issuer.issued) == 1


def test_a_push_cut_short_after_the_header_completes_on_the_next_try(fo_server: Server) -> None:
    state, url = fo_server
    state.fail_line_number = 2
    connector = connect(url, [])
    with pytest.raises(ErpRetryableError) as caught:
        connector.push_purchase_order(order())
    assert caught.value.ambiguous
    connector.push_purchase_order(order())
    connector.close()

    assert len(state.rows("PurchaseOrderHeadersV2")) == 1
    assert sorted(line["LineNumber"] for line in state.rows("PurchaseOrderLinesV2")) == [1, 2]


def test_an_expired_token_is_renewed_once_on_401(fo_server: Server) -> None:
    state, url = fo_server
    connector = connect(url, [])
    connector.push_purchase_order(order())
    state.issuer.expire_all()  # revoked or expired on the server's side
    changes = connector.pull_changes(dt.datetime(2020, 1, 1, tzinfo=dt.UTC))
    connector.close()

    assert state.unauthorised == 1
    assert len(state.issuer.issued) == 2
    assert [s.po_number for s in changes.statuses] == ["PO-000042"]


def test_a_refused_client_secret_is_a_permanent_auth_error(fo_server: Server) -> None:
    _, url = fo_server
    connector = connect(url, [], secret="wrong-secret")
    with pytest.raises(ErpAuthError, match="invalid_client"):
        connector.push_purchase_order(order())
    connector.close()


def test_a_validation_error_surfaces_the_infolog(fo_server: Server) -> None:
    state, url = fo_server
    connector = connect(url, [])
    with pytest.raises(ErpValidationError, match="Vendor account US-999 does not exist"):
        connector.push_purchase_order(order(vendor="US-999"))
    connector.close()
    assert state.rows("PurchaseOrderHeadersV2") == []


def test_pulls_are_cross_company_filtered_by_company_and_modified_date(fo_server: Server) -> None:
    state, url = fo_server
    headers = state.rows("PurchaseOrderHeadersV2")
    for n, (company, flow, approval) in enumerate(
        [
            ("usmf", "Backorder", "Confirmed"),
            ("usmf", "Backorder", "Confirmed"),
            ("usmf", "Received", "Confirmed"),
            ("dat", "Invoiced", "Confirmed"),  # another company: not ours
            ("usmf", "Backorder", "InReview"),
            ("usmf", "Canceled", "Draft"),
        ]
    ):
        headers.append(
            {
                "dataAreaId": company,
                "PurchaseOrderNumber": f"PO-00000{n}",
                "PurchaseOrderStatus": flow,
                "DocumentApprovalStatus": approval,
                "ModifiedDateTime": iso(T0 + dt.timedelta(minutes=n)),
            }
        )
    state.rows("ProductReceiptLines").append(
        {
            "dataAreaId": "usmf",
            "ProductReceiptNumber": "PR-0007",
            "PurchaseOrderNumber": "PO-000002",
            "PurchaseOrderLineNumber": 1,
            "ItemNumber": "BRG-1",
            "ReceivedPurchaseQuantity": 5,
            "PurchaseUnitSymbol": "ea",
            "ProductReceiptDate": "2026-03-02T00:00:00Z",
            "ModifiedDateTime": iso(T0 + dt.timedelta(minutes=2)),
        }
    )
    state.rows("ReleasedProductsV2").append(
        {
            "dataAreaId": "usmf",
            "ItemNumber": "BRG-1",
            "ProductName": "Ball bearing 6205",
            "PurchaseUnitSymbol": "ea",
            "ModifiedDateTime": iso(T0 + dt.timedelta(minutes=3)),
        }
    )
    state.knobs.rate_limited = 1
    state.knobs.retry_after = "2"
    sleeps: list[float] = []
    connector = connect(url, sleeps)
    changes = connector.pull_changes(T0 + dt.timedelta(minutes=1))
    connector.close()

    assert sleeps == [2.0]
    assert [(s.external_id, s.status) for s in changes.statuses] == [
        ("usmf/PO-000002", ErpOrderStatus.RECEIVED),
        ("usmf/PO-000004", ErpOrderStatus.IN_APPROVAL),
        ("usmf/PO-000005", ErpOrderStatus.CANCELLED),
    ]
    assert changes.statuses[1].erp_status == "Backorder/InReview"
    assert [(r.receipt_id, r.po_number, r.line_no, r.quantity) for r in changes.receipts] == [
        ("usmf/PR-0007/1", "PO-000002", 1, Decimal(5))
    ]
    assert [(i.number, i.description) for i in changes.items] == [("BRG-1", "Ball bearing 6205")]
    assert changes.vendors == ()
    assert changes.watermark == T0 + dt.timedelta(minutes=5)
    # Three headers at two a page: the connector followed @odata.nextLink.
    reads = [p for m, p in state.knobs.requests if p == "/data/PurchaseOrderHeadersV2"]
    assert len(reads) == 1 + 2
