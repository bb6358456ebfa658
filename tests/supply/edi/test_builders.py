"""Round trips of the 855/856/810/214 builders: reader(builder(x)) == x, through the wire."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal

import pytest

from maintainpro.supply.edi.carrier_status_out import carrier_status_content
from maintainpro.supply.edi.common import (
    AllowanceCharge,
    Amount,
    CarrierRouting,
    DateReference,
    Party,
    ProductId,
    Reference,
)
from maintainpro.supply.edi.envelope import (
    EnvelopeSettings,
    PartyId,
    TransactionContent,
    build_interchange,
    sequential_control_numbers,
)
from maintainpro.supply.edi.invoice_out import invoice_content
from maintainpro.supply.edi.order_ack_out import order_ack_content
from maintainpro.supply.edi.ship_notice_out import ship_notice_content
from maintainpro.supply.edi.transactions import (
    AcknowledgedLine,
    CarrierStatus,
    Invoice,
    InvoiceLine,
    LineAcknowledgement,
    LineSchedule,
    PurchaseOrderAcknowledgement,
    Shipment,
    ShipNotice,
    ShippedItem,
    ShippedOrder,
    ShippedPack,
    StatusEvent,
    read_documents,
    read_transaction,
)
from maintainpro.supply.edi.x12 import parse_interchange, serialize_interchange

SETTINGS = EnvelopeSettings(PartyId("ZZ", "SUPPLIER"), PartyId("ZZ", "MAINTAINPRO"))
DAY = dt.date(2026, 11, 28)
PARTY = Party(
    "ST",
    "Plant One",
    "92",
    "P1",
    ("Receiving",),
    ("1 Mill Road", "Gate 3"),
    "Springfield",
    "IL",
    "62701",
    "US",
)

ACK = PurchaseOrderAcknowledgement(
    purpose="00",
    acknowledgement_type="AC",
    po_number="PO-000042",
    po_date=DAY,
    request_reference="REQ-1",
    seller_order_number="SO-9",
    acknowledgement_date=DAY + dt.timedelta(days=1),
    currency="EUR",
    references=(Reference("ZZ", "ORDER PROCESSED"),),
    parties=(PARTY,),
    lines=(
        AcknowledgedLine(
            line_number="1",
            quantity=Decimal("10"),
            unit="EA",
            unit_price=Decimal("9.5"),
            product_ids=(ProductId("BP", "BRG-1"), ProductId("VP", "S-BRG-1")),
            descriptions=("Bearing",),
            acknowledgements=(
                LineAcknowledgement("IA", Decimal("10"), "EA", "068", DAY + dt.timedelta(days=9)),
            ),
            schedules=(LineSchedule(Decimal("10"), "EA", "002", DAY + dt.timedelta(days=10)),),
        ),
        AcknowledgedLine(
            line_number="2",
            quantity=None,
            unit="",
            unit_price=None,
            product_ids=(),
            descriptions=(),
            acknowledgements=(LineAcknowledgement("IR"),),
            schedules=(),
        ),
    ),
    line_count=2,
)

ITEM = ShippedItem(
    hl_id="4",
    line_number="1",
    product_ids=(ProductId("BP", "BRG-1"),),
    quantity_shipped=Decimal("6"),
    unit="EA",
    quantity_ordered=Decimal("10"),
    descriptions=("Bearing",),
)
LOOSE = ShippedItem("5", "2", (ProductId("VP", "S-2"),), Decimal("1.5"), "KG", None, ())
NOTICE = ShipNotice(
    purpose="00",
    shipment_id="ASN-77",
    notice_date=DAY,
    notice_time=dt.time(14, 5),
    dates=(DateReference("011", DAY, dt.time(13, 0)),),
    shipments=(
        Shipment(
            hl_id="1",
            carrier=CarrierRouting("B", "2", "UPSN", "M", "UPS GROUND"),
            tracking_numbers=("1Z1", "1Z2"),
            bill_of_lading="BOL-5",
            references=(
                Reference("CN", "1Z1"),
                Reference("CN", "1Z2"),
                Reference("BM", "BOL-5"),
                Reference("PK", "PL-1"),
            ),
            dates=(DateReference("017", DAY + dt.timedelta(days=2)),),
            parties=(PARTY,),
            packaging_code="CTN25",
            lading_quantity=2,
            gross_weight=Decimal("12.5"),
            weight_unit="LB",
            orders=(
                ShippedOrder(
                    hl_id="2",
                    po_number="PO-000042",
                    release_number="R1",
                    references=(Reference("IV", "INV-1"),),
                    parties=(),
                    packs=(ShippedPack("3", "P", ("00012345678901234567",), (ITEM,)),),
                    items=(ITEM, LOOSE),
                ),
            ),
        ),
    ),
    level_count=5,
)

INVOICE = Invoice(
    invoice_number="INV-9",
    invoice_date=DAY,
    po_number="PO-000042",
    po_date=DAY - dt.timedelta(days=3),
    transaction_type="DI",
    currency="USD",
    references=(Reference("VN", "SO-9"),),
    dates=(DateReference("003", DAY, dt.time(10, 59, 20)),),
    parties=(PARTY,),
    lines=(
        InvoiceLine(
            line_number="1",
            quantity=Decimal("2"),
            unit="EA",
            unit_price=Decimal("99.99"),
            price_basis="",
            product_ids=(ProductId("VP", "ID001"),),
            descriptions=("Power Cord",),
            charges=(AllowanceCharge("C", "G830", Decimal("3.00")),),
            parties=(Party("SF", "Philadelphia"),),
        ),
    ),
    total_amount=Decimal("365.96"),
    amounts=(Amount("1", Decimal("359.96")),),
    charges=(
        AllowanceCharge("C", "G830", Decimal("6.00")),
        AllowanceCharge("C", "H850", Decimal(0), None, "no tax"),
    ),
    line_count=1,
)

STATUS = CarrierStatus(
    reference="1751807",
    shipment_id="75027674",
    scac="SCAC",
    references=(Reference("BM", "BOL-5"),),
    parties=(Party("CN", "Plant One"),),
    events=(
        StatusEvent("AF", "NS", "", "", DAY, dt.time(8, 15), "ET", "MEMPHIS", "TN", "US", "", ""),
        StatusEvent(
            "D1", "NS", "", "", DAY, dt.time(12, 30), "LT", "BRATTLEBORO", "VT", "", "SCAC", "30402"
        ),
    ),
)


def _over_the_wire(content: TransactionContent) -> object:
    interchange = build_interchange(
        [content], SETTINGS, sequential_control_numbers(), dt.datetime(2026, 11, 28, 9)
    )
    parsed = parse_interchange(serialize_interchange(interchange, line_break="\r\n"))
    assert parsed.ok, [str(p) for p in parsed.problems]
    (document,) = read_documents(parsed.interchange)
    return document


@pytest.mark.parametrize(
    ("document", "builder", "set_id"),
    [
        (ACK, order_ack_content, "855"),
        (NOTICE, ship_notice_content, "856"),
        (INVOICE, invoice_content, "810"),
        (STATUS, carrier_status_content, "214"),
    ],
    ids=["855", "856", "810", "214"],
)
def test_reader_of_builder_is_identity(
    document: object, builder: Callable[[object], TransactionContent], set_id: str
) -> None:
    content = builder(document)
    assert content.set_id == set_id
    assert _over_the_wire(content) == document


def test_856_writes_the_hierarchy_with_parents() -> None:
    content = ship_notice_content(NOTICE)
    levels = [s.elements for s in content.segments if s.tag == "HL"]
    assert levels == [
        ("1", "", "S"),
        ("2", "1", "O"),
        ("3", "2", "P"),
        ("4", "3", "I"),
        ("5", "2", "I"),
    ]


def test_810_total_is_written_with_implied_decimals() -> None:
    content = invoice_content(INVOICE)
    (tds,) = [s for s in content.segments if s.tag == "TDS"]
    assert tds.elements == ("36596",)


def test_855_without_optional_parts_round_trips() -> None:
    bare = PurchaseOrderAcknowledgement(
        "00", "AD", "PO-1", None, "", "", None, None, (), (), (), None
    )
    transaction_set = next(
        parse_interchange(
            serialize_interchange(
                build_interchange(
                    [order_ack_content(bare)],
                    SETTINGS,
                    sequential_control_numbers(),
                    dt.datetime(2026, 1, 1),
                )
            )
        ).interchange.transaction_sets()
    )
    assert read_transaction(transaction_set) == bare
