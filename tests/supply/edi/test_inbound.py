"""Inbound X12: real samples and built documents archived, applied, refused, acknowledged."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal

import pytest
from sqlalchemy import select

from maintainpro.supply.catalogs import CatalogItem, PriceBreak
from maintainpro.supply.edi.acks import ACK_REJECTED_TOPIC
from maintainpro.supply.edi.archive import (
    AckState,
    Direction,
    DocumentStatus,
    EdiDocument,
    EdiInterchange,
    InterchangeStatus,
)
from maintainpro.supply.edi.carrier_status_out import carrier_status_content
from maintainpro.supply.edi.envelope import TransactionContent
from maintainpro.supply.edi.functional_ack import AckStatus, read_functional_ack
from maintainpro.supply.edi.inbound import InboundResult, receive_interchanges
from maintainpro.supply.edi.invoice_out import invoice_content
from maintainpro.supply.edi.model import Segment
from maintainpro.supply.edi.order_ack_out import order_ack_content
from maintainpro.supply.edi.outbound import OUTBOUND_TOPIC
from maintainpro.supply.edi.partners import TradingPartner
from maintainpro.supply.edi.ship_notice_out import ship_notice_content
from maintainpro.supply.edi.x12 import parse_interchange
from maintainpro.supply.invoices import InvoiceStatus, SupplierInvoice
from maintainpro.supply.purchasing import LineAckStatus, PoStatus, PurchaseOrder
from maintainpro.supply.shipments import DocumentSource, Shipment, ShipmentStatus
from maintainpro.supply.shipping import ShipNotice, ShipNoticeLine, record_shipment
from supply.edi.edi_world import (
    acknowledgement,
    carrier_status,
    counts,
    edi_supplier,
    events,
    from_partner,
    invoice,
    part_id,
    sent_order,
    ship_notice,
    trading_partner,
)
from supply.procurement_world import TODAY, World

Loader = Callable[[str], bytes]


def _receive(world: World, raw: bytes) -> InboundResult:
    (result,) = receive_interchanges(world.db, raw, transport="sftp", transport_ref="in.x12")
    world.db.flush()
    return result


def _statuses(row: EdiInterchange) -> list[DocumentStatus]:
    return [d.status for d in row.documents]


def _reasons(row: EdiInterchange | EdiDocument) -> str:
    return " | ".join(str(e.get("message")) for e in row.errors)


def _acks(result: InboundResult) -> list[tuple[str, AckStatus, list[AckStatus], tuple[str, ...]]]:
    """What our 997 answered: per group (AK102, AK9, AK5s, AK9 codes), parsed from the wire."""
    assert result.acknowledgement is not None
    parsed = parse_interchange(result.acknowledgement.raw)
    assert parsed.ok
    answers = []
    for transaction_set in parsed.interchange.transaction_sets():
        ack = read_functional_ack(transaction_set)
        answers.append(
            (ack.group_control_number, ack.status, [s.status for s in ack.sets], ack.error_codes)
        )
    return answers


# --- the real samples --------------------------------------------------------------------------


def _sample_partner(world: World, name: str, code: str) -> TradingPartner:
    parsed = parse_interchange(SAMPLE_BYTES[name]).interchange
    supplier = edi_supplier(world, code)
    return trading_partner(
        world.db,
        supplier,
        sender=(parsed.sender_qualifier, parsed.sender_id),
        receiver=(parsed.receiver_qualifier, parsed.receiver_id),
        usage=parsed.usage_indicator,
    )


SAMPLE_BYTES: dict[str, bytes] = {}


@pytest.fixture(autouse=True)
def _samples(sample: Loader) -> None:
    for name in (
        "edinet_214.edi",
        "edinet_810a.edi",
        "edinet_832.edi",
        "edinet_850.edi",
        "gregarican_856.edi",
        "node-x12_850.edi",
        "node-x12_855.edi",
        "oop_856_tilde.edi",
        "staedi_997.edi",
    ):
        SAMPLE_BYTES[name] = sample(name)


def test_sample_856_applies_to_the_order_it_names(world: World) -> None:
    partner = _sample_partner(world, "oop_856_tilde.edi", "ESSAR")
    # PRF01 "123456" is our PO-123456; LIN CB (buyer's catalogue number) names our parts.
    order = sent_order(
        world,
        partner.supplier,
        [("1234-123456", "16", "2.00"), ("1234-654321", "23", "1.50"), ("1234-223456", "16", "3")],
        order_id=123456,
    )
    result = _receive(world, SAMPLE_BYTES["oop_856_tilde.edi"])
    row = result.interchange
    assert (row.status, _statuses(row)) == (InterchangeStatus.APPLIED, [DocumentStatus.APPLIED])
    document = row.documents[0]
    assert (document.reference, document.purchase_order_id, document.attempts) == (
        "123456",
        order.id,
        1,
    )
    assert document.parsed is not None
    assert document.parsed["shipment_id"] == "123456"
    shipment = world.db.scalars(select(Shipment)).one()
    assert (shipment.shipment_number, shipment.source) == ("123456", DocumentSource.EDI)
    assert shipment.shipped_at == dt.datetime(2001, 4, 20, 14, 21, tzinfo=dt.UTC)
    assert shipment.expected_delivery == dt.datetime(2001, 4, 22, 8, 0, tzinfo=dt.UTC)
    assert [line.shipped_quantity for line in order.lines] == [16, 23, 16]
    assert order.status is PoStatus.SHIPPED
    assert _acks(result) == [("1", AckStatus.ACCEPTED, [AckStatus.ACCEPTED], ())]


def test_sample_214_marks_the_shipment_delivered(world: World) -> None:
    partner = _sample_partner(world, "edinet_214.edi", "CATALYST")
    order = sent_order(world, partner.supplier)
    notice = ShipNotice(
        "ASN-1",
        [ShipNoticeLine(1, Decimal(10))],
        dt.datetime(2016, 7, 25, 8, tzinfo=dt.UTC),
        carrier_scac="SCAC",
        tracking_number="1751807",
    )
    shipment = record_shipment(world.db, order, notice).shipment
    result = _receive(world, SAMPLE_BYTES["edinet_214.edi"])
    assert result.interchange.status is InterchangeStatus.APPLIED
    assert shipment.status is ShipmentStatus.DELIVERED
    # AT7*D1*NS***20160726*1230*LT: local time, and the partner keeps no zone: UTC.
    assert shipment.delivered_at == dt.datetime(2016, 7, 26, 12, 30, tzinfo=dt.UTC)
    (event,) = shipment.events
    assert (event.raw_code, event.location, event.source) == (
        "D1",
        "BRATTLEBORO, VT",
        DocumentSource.EDI,
    )
    assert result.interchange.documents[0].purchase_order_id == order.id


def test_sample_997_answers_the_group_we_sent(world: World) -> None:
    partner = _sample_partner(world, "staedi_997.edi", "CLAIMS")
    sent = EdiInterchange(
        partner_id=partner.id,
        direction=Direction.OUTBOUND,
        control_number=1,
        raw=b"ISA...",
        status=InterchangeStatus.SENT,
        ack_state=AckState.PENDING,
        documents=[
            EdiDocument(
                set_id="837", group_control=1, set_control="0021", status=DocumentStatus.SENT
            )
        ],
    )
    world.db.add(sent)
    world.db.flush()
    result = _receive(world, SAMPLE_BYTES["staedi_997.edi"])
    assert result.interchange.status is InterchangeStatus.APPLIED
    assert result.acknowledgement is None  # 997s are not acknowledged
    assert sent.ack_state is AckState.REJECTED
    assert "AK5 R, error codes 5" in _reasons(sent.documents[0])
    (alert,) = events(world.db, ACK_REJECTED_TOPIC)
    assert (alert["interchange_id"], alert["rejected_sets"]) == (sent.id, ["0021"])


@pytest.mark.parametrize(
    ("name", "po_number"),
    [
        ("node-x12_855.edi", "POTEST1112"),
        ("gregarican_856.edi", "SO/VINCE1"),
        ("edinet_810a.edi", "DO091003"),
    ],
)
def test_samples_without_our_order_wait_in_the_error_queue(
    world: World, name: str, po_number: str
) -> None:
    partner = _sample_partner(world, name, "SAMPLE")
    before = counts(world.db)
    result = _receive(world, SAMPLE_BYTES[name])
    row = result.interchange
    assert (row.status, _statuses(row)) == (InterchangeStatus.FAILED, [DocumentStatus.FAILED])
    assert _reasons(row.documents[0]) == (
        f"no purchase order {po_number!r} for supplier {partner.supplier.code}"
    )
    assert row.documents[0].parsed is not None  # archived in its parsed form all the same
    assert counts(world.db) == before
    # The 997 is about syntax: the group was fine, so it is accepted.
    assert [a[1] for a in _acks(result)] == [AckStatus.ACCEPTED]


def test_sample_850_is_archived_but_not_for_us_to_receive(world: World) -> None:
    _sample_partner(world, "node-x12_850.edi", "RETAIL")
    result = _receive(world, SAMPLE_BYTES["node-x12_850.edi"])
    row = result.interchange
    assert (row.status, _statuses(row)) == (InterchangeStatus.RECEIVED, [DocumentStatus.IGNORED])
    assert "document we send, not receive" in _reasons(row.documents[0])
    assert row.documents[0].reference == "08292233294"


def test_sample_832_with_a_wrong_segment_count_is_rejected_and_answered(world: World) -> None:
    _sample_partner(world, "edinet_832.edi", "BOOKS")
    before = counts(world.db)
    result = _receive(world, SAMPLE_BYTES["edinet_832.edi"])
    row = result.interchange
    assert (row.status, _statuses(row)) == (InterchangeStatus.REJECTED, [DocumentStatus.IGNORED])
    assert "SE01 declares 17 segments but 12 found" in _reasons(row.documents[0])
    assert counts(world.db) == before
    # AK5 R code 4 (number of included segments does not match actual count), AK9 R.
    assert _acks(result) == [("1", AckStatus.REJECTED, [AckStatus.REJECTED], ())]
    ack = read_functional_ack(
        next(parse_interchange(result.acknowledgement.raw).interchange.transaction_sets())  # type: ignore[union-attr]
    )
    assert ack.sets[0].error_codes == ("4",)


def test_sample_850_with_a_broken_envelope_is_rejected_without_a_997(world: World) -> None:
    partner = _sample_partner(world, "edinet_850.edi", "BROKEN")
    result = _receive(world, SAMPLE_BYTES["edinet_850.edi"])
    row = result.interchange
    assert (row.status, row.documents, result.acknowledgement) == (
        InterchangeStatus.REJECTED,
        [],
        None,
    )
    assert row.partner_id == partner.id
    assert [e["code"] for e in row.errors] == ["interchange_control_mismatch"]
    assert row.raw == SAMPLE_BYTES["edinet_850.edi"]


def test_every_sample_is_archived_raw(world: World) -> None:
    for number, (name, raw) in enumerate(sorted(SAMPLE_BYTES.items())):
        _sample_partner(world, name, f"S{number}")
        (result,) = receive_interchanges(world.db, raw)
        assert result.interchange.raw.strip() == raw.strip()
        assert result.interchange.direction is Direction.INBOUND
        assert result.interchange.partner_id is not None
    world.db.flush()
    stored = world.db.scalars(
        select(EdiInterchange).where(EdiInterchange.direction == Direction.INBOUND)
    ).all()
    assert len(stored) == len(SAMPLE_BYTES)


# --- documents we build, applied -----------------------------------------------------------


@pytest.fixture
def partner(world: World) -> TradingPartner:
    """ACME, an EDI supplier sending as ZZ/ACMEEDI."""
    return trading_partner(world.db, edi_supplier(world))


def test_855_accepts_changes_and_rejects_lines(world: World, partner: TradingPartner) -> None:
    order = sent_order(
        world,
        partner.supplier,
        [("BRG-1", "10", "9.00"), ("SEAL-2", "4", "2.00"), ("V-3", "1", "5")],
    )
    ack = acknowledgement(
        order.number, ("1", "IA", "10", "9.00"), ("2", "IQ", "3", "2.00"), ("3", "IR", "1", "5")
    )
    result = _receive(world, from_partner(partner, order_ack_content(ack)))
    assert result.interchange.status is InterchangeStatus.APPLIED
    assert order.status is PoStatus.ACKNOWLEDGED
    assert [line.ack_status for line in order.lines] == [
        LineAckStatus.ACCEPTED,
        LineAckStatus.CHANGED,
        LineAckStatus.REJECTED,
    ]
    assert order.lines[1].quantity == Decimal(3)
    assert order.lines[0].promised_date == TODAY + dt.timedelta(days=12)
    assert any(h.note.endswith("EDI 855 AC, supplier order SO-77") for h in order.history)


def test_856_records_shipment_number_carrier_and_tracking(
    world: World, partner: TradingPartner
) -> None:
    order = sent_order(world, partner.supplier, [("BRG-1", "10", "9.00"), ("SEAL-2", "4", "2")])
    notice = ship_notice("ASN-900", order.number, ("1", "6"), ("2", "4"))
    result = _receive(world, from_partner(partner, ship_notice_content(notice)))
    assert result.interchange.status is InterchangeStatus.APPLIED
    shipment = world.db.scalars(select(Shipment)).one()
    assert (shipment.shipment_number, shipment.carrier_scac, shipment.tracking_number) == (
        "ASN-900",
        "UPSN",
        "1Z999AA10123456784",
    )
    assert shipment.carrier_name == "UPS GROUND"
    assert shipment.shipped_at == dt.datetime.combine(TODAY, dt.time(7, 30), tzinfo=dt.UTC)
    assert order.status is PoStatus.PARTIALLY_SHIPPED


def test_214_codes_are_normalised_and_unknown_ones_reported(
    world: World, partner: TradingPartner
) -> None:
    order = sent_order(world, partner.supplier)
    _receive(
        world,
        from_partner(partner, ship_notice_content(ship_notice("A1", order.number, ("1", "10")))),
    )
    day = TODAY + dt.timedelta(days=1)
    status = carrier_status(
        "1Z999AA10123456784",
        ("AF", day, dt.time(8, 0), "ET"),
        ("OO", day, dt.time(9, 0), "UT"),
        ("ZZ", day, dt.time(9, 30), "UT"),
        ("AG", day + dt.timedelta(days=1), None, ""),
    )
    result = _receive(world, from_partner(partner, carrier_status_content(status), control=2))
    document = result.interchange.documents[0]
    assert document.status is DocumentStatus.APPLIED
    assert "AT7 status code 'ZZ' is not in the mapping table" in _reasons(document)
    shipment = world.db.scalars(select(Shipment)).one()
    assert [(e.raw_code, e.status) for e in shipment.events] == [
        ("AF", ShipmentStatus.IN_TRANSIT),
        ("OO", ShipmentStatus.OUT_FOR_DELIVERY),
    ]
    # 08:00 Eastern (November: UTC-5) is 13:00 UTC, after the 09:00 UTC out-for-delivery scan.
    assert shipment.events[0].occurred_at == dt.datetime.combine(day, dt.time(13), tzinfo=dt.UTC)
    assert shipment.status is ShipmentStatus.IN_TRANSIT
    assert shipment.expected_delivery == dt.datetime.combine(
        day + dt.timedelta(days=1), dt.time(0), tzinfo=dt.UTC
    )


def test_810_total_reads_implied_decimals_and_matches(
    world: World, partner: TradingPartner
) -> None:
    order = sent_order(world, partner.supplier, [("BRG-1", "10", "9.00")])
    bill = invoice("INV-1", order.number, ("1", "10", "9.00"), total="90.00")
    result = _receive(world, from_partner(partner, invoice_content(bill)))
    assert result.interchange.status is InterchangeStatus.APPLIED
    assert b"TDS*9000~" in result.interchange.raw
    stored = world.db.scalars(select(SupplierInvoice)).one()
    assert (stored.invoice_number, stored.total, stored.source) == (
        "INV-1",
        Decimal("90.00"),
        DocumentSource.EDI,
    )
    # Nothing received yet: the three-way match keeps it as an exception, but it is recorded.
    assert stored.status is InvoiceStatus.EXCEPTION
    assert stored.purchase_order_id == order.id


def test_a_failing_set_does_not_stop_the_others(world: World, partner: TradingPartner) -> None:
    order = sent_order(world, partner.supplier)
    good = ship_notice("ASN-1", order.number, ("1", "10"))
    bad = ship_notice("ASN-2", "PO-999999", ("1", "1"))
    result = _receive(
        world, from_partner(partner, ship_notice_content(bad), ship_notice_content(good))
    )
    row = result.interchange
    assert row.status is InterchangeStatus.PARTIALLY_APPLIED
    assert _statuses(row) == [DocumentStatus.FAILED, DocumentStatus.APPLIED]
    assert "no purchase order 'PO-999999'" in _reasons(row.documents[0])
    assert world.db.scalars(select(Shipment.shipment_number)).all() == ["ASN-1"]


def test_a_997_answers_each_group_received(world: World, partner: TradingPartner) -> None:
    order = sent_order(world, partner.supplier)
    raw = from_partner(
        partner,
        order_ack_content(acknowledgement(order.number, ("1", "IA", "10", "9.00"))),
        ship_notice_content(ship_notice("ASN-1", order.number, ("1", "10"))),
    )
    result = _receive(world, raw)
    assert _statuses(result.interchange) == [DocumentStatus.APPLIED, DocumentStatus.APPLIED]
    # Two groups (PR and SH) received: one 997 each, in one interchange to the partner.
    assert _acks(result) == [
        ("1", AckStatus.ACCEPTED, [AckStatus.ACCEPTED], ()),
        ("2", AckStatus.ACCEPTED, [AckStatus.ACCEPTED], ()),
    ]
    ack = result.acknowledgement
    assert ack is not None
    assert (ack.direction, ack.partner_id, ack.status, ack.ack_state) == (
        Direction.OUTBOUND,
        partner.id,
        InterchangeStatus.QUEUED,
        AckState.NOT_REQUESTED,
    )
    header = parse_interchange(ack.raw).interchange
    assert (header.sender_id, header.receiver_id) == ("MAINTAINPRO", "ACMEEDI")
    assert [e["interchange_id"] for e in events(world.db, OUTBOUND_TOPIC)] == [ack.id]


def test_two_interchanges_in_one_payload_are_both_received(
    world: World, partner: TradingPartner
) -> None:
    order = sent_order(world, partner.supplier)
    first = from_partner(partner, ship_notice_content(ship_notice("A1", order.number, ("1", "4"))))
    second = from_partner(
        partner, ship_notice_content(ship_notice("A2", order.number, ("1", "6"))), control=2
    )
    results = receive_interchanges(world.db, first + second)
    assert [r.interchange.status for r in results] == [InterchangeStatus.APPLIED] * 2
    assert [r.interchange.control_number for r in results] == [1, 2]
    assert order.status is PoStatus.SHIPPED


# --- hostile input -----------------------------------------------------------------------------


def _applied_nothing(world: World, before: dict[str, int], order: PurchaseOrder) -> None:
    world.db.flush()
    assert counts(world.db) == before
    assert order.status is PoStatus.SENT
    assert all(line.ack_status is LineAckStatus.PENDING for line in order.lines)


def _with(raw: bytes, old: bytes, new: bytes) -> bytes:
    assert old in raw
    return raw.replace(old, new, 1)


@pytest.fixture
def acme_order(world: World, partner: TradingPartner) -> PurchaseOrder:
    """A sent order to ACME."""
    return sent_order(world, partner.supplier)


def _ack_raw(partner: TradingPartner, order: PurchaseOrder, control: int = 1) -> bytes:
    ack = acknowledgement(order.number, ("1", "IA", "10", "9.00"))
    return from_partner(partner, order_ack_content(ack), control=control)


def test_a_truncated_interchange_is_rejected_and_archived(
    world: World, partner: TradingPartner, acme_order: PurchaseOrder
) -> None:
    before = counts(world.db)
    raw = _ack_raw(partner, acme_order)
    truncated = raw[: raw.index(b"CTT")]
    result = _receive(world, truncated)
    row = result.interchange
    assert (row.status, row.partner_id, row.raw) == (
        InterchangeStatus.REJECTED,
        partner.id,
        truncated,
    )
    assert row.errors[0]["code"] == "syntax"
    assert "truncated" in row.errors[0]["message"]
    assert (row.documents, result.acknowledgement) == ([], None)
    _applied_nothing(world, before, acme_order)


@pytest.mark.parametrize(
    ("old", "new", "code", "ack"),
    [
        (b"IEA*1*", b"IEA*2*", "group_count_mismatch", None),
        (b"IEA*1*000000001", b"IEA*1*000000009", "interchange_control_mismatch", None),
        (b"GE*1*1", b"GE*2*1", "set_count_mismatch", ("R", "5")),
        (b"\nSE*", b"\nSE*9", "segment_count_mismatch", ("R", "4")),
    ],
)
def test_wrong_counts_and_control_numbers_are_rejected(
    world: World,
    partner: TradingPartner,
    acme_order: PurchaseOrder,
    old: bytes,
    new: bytes,
    code: str,
    ack: tuple[str, str] | None,
) -> None:
    before = counts(world.db)
    result = _receive(world, _with(_ack_raw(partner, acme_order), old, new))
    row = result.interchange
    assert row.status is InterchangeStatus.REJECTED
    found = [e["code"] for e in row.errors] + [e["code"] for d in row.documents for e in d.errors]
    assert code in found
    if ack is None:
        assert result.acknowledgement is None  # an ISA/IEA problem would be a TA1
    else:
        ((_, status, _, group_codes),) = _acks(result)
        parsed = read_functional_ack(
            next(parse_interchange(result.acknowledgement.raw).interchange.transaction_sets())  # type: ignore[union-attr]
        )
        assert status.value == ack[0]
        assert ack[1] in group_codes + parsed.sets[0].error_codes
    _applied_nothing(world, before, acme_order)


def test_an_unknown_partner_is_rejected(
    world: World, partner: TradingPartner, acme_order: PurchaseOrder
) -> None:
    before = counts(world.db)
    raw = _with(_ack_raw(partner, acme_order), b"ACMEEDI".ljust(15), b"MALLORY".ljust(15))
    result = _receive(world, raw)
    row = result.interchange
    assert (row.status, row.partner_id, row.sender_id) == (
        InterchangeStatus.REJECTED,
        None,
        "MALLORY",
    )
    assert row.errors[0]["code"] == "unknown_partner"
    assert "no trading partner is set up for sender ZZ/MALLORY" in row.errors[0]["message"]
    assert (row.documents, result.acknowledgement) == ([], None)
    _applied_nothing(world, before, acme_order)


def test_a_repeated_interchange_is_a_duplicate(
    world: World, partner: TradingPartner, acme_order: PurchaseOrder
) -> None:
    raw = from_partner(
        partner, ship_notice_content(ship_notice("A1", acme_order.number, ("1", "4")))
    )
    first = _receive(world, raw)
    before = counts(world.db)
    again = _receive(world, raw)
    row = again.interchange
    assert (row.status, row.control_number, row.documents) == (
        InterchangeStatus.DUPLICATE,
        None,
        [],
    )
    assert row.errors[0]["original_interchange_id"] == first.interchange.id
    assert "000000001 from ACME was already received" in row.errors[0]["message"]
    assert again.acknowledgement is None
    assert counts(world.db) == before
    assert acme_order.lines[0].shipped_quantity == Decimal(4)


def test_test_data_from_a_production_partner_is_rejected(
    world: World, partner: TradingPartner, acme_order: PurchaseOrder
) -> None:
    before = counts(world.db)
    result = _receive(world, from_partner(partner, _content(acme_order), usage="T"))
    assert result.interchange.status is InterchangeStatus.REJECTED
    assert result.interchange.errors[0]["code"] == "usage_indicator"
    _applied_nothing(world, before, acme_order)


def _content(order: PurchaseOrder) -> TransactionContent:
    return order_ack_content(acknowledgement(order.number, ("1", "IA", "10", "9.00")))


def test_an_order_of_another_supplier_is_not_found(world: World, partner: TradingPartner) -> None:
    other = sent_order(world, edi_supplier(world, "OTHER"))
    result = _receive(world, from_partner(partner, _content(other)))
    assert _reasons(result.interchange.documents[0]) == (
        f"no purchase order {other.number!r} for supplier ACME"
    )
    assert other.status is PoStatus.SENT


@pytest.mark.parametrize(
    "raw",
    [b"", b"hello world", b"ISA*00*", "ISA*\u00e9*".encode(), b"\x00\xff" * 40],
)
def test_garbage_is_rejected_with_a_reason(world: World, raw: bytes) -> None:
    result = _receive(world, raw)
    row = result.interchange
    assert (row.status, row.partner_id, row.raw) == (InterchangeStatus.REJECTED, None, raw)
    assert row.errors[0]["code"] == "syntax"
    assert row.errors[0]["message"]


def test_a_segment_that_is_not_x12_rejects_its_set(
    world: World, partner: TradingPartner, acme_order: PurchaseOrder
) -> None:
    before = counts(world.db)
    result = _receive(world, _with(_ack_raw(partner, acme_order), b"\nCTT*", b"\nc-t*"))
    (document,) = result.interchange.documents
    assert document.status is DocumentStatus.IGNORED
    assert "invalid_segment_id" in [e["code"] for e in document.errors]
    assert [a[1] for a in _acks(result)] == [AckStatus.REJECTED]
    _applied_nothing(world, before, acme_order)


def test_the_partner_only_sends_what_was_agreed(world: World, acme_order: PurchaseOrder) -> None:
    partner = world.db.scalars(select(TradingPartner)).one()
    partner.documents = ["850", "856", "997"]
    result = _receive(world, from_partner(partner, _content(acme_order)))
    assert _statuses(result.interchange) == [DocumentStatus.IGNORED]
    assert "not set up to send 855" in _reasons(result.interchange.documents[0])
    assert acme_order.status is PoStatus.SENT


def test_a_set_failing_half_way_leaves_nothing_behind(
    world: World, partner: TradingPartner, acme_order: PurchaseOrder
) -> None:
    notice = ship_notice("ASN-7", acme_order.number, ("1", "4"))
    shipment = notice.shipments[0]
    # A second order level naming an order we do not have: the first one's shipment was
    # already recorded when this fails, and the savepoint takes it back.
    item = replace(shipment.orders[0].items[0], hl_id="10")
    stranger = replace(shipment.orders[0], hl_id="9", po_number="PO-999999", items=(item,))
    notice = replace(notice, shipments=(replace(shipment, orders=(shipment.orders[0], stranger)),))
    before = counts(world.db)
    result = _receive(world, from_partner(partner, ship_notice_content(notice)))
    assert _statuses(result.interchange) == [DocumentStatus.FAILED]
    assert "no purchase order 'PO-999999'" in _reasons(result.interchange.documents[0])
    world.db.expire_all()
    assert counts(world.db) == before
    assert acme_order.lines[0].shipped_quantity == 0


def _catalog(*items: tuple[str, str, str]) -> TransactionContent:
    """An 832 price schedule: items are (supplier part, our part, unit price)."""
    segments = [Segment.of("BCT", "PS", "CAT-2026")]
    for number, (theirs, ours, price) in enumerate(items, start=1):
        segments += [
            Segment.of("LIN", str(number), "VP", theirs, "BP", ours),
            Segment.of("PID", "F", "", "", "", f"item {theirs}"),
            Segment.of("CTP", "", "UCP", price, "1", "EA"),
            Segment.of("CTP", "", "RES", "99", "1", "EA"),
        ]
    segments.append(Segment.of("CTT", str(len(items))))
    return TransactionContent("832", "SC", tuple(segments))


def test_832_updates_the_catalogue_through_the_import_rules(
    world: World, partner: TradingPartner, acme_order: PurchaseOrder
) -> None:
    result = _receive(world, from_partner(partner, _catalog(("S-BRG-1", "BRG-1", "8.50"))))
    assert result.interchange.status is InterchangeStatus.APPLIED
    item = world.db.scalars(
        select(CatalogItem).where(CatalogItem.supplier_part_number == "S-BRG-1")
    ).one()
    world.db.refresh(item)
    # The purchase price (UCP) is taken, the resale price (RES) is not.
    assert [(b.min_quantity, b.unit_price) for b in item.price_breaks] == [
        (Decimal(1), Decimal("8.50"))
    ]
    assert item.description == "item S-BRG-1"


def test_an_832_with_an_unknown_part_changes_nothing(
    world: World, partner: TradingPartner, acme_order: PurchaseOrder
) -> None:
    before = counts(world.db)
    raw = from_partner(
        partner, _catalog(("S-BRG-1", "BRG-1", "7.00"), ("S-NEW", "NO-SUCH-PART", "1.00"))
    )
    result = _receive(world, raw)
    (document,) = result.interchange.documents
    assert document.status is DocumentStatus.FAILED
    assert "LIN 2: part_number: no part 'NO-SUCH-PART'" in _reasons(document)
    assert counts(world.db) == before
    prices = world.db.scalars(select(PriceBreak.unit_price)).all()
    assert Decimal("7.00") not in prices


def _catalog_item(world: World, supplier_id: int, part_number: str, theirs: str) -> None:
    world.db.add(
        CatalogItem(
            supplier_id=supplier_id,
            supplier_part_number=theirs,
            part_id=part_id(world, part_number),
            currency="USD",
        )
    )
    world.db.flush()


def test_sample_855_applies_once_it_quotes_our_order(world: World) -> None:
    partner = _sample_partner(world, "node-x12_855.edi", "MILL")
    order = sent_order(
        world,
        partner.supplier,
        [
            ("DIC-1", "3", "4.5"),
            ("BIO-2", "2", "15.99"),
            ("BOOK-3", "1", "0"),
            ("THES-4", "2", "4.5"),
        ],
    )
    # BAK03 edited to our number; the segment count stays right.
    raw = SAMPLE_BYTES["node-x12_855.edi"].replace(b"POTEST1112", order.number.encode())
    result = _receive(world, raw)
    assert result.interchange.status is InterchangeStatus.APPLIED
    assert [line.ack_status for line in order.lines] == [
        LineAckStatus.ACCEPTED,
        LineAckStatus.REJECTED,
        LineAckStatus.REJECTED,
        LineAckStatus.ACCEPTED,
    ]
    # No date in ACK: the SCH date is the promise.
    assert order.lines[0].promised_date == dt.date(2004, 12, 31)
    assert order.lines[1].ack_note == "rejected by the supplier (EDI 855 ACK IR)"
    assert order.status is PoStatus.ACKNOWLEDGED


def test_sample_856_with_a_upc_maps_through_the_catalogue(world: World) -> None:
    partner = _sample_partner(world, "gregarican_856.edi", "YURMAN")
    _catalog_item(world, partner.supplier_id, "RING-1", "883932284904")
    order = sent_order(world, partner.supplier, [("RING-1", "1", "507.50")])
    raw = SAMPLE_BYTES["gregarican_856.edi"].replace(b"PRF*SO/VINCE1", f"PRF*{order.id}".encode())
    result = _receive(world, raw)
    assert result.interchange.status is InterchangeStatus.APPLIED
    shipment = world.db.scalars(select(Shipment)).one()
    assert (shipment.shipment_number, shipment.carrier_scac, shipment.tracking_number) == (
        "521649209219",
        "FED2",
        "521649209219",
    )
    assert (shipment.carrier_name, shipment.shipped_at) == (
        "FEDX 2 DAY",
        dt.datetime(2012, 5, 10, tzinfo=dt.UTC),
    )
    assert order.status is PoStatus.SHIPPED


def test_sample_810_is_recorded_with_its_charges(world: World) -> None:
    partner = _sample_partner(world, "edinet_810a.edi", "MUSIC")
    order = sent_order(
        world, partner.supplier, [("CORD-1", "2", "99.99"), ("CORD-2", "2", "79.99")]
    )
    raw = SAMPLE_BYTES["edinet_810a.edi"].replace(
        b"*20030910*DO091003***DI", f"*20030910*{order.number}***DI".encode()
    )
    result = _receive(world, raw)
    assert result.interchange.status is InterchangeStatus.APPLIED
    stored = world.db.scalars(select(SupplierInvoice)).one()
    assert (stored.invoice_number, stored.total, stored.tax) == (
        "DO091003TESTINV01",
        Decimal("365.96"),
        Decimal(0),
    )
    assert [
        (line.quantity, line.unit_price, line.purchase_order_line_id) for line in stored.lines
    ] == [
        (Decimal(2), Decimal("99.99"), order.lines[0].id),
        (Decimal(2), Decimal("79.99"), order.lines[1].id),
        (Decimal(1), Decimal("6.00"), None),
    ]
    assert stored.lines[2].description == "other charges (SAC G830)"
    # Nothing received yet: recorded as an exception for the buyer to look at.
    assert stored.status is InvoiceStatus.EXCEPTION
