"""Shipment tracking: carrier payloads and signatures, out-of-order scans, late detection once,
ETA notes for waiting work orders, delivery confirmations that wait for receiving."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from maintainpro.core.inventory import StockLevel
from maintainpro.core.work_orders import WorkOrderNote
from maintainpro.supply.carrier_webhooks import (
    PayloadError,
    read_report,
    sign_aftership,
    sign_easypost,
    sign_generic,
    signature_valid,
)
from maintainpro.supply.receiving import receive
from maintainpro.supply.shipments import ShipmentStatus
from maintainpro.supply.shipping import record_carrier_event
from maintainpro.supply.tracking import (
    DELIVERED_TOPIC,
    EXCEPTION_TOPIC,
    LATE_TOPIC,
    apply_carrier_report,
    check_shipments,
    delivery_variance,
    eta_for_work_order,
    pending_receipts,
)
from maintainpro.supply.tracking_records import CarrierDeadLetter
from supply.procurement_world import World
from supply.tracking_world import TRACKING, events, waiting_work_order

SECRET = "carrier-shared-secret-for-tests"


def iso(moment: dt.datetime) -> str:
    """An ISO timestamp with Z, as carriers write it."""
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def generic(tracking: str, *events_: tuple[str, dt.datetime], **extra: object) -> dict[str, object]:
    """A generic webhook body."""
    return {
        "tracking_number": tracking,
        "carrier": "UPS",
        "events": [
            {"status": s, "occurred_at": iso(t), "location": "Memphis, TN"} for s, t in events_
        ],
        **extra,
    }


def notes(world: World, wo_id: int, prefix: str) -> list[str]:
    """Bodies of a work order's notes starting with a prefix."""
    return [
        n.body
        for n in world.db.scalars(
            select(WorkOrderNote)
            .where(WorkOrderNote.work_order_id == wo_id)
            .order_by(WorkOrderNote.id)
        )
        if n.body.startswith(prefix)
    ]


# --- pure: signatures and payload shapes ---------------------------------------------------


def test_each_signature_scheme_verifies_and_a_tampered_body_does_not() -> None:
    body = json.dumps(
        generic(TRACKING, ("in_transit", dt.datetime(2026, 1, 1, tzinfo=dt.UTC)))
    ).encode()
    for header, value in (
        ("X-MaintainPro-Signature", sign_generic(SECRET, body)),
        ("X-Hmac-Signature", sign_easypost(SECRET, body)),
        ("aftership-hmac-sha256", sign_aftership(SECRET, body)),
    ):
        assert signature_valid(SECRET, body, {header: value}), header
        assert not signature_valid(SECRET, body + b" ", {header: value}), header
        assert not signature_valid("another-secret", body, {header: value}), header
        assert not signature_valid("", body, {header: value}), header
    assert not signature_valid(SECRET, body, {})
    assert not signature_valid(SECRET, body, {"X-MaintainPro-Signature": "sha256=zz"})
    assert not signature_valid(SECRET, body, {"aftership-hmac-sha256": "%%%not base64"})


def test_the_three_payload_shapes_normalise_to_the_same_states() -> None:
    at = "2026-11-20T08:00:00Z"
    easypost = {
        "object": "Event",
        "description": "tracker.updated",
        "result": {
            "object": "Tracker",
            "tracking_code": "EZ1000000001",
            "carrier": "USPS",
            "status": "out_for_delivery",
            "est_delivery_date": "2026-11-21T17:00:00Z",
            "tracking_details": [
                {"status": "pre_transit", "datetime": at, "message": "Label created"},
                {
                    "status": "out_for_delivery",
                    "datetime": "2026-11-21T06:10:00-05:00",
                    "tracking_location": {"city": "Memphis", "state": "TN", "country": "US"},
                },
                {"status": "available_for_pickup", "datetime": "2026-11-21T18:00:00Z"},
            ],
        },
    }
    report = read_report(easypost)
    assert (report.format, report.tracking_number, report.carrier) == (
        "easypost",
        "EZ1000000001",
        "USPS",
    )
    assert [s.status for s in report.scans] == [
        ShipmentStatus.INFO_RECEIVED,
        ShipmentStatus.OUT_FOR_DELIVERY,
        ShipmentStatus.EXCEPTION,
    ]
    assert report.scans[1].occurred_at == dt.datetime(2026, 11, 21, 11, 10, tzinfo=dt.UTC)
    assert report.scans[1].location == "Memphis, TN, US"
    assert report.estimated_delivery == dt.datetime(2026, 11, 21, 17, 0, tzinfo=dt.UTC)

    aftership = {
        "event": "tracking_update",
        "msg": {
            "tracking_number": "AS123",
            "slug": "dhl",
            "tag": "Delivered",
            "checkpoints": [
                {"checkpoint_time": at, "tag": "InTransit", "location": "Leipzig"},
                {"checkpoint_time": "2026-11-22T09:00:00+01:00", "tag": "Delivered"},
                {"checkpoint_time": "2026-11-22T10:00:00", "tag": "Delivered"},
                {"checkpoint_time": at, "tag": "Teleported"},
            ],
        },
    }
    report = read_report(aftership)
    assert [(s.status, s.raw_code) for s in report.scans] == [
        (ShipmentStatus.IN_TRANSIT, "InTransit"),
        (ShipmentStatus.DELIVERED, "Delivered"),
    ]
    assert report.problems == (
        "event 3: a timestamp has no UTC offset",
        "event 4: unknown status code Teleported",
    )

    report = read_report(generic("G1", ("IN_TRANSIT", dt.datetime(2026, 11, 20, tzinfo=dt.UTC))))
    assert [s.status for s in report.scans] == [ShipmentStatus.IN_TRANSIT]
    for hostile in (None, [], {"events": []}, {"tracking_number": "", "events": []}):
        with pytest.raises(PayloadError):
            read_report(hostile)


