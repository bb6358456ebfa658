"""The purchase order as a PDF for the supplier: header, supplier, lines, totals and terms."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from xml.sax.saxutils import escape

from reportlab.lib import colors  # type: ignore[import-untyped]
from reportlab.lib.pagesizes import A4  # type: ignore[import-untyped]
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet  # type: ignore[import-untyped]
from reportlab.lib.units import mm  # type: ignore[import-untyped]
from reportlab.platypus import Flowable, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle  # type: ignore[import-untyped]
from sqlalchemy.orm import Session

from maintainpro.supply.catalogs import CatalogItem
from maintainpro.supply.contracts import Contract
from maintainpro.supply.money import Money
from maintainpro.supply.purchasing import PurchaseOrder
from maintainpro.supply.sourcing import qty_text

PDF_MIME = "application/pdf"


@dataclass(frozen=True)
class DocumentLine:
    """One line as printed."""

    line_no: int
    part_number: str
    description: str
    supplier_part_number: str | None
    quantity: Decimal
    unit: str
    unit_price: Money
    total: Money
    need_by: dt.date | None
    promised_date: dt.date | None
    explanation: str = ""


@dataclass(frozen=True)
class OrderDocument:
    """Everything the printed order shows, read from the database once."""

    number: str
    revision: int
    issued: dt.date
    buyer: str
    supplier_name: str
    supplier_code: str
    supplier_country: str
    currency: str
    lines: Sequence[DocumentLine]
    total: Money
    payment_terms: str
    incoterms: str | None
    contracts: Sequence[tuple[str, str]]
    note: str = ""


def order_document(session: Session, order: PurchaseOrder, *, buyer: str) -> OrderDocument:
    """The printable facts of an order (lines cancelled to nothing are left out)."""
    lines = []
    contracts: dict[str, str] = {}
    for line in order.lines:
        if line.quantity == 0:
            continue
        item = session.get(CatalogItem, line.catalog_item_id) if line.catalog_item_id else None
        if line.contract_id is not None:
            contract = session.get(Contract, line.contract_id)
            if contract is not None:
                contracts[contract.number] = contract.terms
        lines.append(
            DocumentLine(
                line_no=line.line_no,
                part_number=line.part.number,
                description=line.part.name,
                supplier_part_number=item.supplier_part_number if item else None,
                quantity=line.quantity,
                unit=item.unit if item else "EA",
                unit_price=Money.of(line.unit_price, order.currency),
                total=Money.of(line.line_total, order.currency),
                need_by=line.need_by,
                promised_date=line.promised_date,
                explanation=line.explanation,
            )
        )
    issued = order.sent_at or order.approved_at or order.created_at
    supplier = order.supplier
    return OrderDocument(
        number=order.number,
        revision=order.revision,
        issued=issued.date(),
        buyer=buyer,
        supplier_name=supplier.legal_name,
        supplier_code=supplier.code,
        supplier_country=supplier.country,
        currency=order.currency,
        lines=lines,
        total=Money.of(order.total, order.currency),
        payment_terms=supplier.payment_terms,
        incoterms=supplier.incoterms,
        contracts=sorted(contracts.items()),
        note=order.note,
    )


def _p(text: str, style: ParagraphStyle) -> Paragraph:
    # Paragraph reads markup; names and notes are data, so they are escaped.
    return Paragraph(escape(text), style)


def _money(value: Money) -> str:
    return value.format(grouping=True)


def render_order_pdf(doc: OrderDocument, *, explanations: bool = False) -> bytes:
    """The order as PDF bytes; uncompressed and reproducible, so the same order gives the same
    file and its text can be searched."""
    styles = getSampleStyleSheet()
    body, small = styles["BodyText"], ParagraphStyle("small", styles["BodyText"], fontSize=8)
    title = f"Purchase order {doc.number}" + (f" rev. {doc.revision}" if doc.revision else "")
    story: list[Flowable] = [
        _p(title, styles["Title"]),
        _p(f"Date: {doc.issued.isoformat()}    Buyer: {doc.buyer}", body),
        _p(f"Supplier: {doc.supplier_name} ({doc.supplier_code}, {doc.supplier_country})", body),
        Spacer(1, 6 * mm),
    ]
    rows: list[list[object]] = [
        ["#", "Part", "Description", "Qty", "Unit price", "Total", "Need by"]
    ]
    for line in doc.lines:
        description = line.description
        if line.supplier_part_number:
            description += f" (your ref. {line.supplier_part_number})"
        if line.promised_date:
            description += f"; promised {line.promised_date.isoformat()}"
        cell: list[Flowable] = [_p(description, small)]
        if explanations and line.explanation:
            cell.append(_p(line.explanation, small))
        rows.append(
            [
                str(line.line_no),
                line.part_number,
                cell,
                f"{qty_text(line.quantity)} {line.unit}",
                _money(line.unit_price),
                _money(line.total),
                line.need_by.isoformat() if line.need_by else "",
            ]
        )
    rows.append(["", "", "Total", "", "", _money(doc.total), ""])
    table = Table(
        rows,
        colWidths=[8 * mm, 25 * mm, 60 * mm, 18 * mm, 25 * mm, 27 * mm, 20 * mm],
        repeatRows=1,
    )
    table.setStyle(
        TableStyle(
            [
                ("FONT", (0, 0), (-1, 0), "Helvetica-Bold", 8),
                ("FONT", (0, 1), (-1, -1), "Helvetica", 8),
                ("FONT", (0, -1), (-1, -1), "Helvetica-Bold", 8),
                ("LINEBELOW", (0, 0), (-1, 0), 0.5, colors.black),
                ("LINEABOVE", (0, -1), (-1, -1), 0.5, colors.black),
                ("ALIGN", (3, 0), (5, -1), "RIGHT"),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ]
        )
    )
    story += [table, Spacer(1, 6 * mm), _p("Terms", styles["Heading3"])]
    story.append(_p(f"All amounts in {doc.currency}. Payment terms: {doc.payment_terms}.", body))
    if doc.incoterms:
        story.append(_p(f"Delivery terms (Incoterms 2020): {doc.incoterms}.", body))
    for number, terms in doc.contracts:
        story.append(_p(f"Under contract {number}" + (f": {terms}" if terms else "."), body))
    if doc.note:
        story.append(_p(doc.note, body))
    story.append(_p(f"Please acknowledge every line, quoting {doc.number}.", body))
    buffer = io.BytesIO()
    SimpleDocTemplate(
        buffer,
        pagesize=A4,
        title=title,
        author=doc.buyer,
        invariant=1,
        pageCompression=0,
        leftMargin=12 * mm,
        rightMargin=12 * mm,
    ).build(story)
    return buffer.getvalue()
