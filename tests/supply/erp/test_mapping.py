"""From a stored purchase order to the ERP document, and a stored order pushed to a local SAP."""

from __future__ import annotations

from decimal import Decimal

import pytest

from maintainpro.supply.erp.auth import BasicCredentials
from maintainpro.supply.erp.http import Connection
from maintainpro.supply.erp.mapping import erp_purchase_order
from maintainpro.supply.erp.sap import SapConfig, SapConnector
from maintainpro.supply.erp.service import erp_order_sender, push_stored_order
from maintainpro.supply.purchasing import PurchaseOrder
from maintainpro.supply.requisitions import manual_requisition
from maintainpro.supply.sourcing import generate_purchase_orders
from supply.erp.fake_sap import SapState
from supply.erp.fakes import PASSWORD, USER
from supply.procurement_world import TODAY, World


def _order(world: World) -> PurchaseOrder:
    acme = world.supplier("17300001", "USD")
    world.item(acme, [("1", "9.125")])
    manual_requisition(world.db, part_id=world.ids["part"], quantity=Decimal("12"))
    result = generate_purchase_orders(world.db, base_currency="USD", fx=world.fx(), today=TODAY)
    order = result.orders[0]
    world.db.flush()
    return order


def test_a_stored_order_maps_to_the_erp_document(world: World) -> None:
    order = _order(world)
    document = erp_purchase_order(order)

    assert document.number == order.number
    assert document.vendor_number == "17300001"
    assert document.currency == "USD"
    assert document.order_date == order.created_at.date()
    assert [
        (line.line_no, line.item_number, line.quantity, line.unit_price) for line in document.lines
    ] == [(1, "BRG-1", Decimal("12.000"), Decimal("9.125000"))]
    assert document.lines[0].unit == "EA"

    renamed = erp_purchase_order(
        order, vendor_number="V-ACME", item_numbers={world.ids["part"]: "MAT-4711"}
    )
    assert (renamed.vendor_number, renamed.lines[0].item_number) == ("V-ACME", "MAT-4711")


def test_an_order_without_lines_cannot_be_sent(world: World) -> None:
    order = _order(world)
    order.lines.clear()
    with pytest.raises(ValueError, match="has no lines"):
        erp_purchase_order(order)


def test_a_stored_order_pushed_twice_is_one_sap_order(
    world: World, sap_server: tuple[SapState, str]
) -> None:
    state, url = sap_server
    order = _order(world)
    connection = Connection(
        base_url=f"{url}/sap/opu/odata/sap", credentials=BasicCredentials(USER, PASSWORD)
    )
    config = SapConfig(
        connection,
        company_code="1710",
        purchasing_organization="1710",
        purchasing_group="001",
        plant="1710",
    )
    connector = SapConnector(config)
    first = push_stored_order(world.db, order.id, connector)
    second = push_stored_order(world.db, order.id, connector)
    connector.close()

    assert first == second
    assert [o["CorrespncExternalReference"] for o in state.orders.values()] == [order.number]
    item = state.posts[0]["to_PurchaseOrderItem"]["results"][0]
    assert Decimal(item["NetPriceAmount"]) == Decimal("9.125")
    with pytest.raises(LookupError):
        push_stored_order(world.db, order.id + 1000, connector)


def test_the_dispatch_sender_pushes_with_the_erp_s_vendor_number(
    world: World, sap_server: tuple[SapState, str]
) -> None:
    state, url = sap_server
    order = _order(world)
    state.suppliers["17300099"] = "ACME in SAP"
    connection = Connection(
        base_url=f"{url}/sap/opu/odata/sap", credentials=BasicCredentials(USER, PASSWORD)
    )
    config = SapConfig(
        connection,
        company_code="1710",
        purchasing_organization="1710",
        purchasing_group="001",
        plant="1710",
    )
    connector = SapConnector(config)
    send = erp_order_sender(connector, vendor_numbers={"17300001": "17300099"})
    note = send(world.db, order, "purchase_order.sent")
    connector.close()

    (external_id,) = state.orders
    assert note == f"in sap as {external_id}"
    assert state.orders[external_id]["Supplier"] == "17300099"
