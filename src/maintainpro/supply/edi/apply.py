"""Apply received X12 documents to the purchase-order domain, one transaction set at a time.

Each function takes a typed document from the codec and calls the same domain functions the API
and the portal use (acknowledge_order, record_shipment, record_carrier_event, record_invoice,
import_catalog), so EDI input passes the same rules. A document that cannot apply raises a
ValueError whose message is the reason shown in the error queue.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from maintainpro.core.db import utcnow
from maintainpro.core.inventory import Part
from maintainpro.supply.acknowledgements import LineAck, acknowledge_order
from maintainpro.supply.catalog_import import import_catalog
from maintainpro.supply.catalogs import CatalogItem
from maintainpro.supply.edi import carrier_codes
from maintainpro.supply.edi.acks import record_functional_ack
from maintainpro.supply.edi.carrier_status import CarrierStatus, StatusEvent
from maintainpro.supply.edi.catalog import CatalogItem as X12CatalogItem
from maintainpro.supply.edi.catalog import CatalogPrice, PriceCatalog
from maintainpro.supply.edi.common import DateReference, ProductId
from maintainpro.supply.edi.functional_ack import FunctionalAcknowledgement
from maintainpro.supply.edi.invoice import Invoice
from maintainpro.supply.edi.order_ack import AcknowledgedLine, PurchaseOrderAcknowledgement
from maintainpro.supply.edi.orders import PurchaseOrder as X12PurchaseOrder
from maintainpro.supply.edi.orders import PurchaseOrderChange
from maintainpro.supply.edi.partners import TradingPartner
from maintainpro.supply.edi.ship_notice import Shipment as X12Shipment
from maintainpro.supply.edi.ship_notice import ShipNotice as X12ShipNotice
from maintainpro.supply.edi.ship_notice import ShippedItem, ShippedOrder
from maintainpro.supply.edi.transactions import TransactionDocument
from maintainpro.supply.invoicing import InvoiceIn, InvoiceLineIn, record_invoice
from maintainpro.supply.matching import Tolerances
from maintainpro.supply.money import Money, line_total
from maintainpro.supply.purchasing import LineAckStatus, PurchaseOrder, PurchaseOrderLine
from maintainpro.supply.shipments import DocumentSource, Shipment
from maintainpro.supply.shipping import (
    ShipNotice,
    ShipNoticeLine,
    record_carrier_event,
    record_shipment,
)

# ACK01 line status codes: accepted as ordered, accepted with a change, or rejected.
ACCEPT_CODES = frozenset({"IA", "AC", "AR"})
CHANGE_CODES = frozenset({"IC", "IP", "IQ", "IS", "DR", "IB", "BP"})
REJECT_CODES = frozenset({"IR", "ID", "R1", "R2", "R3", "R4", "R5"})
# BAK02 of an acknowledgement that rejects the whole order without line detail.
REJECT_ORDER = frozenset({"RJ", "RD"})
# Product id qualifiers naming our part number, and the supplier's (catalogues often list the
# UPC or EAN as the supplier part number).
OUR_PART = frozenset({"BP", "PN", "CB"})
SUPPLIER_PART = frozenset({"VP", "VN", "SK", "MG", "UP", "EN"})
# 856 dates: shipped, and the expected delivery (estimated, then current schedule).
SHIPPED = "011"
EXPECTED = ("017", "067")
# 214 references that may name a shipment: bill of lading, carrier's reference (pro),
# shipper's id, tracking number, air waybill, carrier's package id.
SHIPMENT_REFERENCES = frozenset({"BM", "CN", "SI", "2I", "AW", "08"})
# 810 SAC02 codes that are tax; other charges become one "other charges" line.
TAX_CODES = frozenset({"H850"})
# 832 CTP02 price types that are our purchase price (RES, MSR and the like are resale prices).
BUY_PRICES = frozenset({"", "UCP", "NET", "CON", "CAT", "PBQ", "PUR", "CHG"})
_ORDER_NUMBER = re.compile(r"(?:PO-?)?0*(\d{1,9})", re.IGNORECASE)
_MAX_REASON = 2000


class ApplyError(ValueError):
    """A received document that does not fit our data; the message is the reason."""


@dataclass(frozen=True)
class ApplyOptions:
    """Tolerances the domain functions need when EDI input applies."""

    tolerances: Tolerances = field(default_factory=Tolerances)
    shipment_tolerance_pct: Decimal = Decimal(0)


@dataclass(frozen=True)
class Applied:
    """What a document changed: its business reference, its order, and any warnings."""

    reference: str | None
    purchase_order_id: int | None
    warnings: tuple[str, ...] = ()


def document_reference(document: TransactionDocument) -> str | None:
    """The business id a document is about: PO number, shipment number, catalogue, group."""
    match document:
        case PurchaseOrderAcknowledgement() | Invoice() | X12PurchaseOrder():
            value = document.po_number
        case PurchaseOrderChange():
            value = document.po_number
        case X12ShipNotice():
            value = document.shipment_id
        case CarrierStatus():
            value = document.reference or document.shipment_id
        case PriceCatalog():
            value = document.catalog_number or document.purpose
        case FunctionalAcknowledgement():
            value = f"{document.functional_id} {document.group_control_number}"
        case _:  # pragma: no cover - every TransactionDocument is listed above
            value = ""
    return value[:64] or None


def find_order(session: Session, partner: TradingPartner, number: str) -> PurchaseOrder:
    """Our order under the number a partner quotes (PO-000123, or its digits), locked."""
    match = _ORDER_NUMBER.fullmatch(number.strip())
    order = session.get(PurchaseOrder, int(match.group(1)), with_for_update=True) if match else None
    # An order of another supplier is reported exactly like a missing one.
    if order is None or order.supplier_id != partner.supplier_id:
        raise ApplyError(f"no purchase order {number[:40]!r} for supplier {partner.supplier.code}")
    return order


def _part_lines(
    session: Session, order: PurchaseOrder, ids: Sequence[ProductId]
) -> set[PurchaseOrderLine]:
    ours = {p.value for p in ids if p.qualifier in OUR_PART and p.value}
    theirs = {p.value for p in ids if p.qualifier in SUPPLIER_PART and p.value}
    parts: set[int] = set()
    if ours:
        parts |= set(session.scalars(select(Part.id).where(Part.number.in_(ours))))
    if theirs:
        parts |= set(
            session.scalars(
                select(CatalogItem.part_id).where(
                    CatalogItem.supplier_id == order.supplier_id,
                    CatalogItem.supplier_part_number.in_(theirs),
                )
            )
        )
    return {line for line in order.lines if line.part_id in parts}


def match_line(
    session: Session, order: PurchaseOrder, line_number: str, ids: Sequence[ProductId], what: str
) -> PurchaseOrderLine:
    """The order line a document line means: by product ids when they name one line, else by
    its line number (PO101/IT101/LIN01 echo ours)."""
    by_ids = _part_lines(session, order, ids)
    number = line_number.strip()
    by_number = next(
        (line for line in order.lines if number.isdigit() and line.line_no == int(number)), None
    )
    if len(by_ids) == 1 and (by_number is None or by_number in by_ids or not number):
        return next(iter(by_ids))
    if by_number is not None and (not by_ids or by_number in by_ids):
        return by_number
    raise ApplyError(f"{what} line {number[:20] or '?'} matches no line of {order.number}")


# --- 855 -------------------------------------------------------------------------------------


def _promised(line: AcknowledgedLine) -> dt.date | None:
    for ack in line.acknowledgements:
        if ack.date is not None:
            return ack.date
    return next((s.date for s in line.schedules if s.date is not None), None)


def _line_ack(line: AcknowledgedLine, target: PurchaseOrderLine, rejected: bool) -> LineAck:
    code = line.acknowledgements[0].status if line.acknowledgements else ""
    if rejected or code in REJECT_CODES:
        return LineAck(
            target.line_no,
            LineAckStatus.REJECTED,
            note=f"rejected by the supplier (EDI 855 ACK {code or 'RJ'})",
        )
    if code and code not in ACCEPT_CODES | CHANGE_CODES:
        raise ApplyError(f"855 line {line.line_number}: ACK status {code[:4]!r} is not supported")
    first = line.acknowledgements[0] if line.acknowledgements else None
    # ACK02 is what the supplier confirms; PO102 repeats what we ordered.
    quantity = first.quantity if first is not None and first.quantity is not None else line.quantity
    price = line.unit_price
    new_quantity = quantity if quantity is not None and quantity != target.quantity else None
    new_price = price if price is not None and price != target.unit_price else None
    promised = _promised(line)
    changed = new_quantity is not None or new_price is not None
    if changed or (code in CHANGE_CODES and promised is not None):
        return LineAck(
            target.line_no,
            LineAckStatus.CHANGED,
            quantity=new_quantity,
            unit_price=new_price,
            promised_date=promised,
            note=f"EDI 855 ACK {code}",
        )
    return LineAck(target.line_no, LineAckStatus.ACCEPTED, promised_date=promised)


def apply_acknowledgement(
    session: Session,
    partner: TradingPartner,
    ack: PurchaseOrderAcknowledgement,
    *,
    now: dt.datetime,
) -> Applied:
    """855: each PO1/ACK answers one order line (accepted, changed or rejected)."""
    order = find_order(session, partner, ack.po_number)
    if ack.currency and ack.currency != order.currency:
        raise ApplyError(f"the 855 is in {ack.currency[:3]}, {order.number} in {order.currency}")
    whole = ack.acknowledgement_type in REJECT_ORDER
    if ack.lines:
        answers = [
            _line_ack(
                line, match_line(session, order, line.line_number, line.product_ids, "855"), whole
            )
            for line in ack.lines
        ]
    elif whole:
        answers = [
            LineAck(
                line.line_no,
                LineAckStatus.REJECTED,
                note=f"rejected by the supplier (EDI 855 BAK02 {ack.acknowledgement_type})",
            )
            for line in order.lines
            if line.quantity > 0
        ]
    else:
        # An acknowledgement without line detail (BAK02 AT, AD...) accepts the order as sent.
        answers = [
            LineAck(line.line_no, LineAckStatus.ACCEPTED)
            for line in order.lines
            if line.quantity > 0
        ]
    note = f"EDI 855 {ack.acknowledgement_type}" + (
        f", supplier order {ack.seller_order_number}" if ack.seller_order_number else ""
    )
    acknowledge_order(session, order, answers, source=DocumentSource.EDI, note=note, now=now)
    return Applied(order.number, order.id)


# --- 856 -------------------------------------------------------------------------------------


def _dated(dates: Iterable[DateReference], qualifiers: Sequence[str]) -> DateReference | None:
    found = {d.qualifier: d for d in dates}
    return next((found[q] for q in qualifiers if q in found), None)


def _zone(partner: TradingPartner) -> dt.tzinfo:
    return carrier_codes.partner_zone((partner.settings or {}).get("timezone"))


def _notice_lines(
    session: Session, order: PurchaseOrder, items: Sequence[ShippedItem]
) -> list[ShipNoticeLine]:
    quantities: dict[int, Decimal] = {}
    for item in items:
        if item.quantity_shipped is None:
            raise ApplyError(f"856 item HL {item.hl_id[:12]} has no shipped quantity (SN102)")
        line = match_line(session, order, item.line_number, item.product_ids, "856 item")
        quantities[line.line_no] = quantities.get(line.line_no, Decimal(0)) + item.quantity_shipped
    return [ShipNoticeLine(n, q) for n, q in sorted(quantities.items())]


def _one_shipment(
    session: Session,
    partner: TradingPartner,
    notice: X12ShipNotice,
    shipment: X12Shipment,
    shipped: ShippedOrder,
    number: str,
    options: ApplyOptions,
    now: dt.datetime,
) -> tuple[PurchaseOrder, list[str]]:
    if not shipped.po_number:
        raise ApplyError(f"856 order level HL {shipped.hl_id[:12]} has no PRF purchase order")
    order = find_order(session, partner, shipped.po_number)
    if not shipped.items:
        raise ApplyError(f"856 order level for {order.number} lists no items")
    zone = _zone(partner)
    warnings: list[str] = []
    shipped_ref = _dated(shipment.dates, (SHIPPED,)) or _dated(notice.dates, (SHIPPED,))
    shipped_at = (
        carrier_codes.moment(shipped_ref.date, shipped_ref.time, zone)
        if shipped_ref is not None
        else carrier_codes.moment(notice.notice_date, notice.notice_time, zone)
    )
    expected_ref = _dated(shipment.dates, EXPECTED) or _dated(notice.dates, EXPECTED)
    expected = (
        carrier_codes.moment(expected_ref.date, expected_ref.time, zone) if expected_ref else None
    )
    if expected is not None and expected < shipped_at:
        if expected.date() == shipped_at.date():
            expected = shipped_at  # a date without a time: delivery the same day
        else:
            warnings.append("the expected delivery is before the shipment date; ignored")
            expected = None
    tracking = shipment.tracking_numbers[0] if shipment.tracking_numbers else None
    tracking = tracking or shipment.bill_of_lading or None
    scac = shipment.carrier.scac if shipment.carrier is not None else None
    if (tracking and len(tracking) > 64) or (scac and len(scac) > 8):
        raise ApplyError("856 tracking number or SCAC is longer than we store (64/8 characters)")
    domain = ShipNotice(
        shipment_number=number,
        lines=_notice_lines(session, order, shipped.items),
        shipped_at=shipped_at,
        carrier_scac=scac,
        carrier_name=(shipment.carrier.routing[:120] or None) if shipment.carrier else None,
        tracking_number=tracking,
        expected_delivery=expected,
        source=DocumentSource.EDI,
    )
    record_shipment(session, order, domain, tolerance_pct=options.shipment_tolerance_pct, now=now)
    return order, warnings


def apply_ship_notice(
    session: Session,
    partner: TradingPartner,
    notice: X12ShipNotice,
    *,
    options: ApplyOptions,
    now: dt.datetime,
) -> Applied:
    """856: one shipment per order level (BSN02 is the number; -2, -3... for further orders)."""
    pairs = [(s, o) for s in notice.shipments for o in s.orders]
    if not pairs:
        raise ApplyError("the 856 has no shipment (HL S) with an order level (HL O)")
    if len(notice.shipment_id) > 60:
        raise ApplyError("856 BSN02 shipment number is longer than 60 characters")
    orders: list[PurchaseOrder] = []
    warnings: list[str] = []
    for index, (shipment, shipped) in enumerate(pairs, start=1):
        number = notice.shipment_id if index == 1 else f"{notice.shipment_id}-{index}"
        order, found = _one_shipment(
            session, partner, notice, shipment, shipped, number, options, now
        )
        orders.append(order)
        warnings += found
    return Applied(notice.shipment_id, orders[0].id, tuple(warnings))


# --- 214 -------------------------------------------------------------------------------------


def _shipments_for(
    session: Session, partner: TradingPartner, status: CarrierStatus
) -> tuple[list[Shipment], list[str]]:
    names = {status.reference, status.shipment_id}
    names |= {r.value for r in status.references if r.qualifier in SHIPMENT_REFERENCES}
    wanted = sorted(n for n in names if n)
    if not wanted:
        raise ApplyError("the 214 names no shipment (B10 and L11 references are empty)")
    owner = Shipment.supplier_id == partner.supplier_id
    scac = (partner.settings or {}).get("carrier_scac")
    # A carrier partner reports on shipments it carries, whoever the supplier is.
    allowed = or_(owner, Shipment.carrier_scac == scac) if isinstance(scac, str) and scac else owner
    found = session.scalars(
        select(Shipment)
        .where(
            or_(Shipment.tracking_number.in_(wanted), Shipment.shipment_number.in_(wanted)),
            allowed,
        )
        .order_by(Shipment.id)
    ).all()
    return list(found), wanted


def _event_location(event: StatusEvent) -> str | None:
    parts = [p for p in (event.city, event.state, event.country) if p]
    return ", ".join(parts)[:200] or None


def _apply_event(
    session: Session,
    shipments: Sequence[Shipment],
    event: StatusEvent,
    zone: dt.tzinfo,
    now: dt.datetime,
) -> str | None:
    """Record one AT7 on every shipment; returns a warning when it cannot be used."""
    code = event.status_code
    if event.date is None:
        return f"AT7 {code or event.appointment_code} has no date; skipped"
    at = carrier_codes.moment(event.date, event.time, carrier_codes.zone_for(event.time_code, zone))
    estimate = code in carrier_codes.ESTIMATED_ARRIVAL or (
        not code and event.appointment_code in carrier_codes.DELIVERY_APPOINTMENT
    )
    if estimate:
        for shipment in shipments:
            shipment.expected_delivery = at
        return None
    status = carrier_codes.status_for(code)
    if status is None:
        return f"AT7 status code {code[:4]!r} is not in the mapping table; skipped"
    note = f"AT7 {code}" + (f" reason {event.reason_code}" if event.reason_code else "")
    for shipment in shipments:
        record_carrier_event(
            session,
            shipment,
            status,
            at,
            location=_event_location(event),
            source=DocumentSource.EDI,
            raw_code=code[:32],
            note=note,
            now=now,
        )
    return None


def apply_carrier_status(
    session: Session, partner: TradingPartner, status: CarrierStatus, *, now: dt.datetime
) -> Applied:
    """214: each AT7 becomes a carrier event on the shipment(s) with that tracking number."""
    shipments, wanted = _shipments_for(session, partner, status)
    if not shipments:
        raise ApplyError(
            "no shipment with tracking number or shipment number " + ", ".join(wanted)[:200]
        )
    if not status.events:
        raise ApplyError("the 214 carries no AT7 status")
    zone = _zone(partner)
    warnings = [
        w for w in (_apply_event(session, shipments, e, zone, now) for e in status.events) if w
    ]
    if len(warnings) == len(status.events):
        raise ApplyError("no AT7 status could be applied: " + "; ".join(warnings))
    return Applied(document_reference(status), shipments[0].purchase_order_id, tuple(warnings))


# --- 810 -------------------------------------------------------------------------------------


def apply_invoice(
    session: Session,
    partner: TradingPartner,
    invoice: Invoice,
    *,
    options: ApplyOptions,
    now: dt.datetime,
) -> Applied:
    """810: IT1 lines against order lines; tax from SAC H850; other charges as one extra line."""
    if not invoice.po_number:
        raise ApplyError("the 810 names no purchase order (BIG04)")
    order = find_order(session, partner, invoice.po_number)
    currency = invoice.currency or order.currency
    lines: list[InvoiceLineIn] = []
    for item in invoice.lines:
        if item.quantity is None or item.unit_price is None:
            raise ApplyError(
                f"810 line {item.line_number[:20]}: quantity and unit price are needed"
            )
        try:
            target: int | None = match_line(
                session, order, item.line_number, item.product_ids, "810"
            ).line_no
        except ApplyError:
            target = None  # the three-way match reports it as an unknown line
        lines.append(
            InvoiceLineIn(
                target,
                item.quantity,
                item.unit_price,
                description=(item.descriptions[0] if item.descriptions else "")[:200],
            )
        )
    charges = [*invoice.charges, *(c for line in invoice.lines for c in line.charges)]
    tax = sum(
        (
            c.amount or Decimal(0)
            for c in invoice.charges
            if c.indicator == "C" and c.code in TAX_CODES
        ),
        Decimal(0),
    )
    goods = sum(
        (line_total(Money.of(i.unit_price, currency), i.quantity).amount for i in lines),
        Decimal(0),
    )
    other = invoice.total_amount - goods - tax
    if other > 0:
        codes = sorted({c.code for c in charges if c.indicator == "C" and c.code not in TAX_CODES})
        lines.append(
            InvoiceLineIn(
                None,
                Decimal(1),
                other,
                other,
                description=f"other charges (SAC {', '.join(codes) or 'none itemised'})"[:200],
            )
        )
    data = InvoiceIn(
        invoice_number=invoice.invoice_number,
        invoice_date=invoice.invoice_date,
        currency=currency,
        total=invoice.total_amount,
        lines=lines,
        tax=tax,
        source=DocumentSource.EDI,
    )
    record_invoice(session, order, data, tolerances=options.tolerances, now=now)
    return Applied(order.number, order.id)


# --- 832 -------------------------------------------------------------------------------------


def _first(ids: Sequence[ProductId], qualifiers: frozenset[str]) -> str:
    return next((p.value for p in ids if p.qualifier in qualifiers and p.value), "")


def _buy_prices(prices: Sequence[CatalogPrice]) -> list[CatalogPrice]:
    return [p for p in prices if p.price_type in BUY_PRICES and p.unit_price is not None]


def _catalog_rows(
    session: Session, partner: TradingPartner, catalog: PriceCatalog
) -> tuple[list[list[str]], list[str]]:
    """CSV rows in the import's columns, and the LIN each data row came from."""
    rows: list[list[str]] = []
    origins: list[str] = []
    for number, item in enumerate(catalog.items, start=1):
        spn = _first(item.product_ids, SUPPLIER_PART) or (
            item.product_ids[0].value if item.product_ids else ""
        )
        part_number = _first(item.product_ids, OUR_PART) or _mapped_part(session, partner, spn)
        prices = _buy_prices(item.prices) or [CatalogPrice("", None, None, "", None)]
        for price in prices:
            rows.append(_catalog_row(item, spn, part_number, price, catalog.currency))
            origins.append(f"LIN {item.line_number[:12] or number}")
    return rows, origins


