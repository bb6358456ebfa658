"""fact_invoice and fact_spend: supplier invoices and spend per line in base currency.

An invoice in its order's currency converts at the order's stored rate, so spend never moves
after the fact; an invoice in another currency converts at the stored exchange rate of its
invoice date (and stays without a base amount when no rate exists). Rejected invoices are
not spend.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, select

from maintainpro.analytics import schema
from maintainpro.analytics.extract import to_arrow
from maintainpro.analytics.jobs.base import (
    JobResult,
    Window,
    changed_since,
    chunks,
    rate_lookup,
    source,
)
from maintainpro.analytics.jobs.purchasing import order_rate
from maintainpro.analytics.schema import WarehouseTable
from maintainpro.analytics.transforms import date_key
from maintainpro.analytics.warehouse import WarehouseTarget
from maintainpro.supply.fx import AppliedRate
from maintainpro.supply.money import Money

NOT_SPEND = frozenset({"rejected"})


def _day(value: Any) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))


@dataclass(frozen=True)
class InvoicesJob:
    """Supplier invoices and their lines."""

    name: str = "fact_invoice"
    description: str = "Supplier invoices and spend per line in base currency."
    outputs: tuple[WarehouseTable, ...] = (schema.FACT_INVOICE, schema.FACT_SPEND)
    overlap: dt.timedelta = dt.timedelta(minutes=10)

    def run(self, source_db: Connection, target: WarehouseTarget, window: Window) -> JobResult:
        """Replace the changed invoices and their spend lines."""
        inv, po = source("supplier_invoices"), source("purchase_orders")
        inv_lines, po_lines = source("supplier_invoice_lines"), source("purchase_order_lines")
        stmt = select(
            inv,
            po.c.currency.label("po_currency"),
            po.c.base_currency,
            po.c.fx_rate,
            po.c.fx_rate_date,
            po.c.fx_source,
            po.c.fx_requested_date,
        ).join(po, po.c.id == inv.c.purchase_order_id)
        if window.since is not None:
            stmt = stmt.where(changed_since(inv, window.since))
        invoices = source_db.execute(stmt.order_by(inv.c.id)).all()
        lines_of: dict[int, list[Any]] = defaultdict(list)
        for some in chunks([i.id for i in invoices]):
            line_stmt = (
                select(inv_lines, po_lines.c.part_id)
                .outerjoin(po_lines, po_lines.c.id == inv_lines.c.purchase_order_line_id)
                .where(inv_lines.c.invoice_id.in_(some))
                .order_by(inv_lines.c.id)
            )
            for line in source_db.execute(line_stmt):
                lines_of[line.invoice_id].append(line)
        rates = rate_lookup(source_db, window.base_currency)
        invoice_rows, spend_rows = [], []
        for i in invoices:
            rate = self.rate(i, window.base_currency, rates)
            total_base = (
                rate.convert(Money.of(Decimal(i.total), i.currency)).amount if rate else None
            )
            invoice_rows.append(
                (
                    i.id,
                    i.supplier_id,
                    i.purchase_order_id,
                    i.invoice_number,
                    _day(i.invoice_date),
                    date_key(_day(i.invoice_date)),
                    str(i.status),
                    i.currency,
                    i.total,
                    i.tax,
                    window.base_currency,
                    total_base,
                    len(i.exceptions or []),
                )
            )
            if str(i.status) in NOT_SPEND:
                continue
            for line in lines_of[i.id]:
                amount = Money.of(Decimal(line.line_total), i.currency)
                spend_rows.append(
                    (
                        line.id,
                        i.id,
                        i.supplier_id,
                        line.part_id,
                        i.purchase_order_id,
                        date_key(_day(i.invoice_date)),
                        i.currency,
                        line.line_total,
                        rate.rate if rate else None,
                        window.base_currency,
                        rate.convert(amount).amount if rate else None,
                    )
                )
        invoice_table = to_arrow(invoice_rows, schema.FACT_INVOICE.arrow_schema)
        spend_table = to_arrow(spend_rows, schema.FACT_SPEND.arrow_schema)
        if window.full:
            target.delete_all(schema.FACT_INVOICE)
            target.delete_all(schema.FACT_SPEND)
        else:
            target.delete_keys(schema.FACT_INVOICE, invoice_table)
            target.delete_keys(schema.FACT_SPEND, invoice_table, on=("invoice_key",))
        written = target.insert(schema.FACT_INVOICE, invoice_table)
        written += target.insert(schema.FACT_SPEND, spend_table)
        return JobResult(rows_in=len(invoices) + len(spend_rows), rows_out=written)

    @staticmethod
    def rate(invoice: Any, base_currency: str, rates: Any) -> AppliedRate | None:
        """The order's stored rate for an invoice in the order's currency, else the day's."""
        if invoice.currency == invoice.po_currency and invoice.base_currency == base_currency:
            return order_rate(
                _Rate(
                    invoice.po_currency,
                    invoice.base_currency,
                    invoice.fx_rate,
                    invoice.fx_rate_date,
                    invoice.fx_source,
                    invoice.fx_requested_date,
                )
            )
        found: AppliedRate | None = rates.on(_day(invoice.invoice_date))(invoice.currency)
        return found


@dataclass(frozen=True)
class _Rate:
    currency: str
    base_currency: str
    fx_rate: Decimal
    fx_rate_date: dt.date
    fx_source: str
    fx_requested_date: dt.date
