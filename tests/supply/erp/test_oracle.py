"""The Oracle Fusion connector against a local pod speaking the published REST shapes."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

import httpx
import pytest

from maintainpro.supply.erp.auth import BasicCredentials
from maintainpro.supply.erp.base import (
    ErpOrderStatus,
    ErpPurchaseOrder,
    ErpPurchaseOrderLine,
    ErpValidationError,
)
from maintainpro.supply.erp.http import Connection, HttpOptions, RetryPolicy
from maintainpro.supply.erp.oracle import OracleConfig, OracleConnector, oracle_error
from supply.erp.fake_oracle import OracleState, stamp
from supply.erp.fakes import PASSWORD, USER

T0 = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.UTC)
Server = tuple[OracleState, str]


def order(number: str = "PO-000042", vendor: str = "1252") -> ErpPurchaseOrder:
    """A two-line order."""
    return ErpPurchaseOrder(
        number=number,
        vendor_number=vendor,
        currency="USD",
        order_date=dt.date(2026, 3, 2),
        lines=(
            ErpPurchaseOrderLine(1, "BRG-1", "Bearing 6205", Decimal("5"), "Ea", Decimal("12.50")),
            ErpPurchaseOrderLine(
                2,
                "SEAL-7",
                "Shaft seal",
                Decimal("2.5"),
                "M",
                Decimal("3.125"),
                dt.date(2026, 3, 20),
            ),
        ),
    )


def connect(
    url: str, sleeps: list[float], *, bu: str = "Vision Operations", page_size: int = 2
) -> OracleConnector:
    """A connector to the local pod that records its waits instead of sleeping."""
    connection = Connection(
        base_url=url,
        credentials=BasicCredentials(USER, PASSWORD),
        retry=RetryPolicy(max_attempts=4, base_delay_s=1.0),
    )
    config = OracleConfig(
        connection,
        procurement_bu=bu,
        buyer="Smith, Calvin",
        ship_to_location="Plant 1 Dock",
        page_size=page_size,
    )
    return OracleConnector(config, options=HttpOptions(sleep=sleeps.append, rng=random.Random(7)))


def test_push_creates_one_draft_with_lines_and_schedules(oracle_server: Server) -> None:
    state, url = oracle_server
    connector = connect(url, [])
    first = connector.push_purchase_order(order())
    second = connector.push_purchase_order(order())
    connector.close()

    assert first == second == str(next(iter(state.drafts)))
    assert len(state.posts) == 1
    posted = state.posts[0]
    assert posted["SupplierId"] == 300000047  # resolved from supplier number 1252
    assert (posted["OrderNumber"], posted["ProcurementBU"], posted["RequisitioningBU"]) == (
        "PO-000042",
        "Vision Operations",
        "Vision Operations",
    )
    lines = posted["lines"]
    assert [(line["LineNumber"], line["Quantity"], line["Price"]) for line in lines] == [
        (1, 5, 12.50),
        (2, 2.5, 3.125),
    ]
    assert lines[1]["schedules"] == [
        {
            "ScheduleNumber": 1,
            "Quantity": 2.5,
            "RequestedDeliveryDate": "2026-03-20",
            "ShipToLocation": "Plant 1 Dock",
        }
    ]


def test_an_order_already_approved_is_found_among_purchase_orders(oracle_server: Server) -> None:
    state, url = oracle_server
    connector = connect(url, [])
    created = connector.push_purchase_order(order())
    state.submit(int(created))
    again = connector.push_purchase_order(order())
    connector.close()

    assert again == created
    assert len(state.posts) == 1
    assert state.drafts == {}


def test_a_validation_error_surfaces_oracle_s_detail(oracle_server: Server) -> None:
    state, url = oracle_server
    connector = connect(url, [], bu="Nowhere BU")
    with pytest.raises(ErpValidationError) as caught:
        connector.push_purchase_order(order())
    connector.close()

    assert caught.value.message == "The procurement business unit Nowhere BU isn't valid."
    assert caught.value.code == "PO-2055023"
    assert state.drafts == {}


def test_an_unknown_supplier_is_refused_before_anything_is_sent(oracle_server: Server) -> None:
    state, url = oracle_server
    connector = connect(url, [])
    with pytest.raises(ErpValidationError, match="supplier 9999 is not in Oracle"):
        connector.push_purchase_order(order(vendor="9999"))
    connector.close()
    assert state.posts == []


def test_status_pull_pages_by_offset_and_keeps_only_later_changes(oracle_server: Server) -> None:
    state, url = oracle_server
    stamps = [T0 + dt.timedelta(minutes=10 * n) for n in range(6)]
    statuses = ["OPEN", "OPEN", "CLOSED FOR RECEIVING", "CANCELED", "PENDING APPROVAL", "ODD"]
    ids = [
        state.add_order(f"PO-00000{n}", status, moment)
        for n, (status, moment) in enumerate(zip(statuses, stamps, strict=True))
    ]
    sleeps: list[float] = []
    state.knobs.unavailable = 2
    connector = connect(url, sleeps, page_size=2)
    changes = connector.pull_changes(stamps[1])
    connector.close()

    assert [s.external_id for s in changes.statuses] == [str(i) for i in ids[2:]]
    assert [s.status for s in changes.statuses] == [
        ErpOrderStatus.RECEIVED,
        ErpOrderStatus.CANCELLED,
        ErpOrderStatus.IN_APPROVAL,
        ErpOrderStatus.UNKNOWN,
    ]
    assert changes.statuses[0].po_number == "PO-000002"
    assert changes.watermark == stamps[5]
    # Two 503s waited out with growing, jittered back-off: 0.5-1 s, then 1-2 s.
    assert len(sleeps) == 2
    assert 0.5 <= sleeps[0] <= 1.0
    assert 1.0 <= sleeps[1] <= 2.0
    pages = [path for method, path in state.knobs.requests if path.endswith("/purchaseOrders")]
    assert len(pages) == 2 + 2  # two 503s, then four records at two a page


def test_receipts_vendors_and_items_come_from_their_resources(oracle_server: Server) -> None:
    state, url = oracle_server
    state.receipt_requests += [
        {
            "HeaderInterfaceId": 9001,
            "LastUpdateDate": stamp(T0 + dt.timedelta(hours=1)),
            "lines": [
                {
                    "InterfaceTransactionId": 1,
                    "SourceDocumentCode": "PO",
                    "ProcessingStatusCode": "COMPLETED",
                    "DocumentNumber": "PO-000042",
                    "DocumentLineNumber": 1,
                    "ItemNumber": "BRG-1",
                    "Quantity": 4,
                    "UnitOfMeasure": "Ea",
                    "TransactionDate": "2026-03-02T09:00:00+00:00",
                },
                {
                    "InterfaceTransactionId": 2,
                    "SourceDocumentCode": "PO",
                    "ProcessingStatusCode": "ERROR",
                    "DocumentNumber": "PO-000042",
                    "DocumentLineNumber": 2,
                    "ItemNumber": "SEAL-7",
                    "Quantity": 1,
                },
            ],
        },
        {
            "HeaderInterfaceId": 9000,
            "LastUpdateDate": stamp(T0 - dt.timedelta(hours=1)),
            "lines": [],
        },
    ]
    state.suppliers.append(
        {
            "SupplierId": 300000048,
            "Supplier": "Seal Works",
            "SupplierNumber": "1253",
            "InactiveDate": "2026-01-01",
            "LastUpdateDate": stamp(T0 + dt.timedelta(minutes=5)),
        }
    )
    state.items.append(
        {
            "ItemNumber": "BRG-1",
            "ItemDescription": "Ball bearing 6205",
            "PrimaryUOMValue": "Each",
            "LastUpdateDate": stamp(T0 + dt.timedelta(minutes=7)),
        }
    )
    connector = connect(url, [])
    changes = connector.pull_changes(T0)
    connector.close()

    assert [
        (r.receipt_id, r.erp_order_number, r.line_no, r.quantity) for r in changes.receipts
    ] == [("9001/1", "PO-000042", 1, Decimal(4))]
    assert changes.receipts[0].received_on == dt.date(2026, 3, 2)
    assert [(v.number, v.name, v.blocked) for v in changes.vendors] == [
        ("1253", "Seal Works", True)
    ]
    assert [(i.number, i.unit) for i in changes.items] == [("BRG-1", "Each")]
    assert changes.watermark == T0 + dt.timedelta(hours=1)


def test_error_bodies_of_both_framework_generations_are_read() -> None:
    json_error = httpx.Response(
        400,
        headers={"content-type": "application/vnd.oracle.adf.error+json"},
        json={
            "title": "Bad Request",
            "status": "400",
            "o:errorDetails": [
                {"detail": "Quantity must be positive.", "o:errorCode": "PO-1"},
                {"detail": "Price is required.", "o:errorCode": "PO-2"},
            ],
        },
    )
    plain = httpx.Response(
        400,
        headers={"content-type": "text/plain"},
        text="Invalid operation create for the specified resource.",
    )
    assert oracle_error(json_error) == ("PO-1", "Quantity must be positive.; Price is required.")
    assert oracle_error(plain) == (None, "Invalid operation create for the specified resource.")