def _catalog_row(
    item: X12CatalogItem, spn: str, part_number: str, price: CatalogPrice, default: str | None
) -> list[str]:
    return [
        spn,
        part_number,
        "" if price.unit_price is None else format(price.unit_price, "f"),
        format(price.quantity, "f") if price.quantity else "1",
        item.descriptions[0] if item.descriptions else "",
        price.unit or "EA",
        price.currency or item.currency or default or "",
    ]


def _mapped_part(session: Session, partner: TradingPartner, spn: str) -> str:
    number = session.scalar(
        select(Part.number)
        .join(CatalogItem, CatalogItem.part_id == Part.id)
        .where(
            CatalogItem.supplier_id == partner.supplier_id,
            CatalogItem.supplier_part_number == spn,
        )
    )
    return number or ""


def apply_catalog(
    session: Session, partner: TradingPartner, catalog: PriceCatalog, *, now: dt.datetime
) -> Applied:
    """832: the items go through the catalogue import (same validation, all or nothing)."""
    if catalog.transaction_purpose == "03":
        raise ApplyError("deleting catalogue items by 832 (BCT10 03) is not supported")
    if not catalog.items:
        raise ApplyError("the 832 lists no items (LIN)")
    rows, origins = _catalog_rows(session, partner, catalog)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(
        [
            "supplier_part_number",
            "part_number",
            "unit_price",
            "min_quantity",
            "description",
            "unit",
            "currency",
        ]
    )
    writer.writerows(rows)
    report = import_catalog(
        session, partner.supplier, buffer.getvalue().encode("utf-8"), file_format="csv", now=now
    )
    if not report.ok:
        # CSV line n is data row n - 1; name the LIN it came from instead.
        problems = [
            f"{origins[e.line - 2] if 2 <= e.line < len(origins) + 2 else 'catalogue'}: {e.message}"
            for e in report.errors
        ]
        raise ApplyError("; ".join(problems)[:_MAX_REASON])
    return Applied(document_reference(catalog), None)


