"""fact_po_line and fact_receipt: what was ordered, at what price in base currency, and what
arrived when.

An order is reloaded whole (all its lines) when it changed, its history grew, a receipt or an
invoice was booked against it. Receipts are never edited, so new ones are found by id as well
as by time (a receipt may be booked with an earlier ``received_at``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Select, or_, select, union

from maintainpro.analytics import schema
from maintainpro.analytics.extract import to_arrow
from maintainpro.analytics.jobs.base import JobResult, Window, source
from maintainpro.analytics.schema import WarehouseTable
from maintainpro.analytics.transforms import date_key, utc
from maintainpro.analytics.warehouse import WarehouseTarget
from maintainpro.supply.fx import AppliedRate
from maintainpro.supply.money import Money


def order_rate(order: Any) -> AppliedRate:
    """The rate an order was priced at, as stored on it."""
    return AppliedRate(
        order.currency,
        order.base_currency,
        Decimal(order.fx_rate),
        order.fx_rate_date,
        order.fx_source,
        order.fx_requested_date,
    )


def _day(value: Any) -> dt.date | None:
    if value is None or isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value))


def changed_orders(since: dt.datetime, receipt_id_above: int) -> Select[Any]:
    """Ids of orders touched since ``since`` or having receipts with a larger id."""
    po, history = source("purchase_orders"), source("purchase_order_history")
    lines, receipts, invoices = (
        source("purchase_order_lines"),
        source("goods_receipts"),
        source("supplier_invoices"),
    )
    return select(
        union(
            select(po.c.id).where(po.c.updated_at >= since),
            select(history.c.purchase_order_id).where(history.c.at >= since),
            select(lines.c.purchase_order_id)
            .join(receipts, receipts.c.purchase_order_line_id == lines.c.id)
            .where(or_(receipts.c.received_at >= since, receipts.c.id > receipt_id_above)),
            select(invoices.c.purchase_order_id).where(invoices.c.updated_at >= since),
        ).subquery()
    )


@dataclass(frozen=True)
class PurchasingJob:
    """Purchase-order lines and goods receipts."""

    name: str = "fact_purchasing"
    description: str = "Purchase-order lines in base currency and goods receipts."
    outputs: tuple[WarehouseTable, ...] = (schema.FACT_PO_LINE, schema.FACT_RECEIPT)
    overlap: dt.timedelta = dt.timedelta(minutes=10)

    def run(self, source_db: Connection, target: WarehouseTarget, window: Window) -> JobResult:
        """Replace the touched orders' lines and receipts."""
        po, lines, receipts = (
            source("purchase_orders"),
            source("purchase_order_lines"),
            source("goods_receipts"),
        )
        ids = None
        if window.since is not None:
            last_receipt = target.max_value(schema.FACT_RECEIPT, "receipt_key") or 0
            ids = changed_orders(window.since, int(last_receipt))
        line_stmt = select(
            lines,
            po.c.supplier_id,
            po.c.status,
            po.c.created_at,
            po.c.approved_at,
            po.c.currency,
            po.c.fx_rate,
            po.c.fx_rate_date,
            po.c.fx_source,
            po.c.fx_requested_date,
            po.c.base_currency,
        ).join(po, po.c.id == lines.c.purchase_order_id)
        receipt_stmt = (
            select(
                receipts,
                lines.c.purchase_order_id,
                lines.c.part_id,
                lines.c.need_by,
                po.c.supplier_id,
                po.c.sent_at,
                po.c.created_at.label("ordered_at"),
            )
            .join(lines, lines.c.id == receipts.c.purchase_order_line_id)
            .join(po, po.c.id == lines.c.purchase_order_id)
        )
        if ids is not None:
            line_stmt = line_stmt.where(lines.c.purchase_order_id.in_(ids))
            receipt_stmt = receipt_stmt.where(lines.c.purchase_order_id.in_(ids))
        line_rows = [self.line_row(r) for r in source_db.execute(line_stmt.order_by(lines.c.id))]
        receipt_rows = [
            self.receipt_row(r) for r in source_db.execute(receipt_stmt.order_by(receipts.c.id))
        ]
        line_table = to_arrow(line_rows, schema.FACT_PO_LINE.arrow_schema)
        receipt_table = to_arrow(receipt_rows, schema.FACT_RECEIPT.arrow_schema)
        if window.full:
            target.delete_all(schema.FACT_PO_LINE)
            target.delete_all(schema.FACT_RECEIPT)
        else:
            target.delete_keys(schema.FACT_PO_LINE, line_table, on=("purchase_order_key",))
            target.delete_keys(schema.FACT_RECEIPT, line_table, on=("purchase_order_key",))
        written = target.insert(schema.FACT_PO_LINE, line_table)
        written += target.insert(schema.FACT_RECEIPT, receipt_table)
        return JobResult(rows_in=len(line_rows) + len(receipt_rows), rows_out=written)

    @staticmethod
    def line_row(r: Any) -> tuple[Any, ...]:
        """One fact_po_line row; the base amount at the order's stored rate, rounded once."""
        total = Money.of(Decimal(r.line_total), r.currency)
        base = order_rate(r).convert(total).amount
        return (
            r.id,
            r.purchase_order_id,
            r.line_no,
            r.supplier_id,
            r.part_id,
            str(r.status),
            utc(r.created_at),
            date_key(r.created_at),
            utc(r.approved_at),
            _day(r.need_by),
            _day(r.promised_date),
            r.quantity,
            r.received_quantity,
            r.rejected_quantity,
            r.invoiced_quantity,
            r.unit_price,
            r.currency,
            r.line_total,
            r.fx_rate,
            r.base_currency,
            base,
        )

    @staticmethod
    def receipt_row(r: Any) -> tuple[Any, ...]:
        """One fact_receipt row with lead time (from sending) and days late (vs need-by)."""
        sent = r.sent_at or r.ordered_at
        lead = (r.received_at - sent).total_seconds() / 86400.0 if sent else None
        need_by = _day(r.need_by)
        late = (r.received_at.date() - need_by).days if need_by else None
        return (
            r.id,
            r.purchase_order_line_id,
            r.purchase_order_id,
            r.supplier_id,
            r.part_id,
            utc(r.received_at),
            date_key(r.received_at),
            r.quantity_received,
            r.quantity_rejected,
            lead,
            late,
        )
