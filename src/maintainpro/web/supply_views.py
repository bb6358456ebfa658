"""What the supply-chain pages show, read from the database: supplier status, orders by state,
delivery performance, catalogue freshness, and the state of one order's lines."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from maintainpro.supply.catalogs import CatalogItem, PriceChange
from maintainpro.supply.performance import Metric, MetricKey, Period, Scorecard, scorecards
from maintainpro.supply.purchasing import (
    OPEN_PO_STATUSES,
    PoStatus,
    PurchaseOrder,
    PurchaseOrderLine,
)
from maintainpro.supply.receiving import GoodsReceipt
from maintainpro.supply.suppliers import Supplier, SupplierStatus
from maintainpro.web.charts import PALETTE

PERFORMANCE_WINDOW: Final = dt.timedelta(days=90)
# Existing badge colours reused for supplier states: green, amber, red, neutral.
SUPPLIER_TONES: Final = {
    SupplierStatus.ACTIVE: "operational",
    SupplierStatus.PENDING: "on_hold",
    SupplierStatus.BLOCKED: "down",
    SupplierStatus.INACTIVE: "inactive",
}


@dataclass(frozen=True)
class SupplierRow:
    """A supplier with its most recent order."""

    supplier: Supplier
    last_order: PurchaseOrder | None


def supplier_rows(db: Session) -> list[SupplierRow]:
    """Every supplier, by code, with its latest order."""
    latest = (
        select(PurchaseOrder.supplier_id, func.max(PurchaseOrder.id).label("last_id"))
        .group_by(PurchaseOrder.supplier_id)
        .subquery()
    )
    rows = db.execute(
        select(Supplier, PurchaseOrder)
        .outerjoin(latest, latest.c.supplier_id == Supplier.id)
        .outerjoin(PurchaseOrder, PurchaseOrder.id == latest.c.last_id)
        .order_by(Supplier.code)
    ).all()
    return [SupplierRow(supplier, order) for supplier, order in rows]


def count_by(db: Session, column: Any, members: Iterable[Any]) -> dict[Any, int]:
    """Rows per value of an enum column, every member present (zero when none)."""
    found: dict[Any, int] = {
        value: count for value, count in db.execute(select(column, func.count()).group_by(column))
    }
    return {member: int(found.get(member, 0)) for member in members}


def order_status_counts(db: Session) -> dict[PoStatus, int]:
    """Purchase orders per state, every state present."""
    return count_by(db, PurchaseOrder.status, PoStatus)


def supplier_status_counts(db: Session) -> dict[SupplierStatus, int]:
    """Suppliers per status, every status present."""
    return count_by(db, Supplier.status, SupplierStatus)


def open_value(db: Session) -> dict[str, Decimal]:
    """Value of orders still open (drafted up to partly received), per base currency."""
    rows = db.execute(
        select(PurchaseOrder.base_currency, func.sum(PurchaseOrder.total_base))
        .where(PurchaseOrder.status.in_(OPEN_PO_STATUSES))
        .group_by(PurchaseOrder.base_currency)
    )
    return {currency: Decimal(total or 0) for currency, total in rows}


def orders_figure(counts: Mapping[PoStatus, int]) -> dict[str, Any]:
    """A bar chart of orders per state, in the states' lifecycle order (Plotly JSON)."""
    labels = [status.value.replace("_", " ") for status in counts]
    return {
        "data": [
            {
                "type": "bar",
                "x": labels,
                "y": list(counts.values()),
                "marker": {"color": PALETTE[0]},
                "hovertemplate": "%{y} orders<extra>%{x}</extra>",
            }
        ],
        "layout": {
            "title": {"text": "Purchase orders by state", "font": {"size": 14}},
            "margin": {"l": 50, "r": 20, "t": 40, "b": 90},
            "height": 300,
            "xaxis": {"type": "category", "tickangle": -35},
            "yaxis": {"title": {"text": "orders"}, "rangemode": "tozero", "dtick": 1},
        },
    }


@dataclass(frozen=True)
class DeliveryRow:
    """Delivery figures of one supplier over the window."""

    supplier_id: int
    code: str
    name: str
    on_time: Metric
    lead_time: Metric
    grade: str | None


