"""Supplier invoices and their lines, matched three ways against order and receipts."""

from __future__ import annotations

import datetime as dt
import enum
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Date, ForeignKey, Integer, Numeric, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from maintainpro.core.columns import Timestamped, text_enum
from maintainpro.core.db import Base
from maintainpro.supply.purchasing import PurchaseOrder, PurchaseOrderLine
from maintainpro.supply.shipments import DocumentSource


class InvoiceStatus(enum.StrEnum):
    """Where an invoice stands in matching."""

    RECEIVED = "received"
    MATCHED = "matched"
    EXCEPTION = "exception"
    APPROVED = "approved"
    REJECTED = "rejected"


class SupplierInvoice(Timestamped, Base):
    """An invoice a supplier sent for one purchase order."""

    __tablename__ = "supplier_invoices"
    __table_args__ = (UniqueConstraint("supplier_id", "invoice_number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    supplier_id: Mapped[int] = mapped_column(
        ForeignKey("suppliers.id", ondelete="RESTRICT"), index=True
    )
    purchase_order_id: Mapped[int] = mapped_column(
        ForeignKey("purchase_orders.id", ondelete="RESTRICT"), index=True
    )
    invoice_number: Mapped[str] = mapped_column(String(64))
    invoice_date: Mapped[dt.date] = mapped_column(Date)
    currency: Mapped[str] = mapped_column(String(3))
    total: Mapped[Decimal] = mapped_column(Numeric(18, 4))
    tax: Mapped[Decimal] = mapped_column(Numeric(18, 4), default=Decimal(0))
    source: Mapped[DocumentSource] = mapped_column(
        text_enum(DocumentSource), default=DocumentSource.MANUAL
    )
    status: Mapped[InvoiceStatus] = mapped_column(
        text_enum(InvoiceStatus), default=InvoiceStatus.RECEIVED, index=True
    )
    # The three-way match's findings: [{"line": n, "kind": k, "message": m, ...}, ...].
    exceptions: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)

    order: Mapped[PurchaseOrder] = relationship()
    lines: Mapped[list[SupplierInvoiceLine]] = relationship(
        back_populates="invoice",
        cascade="all, delete-orphan",
        order_by="SupplierInvoiceLine.line_no",
    )


class SupplierInvoiceLine(Base):
    """One billed line: which order line, how many, at what price."""

    __tablename__ = "supplier_invoice_lines"

    id: Mapped[int] = mapped_column(primary_key=True)
    invoice_id: Mapped[int] = mapped_column(
        ForeignKey("supplier_invoices.id", ondelete="CASCADE"), index=True
    )
    line_no: Mapped[int] = mapped_column(Integer)
    purchase_order_line_id: Mapped[int | None] = mapped_column(
        ForeignKey("purchase_order_lines.id", ondelete="SET NULL"), index=True
    )
    quantity: Mapped[Decimal] = mapped_column(Numeric(14, 3))
    unit_price: Mapped[Decimal] = mapped_column(Numeric(18, 6))
    line_total: Mapped[Decimal] = mapped_column(Numeric(18, 4))
    description: Mapped[str] = mapped_column(String(200), default="")

    invoice: Mapped[SupplierInvoice] = relationship(back_populates="lines")
    line: Mapped[PurchaseOrderLine | None] = relationship()
