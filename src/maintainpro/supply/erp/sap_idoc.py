"""An order as an SAP IDoc ORDERS05 (XML), for partners who load IDocs instead of calling OData.

Pure: the caller supplies the IDoc number and creation time. Segment order follows the ORDERS05
basic type: control record EDI_DC40, then E1EDK01 (header), E1EDK14 (organisational data),
E1EDK03 (dates), E1EDKA1 (partners) and one E1EDP01 per line with E1EDP20 (schedule) before
E1EDP19 (material numbers), as the segment definition orders them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from xml.etree import ElementTree as ET

from maintainpro.supply.erp.base import ErpPurchaseOrder
from maintainpro.supply.money import Money, line_total

# E1EDK03 date qualifiers: 012 document date, 002 requested delivery date.
DOCUMENT_DATE = "012"
REQUESTED_DELIVERY = "002"
# E1EDP19 qualifiers: 001 the buyer's (our) material number, 002 the vendor's.
BUYER_MATERIAL = "001"
# E1EDKA1 partner functions: AG sold-to (us), LF vendor.
SOLD_TO = "AG"
VENDOR = "LF"


@dataclass(frozen=True, slots=True)
class IdocControl:
    """The EDI_DC40 routing: who sends, who receives, through which ports."""

    sender_port: str
    sender_partner: str
    receiver_port: str
    receiver_partner: str
    sender_partner_type: str = "LS"
    receiver_partner_type: str = "LS"
    client: str | None = None
    direction: str = "2"  # inbound, seen from the SAP system that loads the file


def _field(parent: ET.Element, tag: str, value: str | None) -> None:
    if value:
        ET.SubElement(parent, tag).text = value


def _segment(parent: ET.Element, tag: str, fields: Sequence[tuple[str, str | None]]) -> ET.Element:
    segment = ET.SubElement(parent, tag, SEGMENT="1")
    for name, value in fields:
        _field(segment, name, value)
    return segment


def _quantity(value: Decimal) -> str:
    return format(value.normalize(), "f") if value == value.to_integral() else format(value, "f")


def orders05_xml(
    order: ErpPurchaseOrder,
    *,
    control: IdocControl,
    docnum: int,
    created: dt.datetime,
    organisation: Sequence[tuple[str, str]] = (),
    sold_to: str | None = None,
) -> bytes:
    """The order as an ORDERS05 IDoc XML document (UTF-8).

    ``organisation`` holds E1EDK14 (qualifier, value) pairs, for instance ("014", purchasing
    organisation) or ("008", the vendor's sales organisation); ``sold_to`` is our customer
    number at the vendor.
    """
    if not order.lines:
        raise ValueError("an IDoc needs at least one line")
    if not 0 < docnum < 10**16:
        raise ValueError("the IDoc number must have at most 16 digits")
    root = ET.Element("ORDERS05")
    idoc = ET.SubElement(root, "IDOC", BEGIN="1")
    stamp = created.astimezone(dt.UTC)
    _segment(
        idoc,
        "EDI_DC40",
        [
            ("TABNAM", "EDI_DC40"),
            ("MANDT", control.client),
            ("DOCNUM", f"{docnum:016d}"),
            ("DIRECT", control.direction),
            ("IDOCTYP", "ORDERS05"),
            ("MESTYP", "ORDERS"),
            ("SNDPOR", control.sender_port),
            ("SNDPRT", control.sender_partner_type),
            ("SNDPRN", control.sender_partner),
            ("RCVPOR", control.receiver_port),
            ("RCVPRT", control.receiver_partner_type),
            ("RCVPRN", control.receiver_partner),
            ("CREDAT", stamp.strftime("%Y%m%d")),
            ("CRETIM", stamp.strftime("%H%M%S")),
        ],
    )
    _segment(idoc, "E1EDK01", [("CURCY", order.currency), ("BELNR", order.number)])
    for qualifier, value in organisation:
        _segment(idoc, "E1EDK14", [("QUALF", qualifier), ("ORGID", value)])
    _segment(
        idoc, "E1EDK03", [("IDDAT", DOCUMENT_DATE), ("DATUM", order.order_date.strftime("%Y%m%d"))]
    )
    if sold_to:
        _segment(idoc, "E1EDKA1", [("PARVW", SOLD_TO), ("PARTN", sold_to)])
    _segment(idoc, "E1EDKA1", [("PARVW", VENDOR), ("PARTN", order.vendor_number)])
    for line in order.lines:
        total = line_total(Money.of(line.unit_price, order.currency), line.quantity)
        item = _segment(
            idoc,
            "E1EDP01",
            [
                ("POSEX", f"{line.line_no * 10:06d}"),
                ("MENGE", _quantity(line.quantity)),
                ("MENEE", line.unit),
                ("VPREI", format(line.unit_price, "f")),
                ("PEINH", "1"),
                ("NETWR", format(total.amount, "f")),
            ],
        )
        if line.need_by is not None:
            _segment(
                item,
                "E1EDP20",
                [("WMENG", _quantity(line.quantity)), ("EDATU", line.need_by.strftime("%Y%m%d"))],
            )
        _segment(
            item,
            "E1EDP19",
            [
                ("QUALF", BUYER_MATERIAL),
                ("IDTNR", line.item_number),
                ("KTEXT", line.description[:40]),
            ],
        )
    ET.indent(root)
    body: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return body