@dataclass(frozen=True)
class DeliveryPerformance:
    """Every supplier's on-time share and lead time, and the on-time share over all of them."""

    period: Period
    rows: list[DeliveryRow]
    on_time: int
    assessed: int

    @property
    def last_day(self) -> dt.date:
        """The last day the figures cover (the period's end is exclusive)."""
        return self.period.end - dt.timedelta(days=1)

    @property
    def on_time_pct(self) -> Decimal | None:
        """Receipts on or before their due date, in percent of dated receipts; None if none."""
        if not self.assessed:
            return None
        return (Decimal(100) * self.on_time / self.assessed).quantize(Decimal("0.1"))


def performance_period(today: dt.date) -> Period:
    """The last 90 days up to and including today."""
    return Period(today - PERFORMANCE_WINDOW + dt.timedelta(days=1), today + dt.timedelta(days=1))


def delivery_performance(
    db: Session, today: dt.date, *, supplier_ids: Sequence[int] | None = None
) -> DeliveryPerformance:
    """On-time delivery and lead time per supplier over the last 90 days."""
    period = performance_period(today)
    cards: list[Scorecard] = scorecards(db, period, supplier_ids=supplier_ids)
    rows = []
    on_time = assessed = 0
    for card in cards:
        metric = card.metric(MetricKey.ON_TIME)
        rows.append(
            DeliveryRow(
                card.supplier_id,
                card.code,
                card.name,
                metric,
                card.metric(MetricKey.LEAD_TIME),
                card.grade,
            )
        )
        on_time += int(metric.detail.get("on_time") or 0)
        assessed += metric.basis
    return DeliveryPerformance(period, rows, on_time, assessed)


@dataclass(frozen=True)
class CatalogFreshness:
    """How current one supplier's catalogue is."""

    supplier: Supplier
    items: int
    oldest_update: dt.datetime | None
    newest_update: dt.datetime | None
    expired: int


def last_price_updates(db: Session, items: Sequence[CatalogItem]) -> dict[int, dt.datetime]:
    """When each item's price was last set: its latest recorded change, else its loading."""
    changed: dict[int, dt.datetime] = {
        item_id: stamp
        for item_id, stamp in db.execute(
            select(PriceChange.catalog_item_id, func.max(PriceChange.changed_at))
            .where(PriceChange.catalog_item_id.in_([item.id for item in items]))
            .group_by(PriceChange.catalog_item_id)
        )
    }
    return {
        item.id: max(item.created_at, changed.get(item.id) or item.created_at) for item in items
    }


def catalog_freshness(db: Session, today: dt.date) -> list[CatalogFreshness]:
    """Per supplier: items, oldest and newest price update, items whose validity has ended."""
    items = db.scalars(select(CatalogItem)).all()
    updates = last_price_updates(db, items)
    by_supplier: dict[int, list[CatalogItem]] = defaultdict(list)
    for item in items:
        by_supplier[item.supplier_id].append(item)
    rows = []
    for supplier in db.scalars(select(Supplier).order_by(Supplier.code)):
        own = by_supplier.get(supplier.id, [])
        stamps = [updates[item.id] for item in own]
        rows.append(
            CatalogFreshness(
                supplier,
                len(own),
                min(stamps, default=None),
                max(stamps, default=None),
                sum(1 for item in own if item.valid_to is not None and item.valid_to < today),
            )
        )
    return rows


@dataclass(frozen=True)
class LineState:
    """One order line with its receipts and whether it is late."""

    line: PurchaseOrderLine
    receipts: list[GoodsReceipt]
    due: dt.date | None
    late: bool


def line_states(db: Session, order: PurchaseOrder, today: dt.date) -> list[LineState]:
    """The order's lines with receipts; late once a receipt, or today, passes the due date."""
    receipts: dict[int, list[GoodsReceipt]] = defaultdict(list)
    for receipt in db.scalars(
        select(GoodsReceipt)
        .where(GoodsReceipt.purchase_order_line_id.in_([line.id for line in order.lines]))
        .order_by(GoodsReceipt.received_at, GoodsReceipt.id)
    ):
        receipts[receipt.purchase_order_line_id].append(receipt)
    states = []
    for line in order.lines:
        own = receipts.get(line.id, [])
        due = line.promised_date or line.need_by
        late = False
        if due is not None and order.status is not PoStatus.CANCELLED:
            late = any(r.received_at.date() > due for r in own) or (
                line.outstanding > 0 and today > due and order.status in OPEN_PO_STATUSES
            )
        states.append(LineState(line, own, due, late))
    return states