# --- carrier reports on stored shipments ----------------------------------------------------


def test_reports_out_of_order_never_move_a_shipment_back(world: World) -> None:
    waiting = waiting_work_order(world)
    shipment = waiting.shipment
    assert shipment is not None
    t = waiting.now - dt.timedelta(hours=10)
    delivered = read_report(generic(TRACKING, ("delivered", t + dt.timedelta(hours=8))))
    older = read_report(
        generic(TRACKING, ("in_transit", t), ("out_for_delivery", t + dt.timedelta(hours=6)))
    )
    first = apply_carrier_report(world.db, delivered, "{}", waiting.now)
    late = apply_carrier_report(world.db, older, "{}", waiting.now)
    again = apply_carrier_report(world.db, older, "{}", waiting.now)

    assert (first.recorded, late.recorded, again.recorded, again.duplicates) == (1, 2, 0, 2)
    assert shipment.status is ShipmentStatus.DELIVERED
    assert shipment.delivered_at == t + dt.timedelta(hours=8)
    assert [e.status for e in shipment.events] == [
        ShipmentStatus.DELIVERED,
        ShipmentStatus.IN_TRANSIT,
        ShipmentStatus.OUT_FOR_DELIVERY,
    ]
    assert all(e.location == "Memphis, TN" for e in shipment.events)
    variance = delivery_variance(shipment)
    assert variance is not None
    assert variance < dt.timedelta(0)  # came before the expected delivery


def test_an_unknown_tracking_number_goes_to_the_dead_letters(world: World) -> None:
    waiting = waiting_work_order(world)
    report = read_report(generic("NOPE123", ("in_transit", waiting.now)))
    outcome = apply_carrier_report(world.db, report, '{"raw": true}', waiting.now)
    assert (outcome.shipment_ids, outcome.recorded, outcome.reason) == (
        [],
        0,
        "unknown tracking number",
    )
    letter = world.db.get(CarrierDeadLetter, outcome.dead_letter_id)
    assert letter is not None
    assert (letter.tracking_number, letter.format, letter.payload) == (
        "NOPE123",
        "generic",
        '{"raw": true}',
    )
    assert waiting.shipment is not None
    assert waiting.shipment.events == []


def test_a_carrier_estimate_moves_the_eta_and_the_work_order_hears_each_new_one(
    world: World,
) -> None:
    waiting = waiting_work_order(world)
    wo = waiting.work_order
    first = check_shipments(world.db, waiting.now)
    assert first.noted_work_orders == [wo.id]
    (note,) = notes(world, wo.id, "Parts on the way")
    assert "4 x BRG-1 (PO-000001 line 1)" in note
    assert "shipment ASN-1 (UPS 1Z999AA10123456784)" in note
    expected = waiting.now + dt.timedelta(days=2)
    assert expected.strftime("%Y-%m-%d %H:%M UTC") in note

    assert check_shipments(world.db, waiting.now).noted_work_orders == []  # same ETA: no note

    later = waiting.now + dt.timedelta(days=4)
    report = read_report(
        generic(TRACKING, ("in_transit", waiting.now), estimated_delivery=iso(later))
    )
    apply_carrier_report(world.db, report, "{}", waiting.now)
    assert len(notes(world, wo.id, "Parts on the way")) == 2
    assert later.strftime("%Y-%m-%d %H:%M UTC") in notes(world, wo.id, "Parts on the way")[1]

    eta = eta_for_work_order(world.db, wo.id, waiting.now)
    assert eta is not None
    (line,) = eta.lines
    assert (line.eta, line.eta_source, line.shipment_number, line.carrier) == (
        later,
        "carrier",
        "ASN-1",
        "UPS",
    )
    assert (line.outstanding, line.shipment_status, line.late) == (
        Decimal(4),
        ShipmentStatus.IN_TRANSIT,
        False,
    )
    assert eta.eta == line.eta
    assert eta_for_work_order(world.db, wo.id + 1000) is None


