"""The SAP connector against a local S/4HANA speaking the published OData v2 shapes."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from maintainpro.supply.erp.auth import BasicCredentials
from maintainpro.supply.erp.base import (
    ErpAuthError,
    ErpOrderStatus,
    ErpPurchaseOrder,
    ErpPurchaseOrderLine,
    ErpValidationError,
)
from maintainpro.supply.erp.http import Connection, HttpOptions, RetryPolicy
from maintainpro.supply.erp.sap import SapConfig, SapConnector
from supply.erp.fake_sap import SapState, material_document
from supply.erp.fakes import PASSWORD, USER

T0 = dt.datetime(2026, 3, 2, 8, 0, tzinfo=dt.UTC)

Server = tuple[SapState, str]


def order(number: str = "PO-000042", vendor: str = "17300001") -> ErpPurchaseOrder:
    """A two-line order."""
    return ErpPurchaseOrder(
        number=number,
        vendor_number=vendor,
        currency="EUR",
        order_date=dt.date(2026, 3, 2),
        lines=(
            ErpPurchaseOrderLine(1, "BRG-1", "Bearing 6205", Decimal("5"), "EA", Decimal("12.50")),
            ErpPurchaseOrderLine(
                2,
                "SEAL-7",
                "Shaft seal",
                Decimal("2.5"),
                "M",
                Decimal("3.125"),
                need_by=dt.date(2026, 3, 20),
            ),
        ),
    )


def connect(
    url: str, sleeps: list[float], *, timeout: float = 5.0, password: str = PASSWORD
) -> SapConnector:
    """A connector to the local server that records its waits instead of sleeping."""
    connection = Connection(
        base_url=f"{url}/sap/opu/odata/sap",
        credentials=BasicCredentials(USER, password),
        timeout_s=timeout,
        retry=RetryPolicy(max_attempts=4),
    )
    config = SapConfig(
        connection,
        company_code="1710",
        purchasing_organization="1710",
        purchasing_group="001",
        plant="1710",
        sap_client="100",
    )
    return SapConnector(config, options=HttpOptions(sleep=sleeps.append))


def test_push_deep_inserts_the_order_with_csrf_token_and_session_cookie(sap_server: Server) -> None:
    state, url = sap_server
    connector = connect(url, [])
    external_id = connector.push_purchase_order(order())
    connector.close()

    assert external_id == "4500000001"
    assert list(state.orders) == ["4500000001"]
    assert state.csrf_fetches == 1
    assert state.csrf_rejections == 0
    posted = state.posts[0]
    assert posted["CorrespncExternalReference"] == "PO-000042"
    assert (posted["CompanyCode"], posted["PurchasingOrganization"]) == ("1710", "1710")
    items = posted["to_PurchaseOrderItem"]["results"]
    assert [i["PurchaseOrderItem"] for i in items] == ["10", "20"]
    # OData v2 JSON carries Edm.Decimal as strings: exact, never floats.
    assert [(i["OrderQuantity"], i["NetPriceAmount"]) for i in items] == [
        ("5", "12.50"),
        ("2.5", "3.125"),
    ]
    assert items[1]["ScheduleLineDeliveryDate"] == "/Date(1773964800000)/"


def test_a_second_push_finds_the_order_instead_of_creating_another(sap_server: Server) -> None:
    state, url = sap_server
    connector = connect(url, [])
    first = connector.push_purchase_order(order())
    second = connector.push_purchase_order(order())
    connector.close()

    assert first == second
    assert len(state.orders) == 1
    assert len(state.posts) == 1


def test_a_create_that_times_out_after_landing_is_found_not_repeated(sap_server: Server) -> None:
    state, url = sap_server
    state.knobs.hold_next_create = True
    connector = connect(url, [], timeout=0.5)
    try:
        external_id = connector.push_purchase_order(order())
    finally:
        state.knobs.release.set()
        connector.close()

    assert list(state.orders) == [external_id]
    assert len(state.posts) == 1


def test_an_expired_csrf_token_is_fetched_again_once(sap_server: Server) -> None:
    state, url = sap_server
    connector = connect(url, [])
    connector.push_purchase_order(order("PO-000001"))
    state.expire_sessions()
    connector.push_purchase_order(order("PO-000002"))
    connector.close()

    assert len(state.orders) == 2
    assert state.csrf_rejections == 1
    assert state.csrf_fetches == 2


def test_a_validation_error_surfaces_sap_s_message_as_permanent(sap_server: Server) -> None:
    state, url = sap_server
    connector = connect(url, [])
    with pytest.raises(ErpValidationError) as caught:
        connector.push_purchase_order(order(vendor="99999"))
    connector.close()

    error = caught.value
    assert error.status == 400
    assert error.code == "ME/083"
    assert error.message == "Supplier 99999 does not exist"
    assert not error.retryable
    assert state.orders == {}


def test_429_is_waited_out_for_as_long_as_retry_after_says(sap_server: Server) -> None:
    state, url = sap_server
    state.knobs.rate_limited = 1
    state.knobs.retry_after = "7"
    sleeps: list[float] = []
    connector = connect(url, sleeps)
    external_id = connector.push_purchase_order(order())
    connector.close()

    assert sleeps == [7.0]
    assert list(state.orders) == [external_id]


def test_wrong_credentials_are_a_permanent_auth_error(sap_server: Server) -> None:
    _, url = sap_server
    connector = connect(url, [], password="wrong-password")
    with pytest.raises(ErpAuthError):
        connector.push_purchase_order(order())
    connector.close()


def test_the_order_number_must_fit_sap_s_reference_field(sap_server: Server) -> None:
    _, url = sap_server
    connector = connect(url, [])
    with pytest.raises(ValueError, match="12-character"):
        connector.push_purchase_order(order("PO-0000000000042"))
    connector.close()


def test_status_pull_returns_only_changes_after_the_watermark_over_pages(
    sap_server: Server,
) -> None:
    state, url = sap_server
    stamps = [T0 + dt.timedelta(hours=n) for n in range(6)]
    numbers = [state.add_order(f"PO-00000{n}", stamp) for n, stamp in enumerate(stamps)]
    state.orders[numbers[3]]["PurchasingDocumentDeletionCode"] = "L"
    state.orders[numbers[4]]["items"] = [
        {"PurchaseOrderItem": "10", "IsCompletelyDelivered": True},
        {"PurchaseOrderItem": "20", "IsCompletelyDelivered": False},
    ]
    state.orders[numbers[5]]["PurchasingProcessingStatus"] = "03"
    sleeps: list[float] = []
    state.knobs.unavailable = 1  # a 503 on the first read is retried
    connector = connect(url, sleeps)
    changes = connector.pull_changes(stamps[1])

    assert [s.external_id for s in changes.statuses] == numbers[2:]
    assert [s.po_number for s in changes.statuses] == [
        "PO-000002",
        "PO-000003",
        "PO-000004",
        "PO-000005",
    ]
    assert [s.status for s in changes.statuses] == [
        ErpOrderStatus.OPEN,
        ErpOrderStatus.CANCELLED,
        ErpOrderStatus.PARTIALLY_RECEIVED,
        ErpOrderStatus.IN_APPROVAL,
    ]
    assert changes.watermark == stamps[5]
    assert len(sleeps) == 1
    # Four results at two a page: the connector followed __next.
    pages = [p for m, p in state.knobs.requests if p.endswith("A_PurchaseOrder") and m == "GET"]
    assert len(pages) == 1 + 2

    again = connector.pull_changes(changes.watermark)
    connector.close()
    assert again.empty
    assert again.watermark == changes.watermark


def test_receipts_vendors_and_items_are_pulled_incrementally(sap_server: Server) -> None:
    state, url = sap_server
    state.material_documents += [
        material_document("5000000001", T0, [("4500000007", "10", "5", "101")]),
        material_document(
            "5000000002",
            T0 + dt.timedelta(hours=2),
            [("4500000007", "10", "2", "101"), ("", "", "9", "201")],
        ),
        material_document(
            "5000000003", T0 + dt.timedelta(hours=3), [("4500000007", "20", "1.5", "102")]
        ),
    ]
    state.partners += [
        {
            "_changed": T0 - dt.timedelta(days=1),
            "BusinessPartner": "17300001",
            "BusinessPartnerFullName": "Old Supplier",
            "to_Supplier": {"Supplier": "17300001", "SupplierName": "Old Supplier"},
        },
        {
            "_changed": T0 + dt.timedelta(hours=1),
            "BusinessPartner": "17300002",
            "BusinessPartnerFullName": "Seal Works GmbH",
            "to_Supplier": {
                "Supplier": "17300002",
                "SupplierName": "Seal Works GmbH",
                "PurchasingIsBlocked": True,
            },
        },
        {
            "_changed": T0 + dt.timedelta(hours=1),
            "BusinessPartner": "10100001",
            "BusinessPartnerFullName": "A customer, not a supplier",
            "to_Supplier": None,
        },
    ]
    state.products += [
        {
            "_changed": T0 + dt.timedelta(minutes=30),
            "Product": "BRG-1",
            "BaseUnit": "EA",
            "to_Description": {
                "results": [
                    {"Language": "DE", "ProductDescription": "Kugellager 6205"},
                    {"Language": "EN", "ProductDescription": "Ball bearing 6205"},
                ]
            },
        },
        {"_changed": T0 - dt.timedelta(hours=1), "Product": "OLD", "BaseUnit": "EA"},
    ]
    connector = connect(url, [])
    changes = connector.pull_changes(T0 + dt.timedelta(minutes=1))
    connector.close()

    assert [(r.receipt_id, r.line_no, r.quantity) for r in changes.receipts] == [
        ("2026/5000000002/1", 1, Decimal("2")),
        ("2026/5000000003/1", 2, Decimal("-1.5")),
    ]
    assert {r.erp_order_number for r in changes.receipts} == {"4500000007"}
    assert changes.receipts[0].received_on == dt.date(2026, 3, 2)
    assert [(v.number, v.name, v.blocked) for v in changes.vendors] == [
        ("17300002", "Seal Works GmbH", True)
    ]
    assert [(i.number, i.description, i.unit) for i in changes.items] == [
        ("BRG-1", "Ball bearing 6205", "EA")
    ]
    assert changes.watermark == T0 + dt.timedelta(hours=3)
