"""Supplier invoices: record, three-way match, approve exceptions, invoice and close orders."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from maintainpro.core.db import utcnow
from maintainpro.core.users import Permission, User
from maintainpro.supply.invoices import InvoiceStatus, SupplierInvoice, SupplierInvoiceLine
from maintainpro.supply.matching import (
    InvoiceFacts,
    InvoiceLineFacts,
    OrderLineFacts,
    PriorInvoice,
    Tolerances,
    three_way_match,
)
from maintainpro.supply.money import Money, MoneyError, line_total, validate_currency
from maintainpro.supply.purchasing import (
    ApprovalRefused,
    PoStatus,
    PoTransitionError,
    PurchaseOrder,
    PurchaseOrderHistory,
    move_order,
)
from maintainpro.supply.shipments import DocumentSource

S = PoStatus
# Invoices can arrive before the goods (they become "not received" exceptions) and after the
# order is invoiced (anything more is billed twice); never for an order not sent or finished.
INVOICEABLE = frozenset(
    {
        S.SENT,
        S.ACKNOWLEDGED,
        S.PARTIALLY_SHIPPED,
        S.SHIPPED,
        S.PARTIALLY_RECEIVED,
        S.RECEIVED,
        S.INVOICED,
    }
)
OPEN_INVOICE_STATUSES = frozenset({InvoiceStatus.RECEIVED, InvoiceStatus.EXCEPTION})


class InvoiceError(ValueError):
    """An invoice that cannot be recorded as sent."""


class DuplicateInvoice(InvoiceError):
    """The supplier already sent an invoice under this number."""


class InvoiceStateError(InvoiceError):
    """The invoice is not in a state that allows the step."""


@dataclass(frozen=True)
class InvoiceLineIn:
    """One billed line; line_total None means quantity x unit price, rounded."""

    order_line_no: int | None
    quantity: Decimal
    unit_price: Decimal
    line_total: Decimal | None = None
    description: str = ""


@dataclass(frozen=True)
class InvoiceIn:
    """An invoice as the supplier sent it."""

    invoice_number: str
    invoice_date: dt.date
    currency: str
    total: Decimal
    lines: Sequence[InvoiceLineIn]
    tax: Decimal = Decimal(0)
    source: DocumentSource = DocumentSource.MANUAL


def _rounded(amount: Decimal, currency: str, what: str) -> None:
    if not Money.of(amount, currency).is_rounded:
        raise InvoiceError(f"{what} has more decimals than {currency} allows")


def _validated(data: InvoiceIn) -> list[Decimal]:
    """The line totals (given or computed); raises InvoiceError or MoneyError on bad figures."""
    currency = validate_currency(data.currency)
    if not data.invoice_number.strip():
        raise InvoiceError("an invoice needs the supplier's invoice number")
    if not data.lines:
        raise InvoiceError("an invoice needs at least one line")
    for amount, what in ((data.total, "the total"), (data.tax, "the tax")):
        if not amount.is_finite() or amount < 0:
            raise InvoiceError(f"{what} cannot be negative")
        _rounded(amount, currency, what)
    totals = []
    for n, item in enumerate(data.lines, start=1):
        if not item.quantity.is_finite() or item.quantity <= 0:
            raise InvoiceError(f"invoice line {n}: the quantity must be positive")
        if not item.unit_price.is_finite() or item.unit_price < 0:
            raise InvoiceError(f"invoice line {n}: the unit price cannot be negative")
        if item.line_total is None:
            totals.append(line_total(Money.of(item.unit_price, currency), item.quantity).amount)
        else:
            _rounded(item.line_total, currency, f"invoice line {n}'s total")
            totals.append(item.line_total)
    return totals


def _history(
    order: PurchaseOrder,
    note: str,
    actor_id: int | None,
    when: dt.datetime,
    detail: list[dict[str, Any]] | None = None,
) -> PurchaseOrderHistory:
    entry = PurchaseOrderHistory(
        from_status=order.status,
        to_status=order.status,
        actor_id=actor_id,
        at=when,
        note=note,
        detail=detail,
    )
    order.history.append(entry)
    return entry


def _count_invoiced(invoice: SupplierInvoice) -> None:
    for item in invoice.lines:
        if item.line is not None:
            item.line.invoiced_quantity += item.quantity


def record_invoice(
    session: Session,
    order: PurchaseOrder,
    data: InvoiceIn,
    *,
    tolerances: Tolerances,
    actor_id: int | None = None,
    now: dt.datetime | None = None,
) -> SupplierInvoice:
    """Store an invoice and match it three ways: MATCHED (quantities count as invoiced) or
    EXCEPTION with the findings listed; a matched invoice may complete the order."""
    when = now or utcnow()
    if order.status not in INVOICEABLE:
        raise PoTransitionError(f"{order.number} is {order.status}; it cannot take an invoice")
    try:
        totals = _validated(data)
    except MoneyError as exc:
        raise InvoiceError(str(exc)) from None
    taken = session.scalar(
        select(SupplierInvoice.id).where(
            SupplierInvoice.supplier_id == order.supplier_id,
            SupplierInvoice.invoice_number == data.invoice_number,
        )
    )
    if taken is not None:
        raise DuplicateInvoice("the supplier already sent an invoice under this number")
    by_no = {line.line_no: line for line in order.lines}
    invoice = SupplierInvoice(
        supplier_id=order.supplier_id,
        purchase_order_id=order.id,
        order=order,
        invoice_number=data.invoice_number,
        invoice_date=data.invoice_date,
        currency=data.currency,
        total=data.total,
        tax=data.tax,
        source=data.source,
    )
    for n, (item, total) in enumerate(zip(data.lines, totals, strict=True), start=1):
        target = by_no.get(item.order_line_no) if item.order_line_no is not None else None
        invoice.lines.append(
            SupplierInvoiceLine(
                line_no=n,
                purchase_order_line_id=target.id if target is not None else None,
                line=target,
                quantity=item.quantity,
                unit_price=item.unit_price,
                line_total=total,
                description=item.description,
            )
        )
    prior = session.scalars(
        select(SupplierInvoice).where(
            SupplierInvoice.purchase_order_id == order.id,
            SupplierInvoice.status != InvoiceStatus.REJECTED,
        )
    ).all()
    facts = InvoiceFacts(
        invoice_number=data.invoice_number,
        invoice_date=data.invoice_date,
        currency=data.currency,
        total=data.total,
        tax=data.tax,
        lines=[
            InvoiceLineFacts(n, item.order_line_no, item.quantity, item.unit_price, total)
            for n, (item, total) in enumerate(zip(data.lines, totals, strict=True), start=1)
        ],
    )
    found = three_way_match(
        order.currency,
        [
            OrderLineFacts(
                line.line_no,
                line.quantity,
                line.unit_price,
                line.received_quantity,
                line.invoiced_quantity,
            )
            for line in order.lines
        ],
        facts,
        tolerances,
        [PriorInvoice(p.invoice_number, p.invoice_date, p.total) for p in prior],
    )
    invoice.exceptions = [item.as_json() for item in found]
    invoice.status = InvoiceStatus.EXCEPTION if found else InvoiceStatus.MATCHED
    session.add(invoice)
    outcome = f"{len(found)} exception(s)" if found else "matched"
    _history(order, f"invoice {data.invoice_number} recorded: {outcome}", actor_id, when)
    if not found:
        _count_invoiced(invoice)
    session.flush()
    settle_invoiced(session, order, actor_id=actor_id, now=when)
    return invoice


def settle_invoiced(
    session: Session, order: PurchaseOrder, *, actor_id: int | None = None, now: dt.datetime
) -> bool:
    """Move a fully received order to INVOICED once everything received is invoiced and no
    invoice on it awaits a decision; True if it moved."""
    if order.status is not S.RECEIVED:
        return False
    if any(line.invoiced_quantity < line.received_quantity for line in order.lines):
        return False
    waiting = session.scalar(
        select(SupplierInvoice.id).where(
            SupplierInvoice.purchase_order_id == order.id,
            SupplierInvoice.status.in_(OPEN_INVOICE_STATUSES),
        )
    )
    if waiting is not None:
        return False
    move_order(order, S.INVOICED, actor_id=actor_id, now=now, note="everything received invoiced")
    return True


def approve_invoice(
    session: Session,
    invoice: SupplierInvoice,
    *,
    approver: User,
    reason: str,
    now: dt.datetime | None = None,
) -> None:
    """Accept an exception invoice for payment anyway; the reason stays in the order history."""
    when = now or utcnow()
    if Permission.SUPPLY_APPROVE not in approver.permissions:
        raise ApprovalRefused(f"the role {approver.role.value} may not approve invoices")
    if invoice.status is not InvoiceStatus.EXCEPTION:
        raise InvoiceStateError(
            f"only an invoice with exceptions is approved; it is {invoice.status}"
        )
    if not reason.strip():
        raise InvoiceError("approving an invoice with exceptions needs a reason")
    invoice.status = InvoiceStatus.APPROVED
    _count_invoiced(invoice)
    order = invoice.order
    detail = [
        {
            "line": item.get("line"),
            "field": "invoice_exception",
            "old": item.get("kind"),
            "new": "approved",
        }
        for item in invoice.exceptions
    ]
    _history(
        order,
        f"invoice {invoice.invoice_number} approved with {len(invoice.exceptions)} "
        f"exception(s): {reason.strip()}",
        approver.id,
        when,
        detail,
    )
    session.flush()
    settle_invoiced(session, order, actor_id=approver.id, now=when)


def reject_invoice(
    session: Session,
    invoice: SupplierInvoice,
    *,
    actor_id: int | None,
    reason: str,
    now: dt.datetime | None = None,
) -> None:
    """Refuse an exception invoice (a duplicate, a wrong price): it is not paid."""
    when = now or utcnow()
    if invoice.status is not InvoiceStatus.EXCEPTION:
        raise InvoiceStateError(
            f"only an invoice with exceptions is rejected; it is {invoice.status}"
        )
    if not reason.strip():
        raise InvoiceError("rejecting an invoice needs a reason")
    invoice.status = InvoiceStatus.REJECTED
    _history(
        invoice.order,
        f"invoice {invoice.invoice_number} rejected: {reason.strip()}",
        actor_id,
        when,
    )
    session.flush()
    settle_invoiced(session, invoice.order, actor_id=actor_id, now=when)


def close_order(
    order: PurchaseOrder,
    *,
    actor_id: int | None = None,
    note: str = "",
    now: dt.datetime | None = None,
) -> None:
    """Close an invoiced order: nothing more is expected or owed."""
    move_order(order, S.CLOSED, actor_id=actor_id, now=now, note=note or "closed")