def test_without_a_shipment_the_eta_is_the_need_date(world: World) -> None:
    waiting = waiting_work_order(world, ship=False)
    eta = eta_for_work_order(world.db, waiting.work_order.id, waiting.now)
    assert eta is not None
    (line,) = eta.lines
    need_by = waiting.order.lines[0].need_by
    assert need_by is not None
    assert (line.eta_source, line.eta, line.shipment_id) == (
        "need_by",
        dt.datetime.combine(need_by, dt.time(0), tzinfo=dt.UTC),
        None,
    )
    waiting.order.lines[0].promised_date = need_by + dt.timedelta(days=3)
    (line,) = eta_for_work_order(world.db, waiting.work_order.id, waiting.now).lines  # type: ignore[union-attr]
    assert line.eta_source == "promised"


def test_a_late_shipment_is_announced_once(world: World) -> None:
    waiting = waiting_work_order(world, expected_in=dt.timedelta(hours=5))
    assert check_shipments(world.db, waiting.now).late == []
    later = waiting.now + dt.timedelta(hours=8)
    first = check_shipments(world.db, later)
    second = check_shipments(world.db, later + dt.timedelta(hours=1))
    assert first.late == [waiting.shipment.id]  # type: ignore[union-attr]
    assert second.late == []
    (event,) = events(world, LATE_TOPIC)
    payload = event.payload
    assert payload["shipment_number"] == "ASN-1"
    assert payload["purchase_order_number"] == "PO-000001"
    assert payload["work_order_ids"] == [waiting.work_order.id]
    assert payload["severity"] == "major"  # a work order waits
    assert "is late" in payload["title"]
    assert payload["reason"].startswith("no delivery 3 h after the expected delivery")


def test_a_delivered_shipment_is_never_late_and_is_announced_once_for_receiving(
    world: World,
) -> None:
    waiting = waiting_work_order(world, expected_in=dt.timedelta(hours=1))
    shipment = waiting.shipment
    assert shipment is not None
    stock = world.db.get(StockLevel, world.ids["stock"])
    assert stock is not None
    on_hand = stock.on_hand
    record_carrier_event(
        world.db, shipment, ShipmentStatus.DELIVERED, waiting.now + dt.timedelta(minutes=30)
    )
    later = waiting.now + dt.timedelta(hours=5)
    first = check_shipments(world.db, later)
    check_shipments(world.db, later)
    assert first.late == []
    assert events(world, LATE_TOPIC) == []
    (event,) = events(world, DELIVERED_TOPIC)
    assert event.payload["severity"] == "info"
    assert event.payload["delivered_at"] == (waiting.now + dt.timedelta(minutes=30)).isoformat()
    assert first.noted_work_orders == [waiting.work_order.id]
    (note,) = notes(world, waiting.work_order.id, "Parts delivered")
    assert "waiting to be booked at receiving" in note
    # Nothing was booked: stock and the order line are as they were.
    world.db.refresh(stock)
    assert stock.on_hand == on_hand
    assert waiting.order.lines[0].received_quantity == 0
    (suggestion,) = pending_receipts(world.db)
    assert (suggestion.shipment_id, suggestion.purchase_order_number) == (shipment.id, "PO-000001")
    assert [(s.line_no, s.shipped, s.suggested) for s in suggestion.lines] == [
        (1, Decimal(4), Decimal(4))
    ]
    receive(world.db, waiting.order.lines[0], quantity=Decimal(4), received_at=later)
    assert pending_receipts(world.db) == []


def test_each_exception_scan_is_announced_once(world: World) -> None:
    waiting = waiting_work_order(world)
    t = waiting.now - dt.timedelta(hours=3)
    report = read_report(
        {
            "msg": {
                "tracking_number": TRACKING,
                "slug": "ups",
                "checkpoints": [
                    {"checkpoint_time": iso(t), "tag": "AttemptFail", "message": "Closed"}
                ],
            }
        }
    )
    apply_carrier_report(world.db, report, "{}", waiting.now)
    apply_carrier_report(world.db, report, "{}", waiting.now)
    check_shipments(world.db, waiting.now)
    (event,) = events(world, EXCEPTION_TOPIC)
    assert event.payload["severity"] == "major"
    assert "(AttemptFail)" in event.payload["reason"]
    assert event.payload["reason"].endswith(": Closed")
    assert waiting.shipment is not None
    assert waiting.shipment.status is ShipmentStatus.EXCEPTION
    recovered = read_report(generic(TRACKING, ("in_transit", t + dt.timedelta(hours=1))))
    apply_carrier_report(world.db, recovered, "{}", waiting.now)
    assert waiting.shipment.status is ShipmentStatus.IN_TRANSIT
    assert world.db.scalar(select(func.count()).select_from(CarrierDeadLetter)) == 0
