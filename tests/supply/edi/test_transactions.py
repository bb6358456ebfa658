"""Tests mapping transaction sets to typed documents, on real samples and built documents."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import date, datetime, time
from decimal import Decimal

import pytest

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
from maintainpro.supply.edi.errors import (
    ProblemCode,
    UnsupportedTransactionError,
    X12MappingError,
)
from maintainpro.supply.edi.model import Interchange, Segment, TransactionSet
from maintainpro.supply.edi.transactions import (
    AckStatus,
    CarrierStatus,
    FunctionalAcknowledgement,
    Invoice,
    PriceCatalog,
    PurchaseOrder,
    PurchaseOrderAcknowledgement,
    PurchaseOrderChange,
    PurchaseOrderChangeLine,
    PurchaseOrderLine,
    ShipNotice,
    acknowledge_group,
    functional_ack_content,
    purchase_order_change_content,
    purchase_order_content,
    read_documents,
    read_transaction,
)
from maintainpro.supply.edi.x12 import parse_interchange, serialize_interchange

Loader = Callable[[str], bytes]
CREATED = datetime(2024, 3, 5, 7, 8)
SETTINGS = EnvelopeSettings(PartyId("ZZ", "MAINTAINPRO"), PartyId("ZZ", "SUPPLIER"))


def only_document(data: bytes | str) -> object:
    """Parse an interchange holding exactly one transaction set and map it."""
    (document,) = read_documents(parse_interchange(data).interchange)
    return document


def transaction(set_id: str, *segments: Segment) -> TransactionSet:
    """A transaction set around `segments` (envelope counts do not matter for mapping)."""
    return TransactionSet(Segment("ST", (set_id, "0001")), segments, None)


def through_the_wire(*contents: TransactionContent) -> Interchange:
    """Envelope, serialize and parse back, asserting the envelope is clean."""
    built = build_interchange(contents, SETTINGS, sequential_control_numbers(), CREATED)
    result = parse_interchange(serialize_interchange(built, line_break="\n"))
    assert result.ok, result.problems
    assert result.interchange == built
    return result.interchange


# --- 850 -------------------------------------------------------------------------------


def test_node_x12_850_purchase_order(sample: Loader) -> None:
    """node-x12 850 purchase order."""
    order = only_document(sample("node-x12_850.edi"))
    assert isinstance(order, PurchaseOrder)
    assert order.po_number == "08292233294"
    assert order.order_date == date(2010, 11, 27)
    assert (order.purpose, order.order_type) == ("00", "SA")
    assert Reference("DP", "038") in order.references
    assert order.dates == (DateReference("002", date(2010, 12, 14)),)
    assert order.carrier == CarrierRouting("A", "92", "P3", "", "SEE XYZ RETAIL ROUTING GUIDE")
    assert order.carrier.scac is None
    (ship_to,) = order.parties
    assert (ship_to.entity_code, ship_to.name, ship_to.identifier) == (
        "ST",
        "XYZ RETAIL",
        "0003947268292",
    )
    assert (ship_to.city, ship_to.state, ship_to.postal_code) == ("SOLON", "OH", "44139")
    assert len(order.lines) == 6
    first = order.lines[0]
    assert first.quantity == Decimal("120")
    assert first.unit == "EA"
    assert first.unit_price == Decimal("9.25")
    assert ProductId("VN", "AB3542") in first.product_ids
    assert first.descriptions == ("SMALL WIDGET",)
    assert order.lines[-1].quantity == Decimal("696")
    assert order.lines[-1].unit_price == Decimal("9.55")
    assert order.line_count == 6
    assert order.amounts == (Amount("1", Decimal("13045.94")),)
    # The sender's AMT total agrees with the lines, to the cent and without float error.
    assert sum(line.extended_amount or Decimal(0) for line in order.lines) == Decimal("13045.94")


def test_edinet_850_maps_despite_broken_envelope(sample: Loader) -> None:
    """EDI.Net 850 maps despite broken envelope."""
    result = parse_interchange(sample("edinet_850.edi"))
    assert [p.code for p in result.problems] == [ProblemCode.INTERCHANGE_CONTROL_MISMATCH]
    (order,) = read_documents(result.interchange)
    assert isinstance(order, PurchaseOrder)
    assert order.po_number == "1000012"
    assert order.order_date == date(2009, 8, 27)
    assert order.carrier is not None
    assert order.carrier.routing == "UPSG"
    vendor_part = ProductId("VN", "0054321")
    assert order.lines == (
        PurchaseOrderLine("1", Decimal("1"), "EA", Decimal("19.95"), "", (vendor_part,)),
    )
    assert order.parties[0].postal_code == "11788-1234"


def test_purchase_order_round_trip() -> None:
    """Purchase order round trip."""
    order = PurchaseOrder(
        po_number="MP-2024-0001",
        order_date=date(2024, 3, 5),
        release_number="R1",
        currency="EUR",
        references=(Reference("DP", "MAINT"), Reference("ZZ", "WO-77", "pump overhaul")),
        dates=(DateReference("002", date(2024, 3, 20), time(9, 30)),),
        carrier=CarrierRouting("B", "2", "UPSN", "U", "UPS GROUND"),
        parties=(
            Party(
                "ST",
                "Plant 4",
                "92",
                "P4",
                ("Maintenance stores",),
                ("1 Mill Road", "Gate B"),
                "Leeds",
                "",
                "LS1 4AP",
                "GB",
            ),
            Party("BY", "MaintAInPro Buyer"),
        ),
        lines=(
            PurchaseOrderLine(
                "1",
                Decimal("12"),
                "EA",
                Decimal("3.1415"),
                "PE",
                (ProductId("VP", "BRG-6204"), ProductId("BP", "100-200")),
                ("Bearing 6204-2RS",),
            ),
            PurchaseOrderLine("2", Decimal("0.5"), "KG", None),
        ),
        amounts=(Amount("TT", Decimal("37.70")),),
    )
    content = purchase_order_content(order)
    assert content.set_id == "850"
    interchange = through_the_wire(content)
    (mapped,) = read_documents(interchange)
    assert mapped == replace(order, line_count=2)
    assert order.carrier is not None
    assert order.carrier.scac == "UPSN"


# --- 860 -------------------------------------------------------------------------------


def test_purchase_order_change_round_trip() -> None:
    """Purchase order change round trip."""
    change = PurchaseOrderChange(
        po_number="MP-2024-0001",
        order_date=date(2024, 3, 5),
        change_sequence="2",
        change_date=date(2024, 3, 9),
        references=(Reference("DP", "MAINT"),),
        parties=(Party("ST", "Plant 4", "92", "P4"),),
        lines=(
            PurchaseOrderChangeLine(
                "1",
                "QI",
                Decimal("15"),
                Decimal("15"),
                "EA",
                Decimal("3.1415"),
                "PE",
                (ProductId("VP", "BRG-6204"),),
            ),
            PurchaseOrderChangeLine("2", "DI"),
        ),
        line_count=2,
    )
    content = purchase_order_change_content(change)
    assert (content.set_id, content.functional_id) == ("860", "PC")
    (mapped,) = read_documents(through_the_wire(content))
    assert mapped == change


# --- 855 -------------------------------------------------------------------------------


def test_node_x12_855_acknowledgement(sample: Loader) -> None:
    """node-x12 855 acknowledgement."""
    ack = only_document(sample("node-x12_855.edi"))
    assert isinstance(ack, PurchaseOrderAcknowledgement)
    assert ack.po_number == "POTEST1112"
    assert ack.acknowledgement_type == "AD"
    assert ack.po_date == date(2020, 10, 15)
    assert ack.acknowledgement_date == date(2020, 10, 15)
    assert ack.request_reference == "60169126"
    assert ack.currency == "USD"
    assert [line.line_number for line in ack.lines] == ["1", "2", "3", "4"]
    statuses = [line.acknowledgements[0].status for line in ack.lines]
    assert statuses == ["IA", "IR", "IR", "IA"]
    first = ack.lines[0]
    assert first.acknowledgements[0].accepted
    assert first.acknowledgements[0].quantity == Decimal("3")
    assert first.unit_price == Decimal("4.5")
    assert first.product_ids[0] == ProductId("EN", "9780446360265")
    assert first.schedules[0].date == date(2004, 12, 31)
    rejected = ack.lines[1]
    assert rejected.acknowledgements[0].rejected
    assert rejected.acknowledgements[0].quantity == Decimal("0")
    assert rejected.unit_price == Decimal("15.99")
    assert rejected.schedules[0].date == date(2007, 10, 9)
    assert ack.lines[2].unit_price == Decimal("0")
    assert ack.line_count == 4
    assert ack.parties[0].address_lines == (
        "REGULAR EDI ACCOUNT",
        "ATTN ACQ SERVS",
        "7615 DISALLE BOULEVARD",
    )


# --- 856 -------------------------------------------------------------------------------


def test_gregarican_856_sopi_hierarchy(sample: Loader) -> None:
    """Gregarican 856 S/O/P/I hierarchy."""
    notice = only_document(sample("gregarican_856.edi"))
    assert isinstance(notice, ShipNotice)
    assert notice.shipment_id == "521649209219"
    assert notice.notice_date == date(2012, 5, 15)
    assert notice.notice_time == time(8, 51)
    assert notice.level_count == 4  # CTT appears before the first HL in this file
    (shipment,) = notice.shipments
    assert shipment.carrier is not None
    assert shipment.carrier.scac == "FED2"
    assert shipment.carrier.routing == "FEDX 2 DAY"
    assert shipment.tracking_numbers == ("521649209219",)
    assert shipment.bill_of_lading == "521649209219"
    assert (shipment.packaging_code, shipment.lading_quantity) == ("CTN25", 1)
    assert (shipment.gross_weight, shipment.weight_unit) == (Decimal("1"), "LB")
    assert DateReference("011", date(2012, 5, 10)) in shipment.dates
    assert [p.entity_code for p in shipment.parties] == ["ST", "SF"]
    assert shipment.parties[1].name == "DAVID YURMAN ENTERPR"
    (order,) = shipment.orders
    assert order.po_number == "SO/VINCE1"
    assert Reference("IV", "S1429672") in order.references
    (pack,) = order.packs
    assert (pack.level_code, pack.marks) == ("P", ("00007121610006156802",))
    (item,) = pack.items
    assert order.items == (item,)
    assert ProductId("UP", "883932284904") in item.product_ids
    assert (item.quantity_shipped, item.unit, item.quantity_ordered) == (
        Decimal("1"),
        "EA",
        Decimal("1"),
    )
    assert item.descriptions == ("16X12MM SMALL WHEATON",)


def test_oop_856_soi_hierarchy_with_tilde_separators(sample: Loader) -> None:
    """Inteligenz 856 S/O/I hierarchy with tilde separators."""
    notice = only_document(sample("oop_856_tilde.edi"))
    assert isinstance(notice, ShipNotice)
    assert notice.shipment_id == "123456"
    assert notice.dates[1] == DateReference("017", date(2001, 4, 22), time(8, 0))
    (shipment,) = notice.shipments
    assert shipment.carrier is None
    assert [p.name for p in shipment.parties] == ["ACME", "ESSAR Steel Algoma Inc."]
    assert shipment.parties[1].address_lines == ("456 TEST DR.", "Suite 00")
    (order,) = shipment.orders
    assert (order.po_number, order.release_number) == ("123456", "1234")
    assert order.packs == ()
    assert [(i.line_number, i.quantity_shipped, i.unit) for i in order.items] == [
        ("001", Decimal("16"), "PC"),
        ("002", Decimal("23"), "LB"),
        ("004", Decimal("16"), "PC"),
    ]
    assert order.items[1].product_ids == (ProductId("CB", "1234-654321"),)


def test_856_unknown_parent_is_a_mapping_error() -> None:
    """856 unknown parent is a mapping error."""
    ts = transaction(
        "856",
        Segment("BSN", ("00", "1", "20240101")),
        Segment("HL", ("1", "", "S")),
        Segment("HL", ("2", "9", "O")),
    )
    with pytest.raises(X12MappingError, match="unknown parent '9'"):
        read_transaction(ts)


# --- 810 -------------------------------------------------------------------------------


def test_edinet_810a_invoice(sample: Loader) -> None:
    """EDI.Net 810a invoice."""
    invoice = only_document(sample("edinet_810a.edi"))
    assert isinstance(invoice, Invoice)
    assert invoice.invoice_number == "DO091003TESTINV01"
    assert invoice.invoice_date == date(2003, 3, 10)
    assert invoice.po_number == "DO091003"
    assert invoice.po_date == date(2003, 9, 10)
    assert invoice.currency == "USD"
    assert invoice.total_amount == Decimal("365.96")  # TDS*36596, implied 2 decimals
    assert [(line.quantity, line.unit_price) for line in invoice.lines] == [
        (Decimal("2"), Decimal("99.99")),
        (Decimal("2"), Decimal("79.99")),
    ]
    assert invoice.lines_total == Decimal("359.96")
    assert Amount("1", Decimal("359.96")) in invoice.amounts
    assert invoice.charges == (
        AllowanceCharge("C", "G830", Decimal("6.00")),
        AllowanceCharge("C", "H850", Decimal("0"), description="no tax"),
    )
    charges = sum((c.signed_amount for c in invoice.charges), Decimal(0))
    assert invoice.lines_total + charges == invoice.total_amount
    line_charges = invoice.lines[0].charges
    assert line_charges[0].indicator == "N"
    assert line_charges[0].amount == Decimal("199.98")
    assert line_charges[0].signed_amount == 0
    assert line_charges[1] == AllowanceCharge("C", "G830", Decimal("3.00"))
    assert [p.entity_code for p in invoice.lines[0].parties] == ["SF", "ST"]
    assert [p.entity_code for p in invoice.parties] == ["SO", "RI"]
    assert invoice.line_count == 2


def test_810_requires_tds() -> None:
    """810 requires TDS."""
    ts = transaction("810", Segment("BIG", ("20240101", "INV1")), Segment("IT1", ("1",)))
    with pytest.raises(X12MappingError, match="no TDS segment"):
        read_transaction(ts)


# --- 832 -------------------------------------------------------------------------------


def test_edinet_832_catalog(sample: Loader) -> None:
    """EDI.Net 832 catalog."""
    catalog = only_document(sample("edinet_832.edi"))
    assert isinstance(catalog, PriceCatalog)
    assert (catalog.purpose, catalog.catalog_number, catalog.catalog_version) == (
        "RC",
        "BISG",
        "980112",
    )
    assert catalog.transaction_purpose == "00"
    assert catalog.parties[0].identifier == "123-123456"
    first, second = catalog.items
    assert first.product_ids[0] == ProductId("IB", "0940016699")
    assert len(first.descriptions) == 3
    assert second.product_ids == (
        ProductId("IB", "0812976568"),
        ProductId("B7", "The Gospel of the Flying Spaghetti Monster"),
    )
    assert second.descriptions == ("Hello World",)
    assert second.currency == "USD"
    assert catalog.line_count == 5  # as declared; the file only has two LIN items


def test_832_prices_with_currency() -> None:
    """832 prices with currency."""
    ts = transaction(
        "832",
        Segment("BCT", ("PS", "CAT-9")),
        Segment("CUR", ("SE", "USD")),
        Segment("LIN", ("1", "VP", "FLT-10")),
        Segment("PID", ("F", "", "", "", "Oil filter")),
        Segment("CTP", ("", "RES", "12.50", "1", "EA")),
        Segment("CTP", ("", "UCP", "9.95", "10", "EA>1")),
        Segment("CUR", ("SE", "CAD")),
    )
    catalog = read_transaction(ts)
    assert isinstance(catalog, PriceCatalog)
    (item,) = catalog.items
    assert item.descriptions == ("Oil filter",)
    assert [(p.price_type, p.unit_price, p.unit, p.currency) for p in item.prices] == [
        ("RES", Decimal("12.50"), "EA", "USD"),
        ("UCP", Decimal("9.95"), "EA", "CAD"),
    ]


# --- 214 -------------------------------------------------------------------------------


def test_edinet_214_delivered(sample: Loader) -> None:
    """EDI.Net 214 delivered."""
    status = only_document(sample("edinet_214.edi"))
    assert isinstance(status, CarrierStatus)
    assert (status.reference, status.shipment_id, status.scac) == (
        "1751807",
        "75027674",
        "SCAC",
    )
    assert status.delivered
    (event,) = status.events
    assert (event.status_code, event.reason_code) == ("D1", "NS")
    assert (event.date, event.time, event.time_code) == (date(2016, 7, 26), time(12, 30), "LT")
    assert (event.city, event.state) == ("BRATTLEBORO", "VT")
    assert event.equipment_number == "30402"
    assert [p.entity_code for p in status.parties] == ["SH", "CN", "BT"]
    assert status.parties[0].name == "CATALYST PAPER (USA) INC"


def test_214_l11_references_and_several_events() -> None:
    """214 L11 references and several events."""
    ts = transaction(
        "214",
        Segment("B10", ("PRO1", "SHIP1", "ABCD")),
        Segment("L11", ("PO-77", "PO")),
        Segment("LX", ("1",)),
        Segment("AT7", ("AF", "NS", "", "", "20240101", "0800")),
        Segment("MS1", ("LEEDS", "", "GB")),
        Segment("LX", ("2",)),
        Segment("AT7", ("X1", "NS", "", "", "20240102", "1015")),
    )
    status = read_transaction(ts)
    assert isinstance(status, CarrierStatus)
    assert status.references == (Reference("PO", "PO-77"),)
    assert [e.status_code for e in status.events] == ["AF", "X1"]
    assert status.events[0].country == "GB"
    assert status.events[1].city == ""
    assert not status.delivered


# --- 997 -------------------------------------------------------------------------------


def test_staedi_997_functional_ack(sample: Loader) -> None:
    """StAEDI 997 functional ack."""
    ack = only_document(sample("staedi_997.edi"))
    assert isinstance(ack, FunctionalAcknowledgement)
    assert (ack.functional_id, ack.group_control_number) == ("HC", "000001")
    assert ack.status is AckStatus.REJECTED
    assert (ack.sets_included, ack.sets_received, ack.sets_accepted) == (1, 1, 0)
    (response,) = ack.sets
    assert (response.set_id, response.control_number) == ("837", "0021")
    assert response.status is AckStatus.REJECTED
    assert response.error_codes == ("5",)
    (segment_error,) = response.segment_errors
    assert (segment_error.segment_id, segment_error.position, segment_error.error_code) == (
        "NM1",
        8,
        "8",
    )
    (element_error,) = segment_error.element_errors
    assert (element_error.position, element_error.reference_number) == (8, "66")
    assert (element_error.error_code, element_error.bad_value) == ("7", "MI")


def test_997_composite_element_position() -> None:
    """997 composite element position."""
    ts = transaction(
        "997",
        Segment("AK1", ("PO", "1", "005010")),
        Segment("AK2", ("850", "0001")),
        Segment("AK3", ("PO1", "3", "", "8")),
        Segment("AK4", ("2:1", "330", "4")),
        Segment("AK5", ("E",)),
        Segment("AK9", ("E", "1", "1", "1")),
    )
    ack = read_transaction(ts)
    assert isinstance(ack, FunctionalAcknowledgement)
    error = ack.sets[0].segment_errors[0].element_errors[0]
    assert (error.position, error.component_position) == (2, 1)
    assert ack.version == "005010"


def test_acknowledge_clean_group_and_round_trip(sample: Loader) -> None:
    """Acknowledge clean group and round trip."""
    received = parse_interchange(sample("node-x12_850.edi"))
    (group,) = received.interchange.groups
    ack = acknowledge_group(group, received.problems)
    assert ack.status is AckStatus.ACCEPTED
    assert (ack.functional_id, ack.group_control_number) == ("PO", "1421")
    assert (ack.sets_included, ack.sets_received, ack.sets_accepted) == (1, 1, 1)
    assert ack.sets[0].control_number == "000000010"
    (mapped,) = read_documents(through_the_wire(functional_ack_content(ack)))
    assert mapped == ack


def test_acknowledge_broken_sets(sample: Loader) -> None:
    """Acknowledge broken sets."""
    received = parse_interchange(sample("edinet_832.edi"))
    ack = acknowledge_group(received.interchange.groups[0], received.problems)
    assert ack.status is AckStatus.REJECTED
    assert ack.sets[0].error_codes == ("4",)  # segment count does not match


def test_acknowledge_partial_group() -> None:
    """Acknowledge partial group."""
    text = (
        "ISA*00*          *00*          *ZZ*A              *ZZ*B              "
        "*240102*1230*U*00401*000000001*0*P*>~GS*PO*A*B*20240102*1230*9*X*004010~"
        "ST*850*0001~BEG*00*SA*1**20240102~SE*3*0001~"
        "ST*850*0002~BEG*00*SA*2**20240102~??*x~SE*4*0002~"
        "ST*850*0003~BEG*00*SA*3**20240102~SE*3*0009~"
        "GE*3*9~IEA*1*000000001~"
    )
    received = parse_interchange(text)
    ack = acknowledge_group(received.interchange.groups[0], received.problems)
    assert [(s.control_number, s.status.value, s.error_codes) for s in ack.sets] == [
        ("0001", "A", ()),
        ("0002", "R", ("5",)),
        ("0003", "R", ("3",)),
    ]
    assert ack.status is AckStatus.PARTIALLY_ACCEPTED
    assert (ack.sets_received, ack.sets_accepted) == (3, 1)


def test_acknowledge_group_envelope_errors() -> None:
    """Acknowledge group envelope errors."""
    text = (
        "ISA*00*          *00*          *ZZ*A              *ZZ*B              "
        "*240102*1230*U*00401*000000001*0*P*>~GS*PO*A*B*20240102*1230*9*X*004010~"
        "ST*850*0001~BEG*00*SA*1**20240102~SE*3*0001~GE*2*8~IEA*1*000000001~"
    )
    ack = acknowledge_group(parse_interchange(text).interchange.groups[0])
    assert ack.status is AckStatus.REJECTED
    assert ack.error_codes == ("4", "5")
    assert ack.sets[0].status is AckStatus.ACCEPTED


# --- mapping errors --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("segments", "fragment"),
    [
        ((), "no BEG segment"),
        ((Segment("BEG", ("00", "SA", "", "", "20240101")),), "BEG03 is required"),
        ((Segment("BEG", ("00", "SA", "1", "", "20241301")),), "valid calendar date"),
        ((Segment("BEG", ("00", "SA", "1", "", "2024")),), "a date CCYYMMDD"),
        (
            (Segment("BEG", ("00", "SA", "1", "", "20240101")), Segment("PO1", ("1", "1e5"))),
            "PO102 should be a decimal",
        ),
        (
            (Segment("BEG", ("00", "SA", "1", "", "20240101")), Segment("PO1", ("1", "NaN"))),
            "PO102 should be a decimal",
        ),
    ],
)
def test_bad_values_raise_mapping_errors(segments: tuple[Segment, ...], fragment: str) -> None:
    """Bad values raise mapping errors."""
    with pytest.raises(X12MappingError, match=fragment):
        read_transaction(transaction("850", *segments))


def test_bad_implied_decimal_and_ack_code() -> None:
    """Bad implied decimal and ack code."""
    with pytest.raises(X12MappingError, match="TDS01 should be an N2"):
        read_transaction(
            transaction("810", Segment("BIG", ("20240101", "I")), Segment("TDS", ("12.5",)))
        )
    with pytest.raises(X12MappingError, match="not an acknowledgement code"):
        read_transaction(
            transaction("997", Segment("AK1", ("PO", "1")), Segment("AK9", ("Q", "1", "1", "1")))
        )


def test_unsupported_transaction_set() -> None:
    """Unsupported transaction set."""
    with pytest.raises(UnsupportedTransactionError, match="'999'"):
        read_transaction(transaction("999"))


def test_reader_rejects_wrong_set_type() -> None:
    """Reader rejects wrong set type."""
    from maintainpro.supply.edi.orders import read_purchase_order

    with pytest.raises(X12MappingError, match="expected a 850"):
        read_purchase_order(transaction("810"))


def test_content_type_is_exported() -> None:
    """TransactionContent is importable and plain."""
    assert TransactionContent("850", "PO", ()).segments == ()
