"""The error queue: failed documents applied again from the archived raw after a fix."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select

from maintainpro.supply.edi.archive import DocumentStatus, EdiInterchange, InterchangeStatus
from maintainpro.supply.edi.inbound import receive_interchanges
from maintainpro.supply.edi.order_ack_out import order_ack_content
from maintainpro.supply.edi.partners import TradingPartner
from maintainpro.supply.edi.reprocess import ReprocessError, reprocess_document, reprocess_failed
from maintainpro.supply.edi.ship_notice_out import ship_notice_content
from maintainpro.supply.purchasing import PoStatus
from maintainpro.supply.shipments import Shipment
from supply.edi.edi_world import (
    acknowledgement,
    edi_supplier,
    from_partner,
    sent_order,
    ship_notice,
    trading_partner,
)
from supply.procurement_world import World

MISSING = 4711  # the order the supplier quotes before we have it


@pytest.fixture
def partner(world: World) -> TradingPartner:
    """ACME."""
    return trading_partner(world.db, edi_supplier(world))


def _failed_notice(world: World, partner: TradingPartner) -> EdiInterchange:
    raw = from_partner(
        partner, ship_notice_content(ship_notice("ASN-5", f"PO-{MISSING:06d}", ("1", "10")))
    )
    (result,) = receive_interchanges(world.db, raw)
    assert result.interchange.status is InterchangeStatus.FAILED
    return result.interchange


def test_reprocessing_after_the_missing_order_exists_applies_it(
    world: World, partner: TradingPartner
) -> None:
    row = _failed_notice(world, partner)
    (document,) = row.documents
    assert (
        document.errors[0]["message"] == f"no purchase order 'PO-{MISSING:06d}' for supplier ACME"
    )
    # Still missing: it fails again, with the attempt counted.
    reprocess_document(world.db, document)
    assert (document.status, document.attempts) == (DocumentStatus.FAILED, 2)
    order = sent_order(world, partner.supplier, order_id=MISSING)
    reprocess_document(world.db, document)
    assert (document.status, document.attempts, document.errors) == (DocumentStatus.APPLIED, 3, [])
    assert document.purchase_order_id == order.id
    assert row.status is InterchangeStatus.APPLIED
    shipment = world.db.scalars(select(Shipment)).one()
    assert (shipment.shipment_number, shipment.purchase_order_id) == ("ASN-5", order.id)
    assert order.status is PoStatus.SHIPPED


def test_only_failed_documents_are_reprocessed(world: World, partner: TradingPartner) -> None:
    order = sent_order(world, partner.supplier)
    raw = from_partner(
        partner, order_ack_content(acknowledgement(order.number, ("1", "IA", "10", "9.00")))
    )
    (result,) = receive_interchanges(world.db, raw)
    (document,) = result.interchange.documents
    assert document.status is DocumentStatus.APPLIED
    with pytest.raises(ReprocessError, match="only failed documents"):
        reprocess_document(world.db, document)
    assert document.attempts == 1


def test_a_partly_applied_interchange_completes(world: World, partner: TradingPartner) -> None:
    order = sent_order(world, partner.supplier, [("BRG-1", "10", "9.00"), ("SEAL-2", "5", "1")])
    raw = from_partner(
        partner,
        ship_notice_content(ship_notice("ASN-1", order.number, ("1", "10"))),
        # Line 9 is on no order of ours: that set fails, the other one applies.
        ship_notice_content(ship_notice("ASN-2", order.number, ("9", "5"))),
    )
    (result,) = receive_interchanges(world.db, raw)
    row = result.interchange
    assert row.status is InterchangeStatus.PARTIALLY_APPLIED
    assert "856 item line 9 matches no line" in row.documents[1].errors[0]["message"]
    assert reprocess_failed(world.db, partner_id=partner.id) == [row.documents[1]]
    assert row.documents[1].status is DocumentStatus.FAILED
    assert order.lines[0].shipped_quantity == Decimal(10)
