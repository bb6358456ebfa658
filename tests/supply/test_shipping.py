"""Ship notices and carrier events: quantities, duplicates, order status, out-of-order events."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from maintainpro.supply.acknowledgements import LineAck, acknowledge_order
from maintainpro.supply.purchasing import LineAckStatus, PoStatus, PoTransitionError
from maintainpro.supply.receiving import receive
from maintainpro.supply.shipments import DocumentSource, Shipment, ShipmentStatus
from maintainpro.supply.shipping import (
    DuplicateShipment,
    ShipmentError,
    ShipNotice,
    ShipNoticeLine,
    record_carrier_event,
    record_shipment,
)
from supply.lifecycle_world import build_order
from supply.procurement_world import World

SHIPPED = dt.datetime(2026, 11, 29, 7, 30, tzinfo=dt.UTC)
ETA = SHIPPED + dt.timedelta(days=2)


def _notice(number: str, *lines: tuple[int, str], **fields: object) -> ShipNotice:
    values: dict[str, object] = {
        "shipment_number": number,
        "lines": [ShipNoticeLine(n, Decimal(q)) for n, q in lines],
        "shipped_at": SHIPPED,
        "carrier_scac": "UPSN",
        "carrier_name": "UPS",
        "tracking_number": "1Z999AA10123456784",
        "expected_delivery": ETA,
        "source": DocumentSource.EDI,
    }
    values.update(fields)
    return ShipNotice(**values)  # type: ignore[arg-type]


def test_partial_then_complete_shipment(world: World) -> None:
    order = build_order(world, [("10", "9.00"), ("4", "2.00")])
    first = record_shipment(world.db, order, _notice("ASN-1", (1, "6"), (2, "4")))
    assert first.created
    shipment = first.shipment
    assert order.status is PoStatus.PARTIALLY_SHIPPED
    assert [line.shipped_quantity for line in order.lines] == [Decimal(6), Decimal(4)]
    assert (shipment.carrier_scac, shipment.tracking_number, shipment.expected_delivery) == (
        "UPSN",
        "1Z999AA10123456784",
        ETA,
    )
    assert (shipment.status, shipment.source, shipment.supplier_id) == (
        ShipmentStatus.INFO_RECEIVED,
        DocumentSource.EDI,
        order.supplier_id,
    )
    assert [(item.line.line_no, item.quantity) for item in shipment.lines] == [
        (1, Decimal(6)),
        (2, Decimal(4)),
    ]
    record_shipment(world.db, order, _notice("ASN-2", (1, "4")))
    assert order.status is PoStatus.SHIPPED
    assert [h.to_status for h in order.history][-2:] == [
        PoStatus.PARTIALLY_SHIPPED,
        PoStatus.SHIPPED,
    ]
    assert order.history[-1].note == "ship notice ASN-2"


def test_the_same_notice_again_is_the_same_shipment_another_is_refused(world: World) -> None:
    order = build_order(world, [("10", "9.00")])
    first = record_shipment(world.db, order, _notice("ASN-7", (1, "3")))
    again = record_shipment(world.db, order, _notice("ASN-7", (1, "3.000")))
    assert not again.created
    assert again.shipment is first.shipment
    assert order.lines[0].shipped_quantity == Decimal(3)
    with pytest.raises(DuplicateShipment, match="different ship notice"):
        record_shipment(world.db, order, _notice("ASN-7", (1, "4")))
    with pytest.raises(DuplicateShipment):
        record_shipment(world.db, order, _notice("ASN-7", (1, "3"), tracking_number="OTHER"))
    # The number is the supplier's own: another supplier may use it too.
    other = build_order(world, [("2", "1.00")], code="OTHER")
    assert record_shipment(world.db, other, _notice("ASN-7", (1, "2"))).created
    assert world.db.scalar(select(func.count()).select_from(Shipment)) == 2


def test_more_than_ordered_plus_tolerance_is_refused(world: World) -> None:
    order = build_order(world, [("10", "9.00")])
    record_shipment(world.db, order, _notice("A", (1, "8")))
    with pytest.raises(ShipmentError, match="8 of 10 already shipped, 3 more exceeds"):
        record_shipment(world.db, order, _notice("B", (1, "3")))
    assert order.lines[0].shipped_quantity == Decimal(8)
    record_shipment(world.db, order, _notice("B", (1, "3")), tolerance_pct=Decimal(10))
    assert order.lines[0].shipped_quantity == Decimal(11)
    assert order.status is PoStatus.SHIPPED


@pytest.mark.parametrize(
    ("notice", "message"),
    [
        (_notice("X", (3, "1")), "line 3 is not on PO-"),
        (_notice("X", (1, "-1")), "quantity must be positive"),
        (_notice("X", (1, "1"), (1, "2")), "line 1 appears twice"),
        (_notice("X"), "at least one line"),
        (_notice(" ", (1, "1")), "shipment number"),
        (_notice("X", (1, "1"), shipped_at=dt.datetime(2026, 11, 29, 7, 30)), "aware"),
        (_notice("X", (1, "1"), expected_delivery=SHIPPED - dt.timedelta(hours=1)), "before"),
    ],
)
def test_bad_notices_are_refused(world: World, notice: ShipNotice, message: str) -> None:
    order = build_order(world, [("10", "9.00")])
    with pytest.raises(ShipmentError, match=message):
        record_shipment(world.db, order, notice)
    assert order.lines[0].shipped_quantity == 0
    assert order.status is PoStatus.SENT


def test_an_order_not_sent_takes_no_notice(world: World) -> None:
    order = build_order(world, send=False)
    with pytest.raises(PoTransitionError, match="cannot take a ship notice"):
        record_shipment(world.db, order, _notice("A", (1, "1")))


def test_a_rejected_line_is_not_waited_for(world: World) -> None:
    order = build_order(world, [("10", "9.00"), ("4", "2.00")])
    acknowledge_order(
        world.db,
        order,
        [LineAck(1, LineAckStatus.ACCEPTED), LineAck(2, LineAckStatus.REJECTED, note="gone")],
    )
    with pytest.raises(ShipmentError, match="line 2 is no longer on order"):
        record_shipment(world.db, order, _notice("A", (2, "1")))
    record_shipment(world.db, order, _notice("A", (1, "10")))
    assert order.status is PoStatus.SHIPPED


def test_an_order_receiving_goods_keeps_its_receipt_status(world: World) -> None:
    order = build_order(world, [("10", "9.00")])
    receive(world.db, order.lines[0], quantity=Decimal(2), received_at=SHIPPED)
    record_shipment(world.db, order, _notice("LATE-1", (1, "10")))
    assert order.status is PoStatus.PARTIALLY_RECEIVED
    assert order.lines[0].shipped_quantity == Decimal(10)


def test_carrier_events_out_of_order_never_move_the_status_back(world: World) -> None:
    order = build_order(world, [("10", "9.00")])
    shipment = record_shipment(world.db, order, _notice("A", (1, "10"))).shipment
    picked = SHIPPED + dt.timedelta(hours=2)
    delivered = SHIPPED + dt.timedelta(days=1, hours=3)
    record_carrier_event(world.db, shipment, ShipmentStatus.IN_TRANSIT, picked, raw_code="X3")
    assert (shipment.status, shipment.delivered_at) == (ShipmentStatus.IN_TRANSIT, None)
    record_carrier_event(
        world.db,
        shipment,
        ShipmentStatus.DELIVERED,
        delivered,
        location="Plant gate",
        raw_code="D1",
    )
    assert (shipment.status, shipment.delivered_at) == (ShipmentStatus.DELIVERED, delivered)
    # A scan from the morning arrives after the delivery report: kept, but the status stays.
    late = record_carrier_event(
        world.db,
        shipment,
        ShipmentStatus.OUT_FOR_DELIVERY,
        delivered - dt.timedelta(hours=4),
        raw_code="OD",
    )
    assert late.id is not None
    assert (shipment.status, shipment.delivered_at) == (ShipmentStatus.DELIVERED, delivered)
    # The same report twice is stored once.
    again = record_carrier_event(
        world.db,
        shipment,
        ShipmentStatus.DELIVERED,
        delivered,
        location="Plant gate",
        raw_code="D1",
    )
    assert again.status is ShipmentStatus.DELIVERED
    assert len(shipment.events) == 3
    # A later exception (damage found at the dock) is the newest news.
    record_carrier_event(
        world.db, shipment, ShipmentStatus.EXCEPTION, delivered + dt.timedelta(hours=1)
    )
    assert (shipment.status, shipment.delivered_at) == (ShipmentStatus.EXCEPTION, delivered)
    world.db.flush()
    world.db.expire_all()
    assert [e.status for e in shipment.events] == [
        ShipmentStatus.IN_TRANSIT,
        ShipmentStatus.DELIVERED,
        ShipmentStatus.OUT_FOR_DELIVERY,
        ShipmentStatus.EXCEPTION,
    ]
    with pytest.raises(ShipmentError, match="aware"):
        record_carrier_event(world.db, shipment, ShipmentStatus.DELIVERED, dt.datetime(2026, 12, 1))