# --- dispatch --------------------------------------------------------------------------------


def apply_document(
    session: Session,
    partner: TradingPartner,
    document: TransactionDocument,
    *,
    options: ApplyOptions,
    now: dt.datetime | None = None,
) -> Applied:
    """Apply one received document to the domain; ApplyError (a ValueError) says why not."""
    when = now or utcnow()
    match document:
        case PurchaseOrderAcknowledgement():
            return apply_acknowledgement(session, partner, document, now=when)
        case X12ShipNotice():
            return apply_ship_notice(session, partner, document, options=options, now=when)
        case Invoice():
            return apply_invoice(session, partner, document, options=options, now=when)
        case CarrierStatus():
            return apply_carrier_status(session, partner, document, now=when)
        case PriceCatalog():
            return apply_catalog(session, partner, document, now=when)
        case FunctionalAcknowledgement():
            sent = record_functional_ack(session, partner, document, now=when)
            orders = [d.purchase_order_id for d in sent.documents if d.purchase_order_id]
            return Applied(document_reference(document), orders[0] if orders else None)
        case X12PurchaseOrder() | PurchaseOrderChange():
            raise ApplyError("purchase orders (850/860) are documents we send, not receive")
    raise ApplyError(f"no mapping applies {type(document).__name__} documents")
