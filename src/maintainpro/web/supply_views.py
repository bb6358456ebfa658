"""What the supply-chain pages show, read from the database: supplier status, orders by state,
delivery performance, catalogue freshness, the state of one order's lines, and supplier
connectivity (connections, shipments on their way, catalogue synchronisation, the EDI archive)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session, selectinload

from maintainpro.supply.catalogs import CatalogItem, PriceChange
from maintainpro.supply.edi.archive import (
    AckState,
    Direction,
    DocumentStatus,
    EdiDocument,
    EdiInterchange,
    InterchangeStatus,
)
from maintainpro.supply.edi.partners import TradingPartner
from maintainpro.supply.erp_records import ErpSyncState
from maintainpro.supply.performance import Metric, MetricKey, Period, Scorecard, scorecards
from maintainpro.supply.purchasing import (
    OPEN_PO_STATUSES,
    RECEIVING_STATUSES,
    PoStatus,
    PurchaseOrder,
    PurchaseOrderLine,
)
from maintainpro.supply.receiving import GoodsReceipt
from maintainpro.supply.shipments import Shipment, ShipmentStatus
from maintainpro.supply.suppliers import Supplier, SupplierStatus
from maintainpro.supply.tracking import is_late
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


# --- supplier connectivity (issue 8) -----------------------------------------------------------


@dataclass(frozen=True)
class PollerView:
    """An SFTP poller as the dashboard shows it."""

    connected: bool | None
    last_poll_at: dt.datetime | None
    last_success_at: dt.datetime | None
    last_error: str | None


@dataclass(frozen=True)
class ConnectionRow:
    """One supplier's connection: channel, EDI partner, last exchanges, queues, ERP, SFTP."""

    supplier: Supplier
    partner: TradingPartner | None
    last_inbound: EdiInterchange | None
    last_outbound: EdiInterchange | None
    overdue_acks: int
    error_queue: int
    erp_connector: str | None
    erp_state: ErpSyncState | None
    sftp: PollerView | None
    sftp_problem: str | None


def _latest_interchanges(db: Session) -> dict[tuple[int, Direction], EdiInterchange]:
    latest = (
        select(func.max(EdiInterchange.id))
        .where(EdiInterchange.partner_id.is_not(None))
        .group_by(EdiInterchange.partner_id, EdiInterchange.direction)
    )
    rows = db.scalars(select(EdiInterchange).where(EdiInterchange.id.in_(latest)))
    return {(row.partner_id or 0, row.direction): row for row in rows}


def _per_partner(db: Session, stmt: Any) -> dict[int, int]:
    return {int(partner_id): int(n) for partner_id, n in db.execute(stmt) if partner_id is not None}


def erp_connectors_by_supplier(connections: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """Supplier code -> the configured ERP connection serving it (names only, no secrets)."""
    served: dict[str, str] = {}
    for connection in connections:
        for code in connection.get("suppliers") or ():
            served[str(code)] = str(connection.get("name", ""))
    return served


def connection_rows(
    db: Session,
    *,
    erp_by_supplier: Mapping[str, str],
    pollers: Mapping[int, PollerView],
    poller_problems: Mapping[int, str],
) -> list[ConnectionRow]:
    """Every supplier with its connection status, from a handful of grouped queries."""
    partners = {p.supplier_id: p for p in db.scalars(select(TradingPartner))}
    latest = _latest_interchanges(db)
    overdue = _per_partner(
        db,
        select(EdiInterchange.partner_id, func.count())
        .where(EdiInterchange.ack_state == AckState.OVERDUE)
        .group_by(EdiInterchange.partner_id),
    )
    failed = _per_partner(
        db,
        select(EdiInterchange.partner_id, func.count())
        .join(EdiDocument, EdiDocument.interchange_id == EdiInterchange.id)
        .where(EdiDocument.status == DocumentStatus.FAILED)
        .group_by(EdiInterchange.partner_id),
    )
    states = {s.connector: s for s in db.scalars(select(ErpSyncState))}
    rows = []
    for supplier in db.scalars(select(Supplier).order_by(Supplier.code)):
        partner = partners.get(supplier.id)
        pid = partner.id if partner is not None else -1
        connector = erp_by_supplier.get(supplier.code)
        rows.append(
            ConnectionRow(
                supplier=supplier,
                partner=partner,
                last_inbound=latest.get((pid, Direction.INBOUND)),
                last_outbound=latest.get((pid, Direction.OUTBOUND)),
                overdue_acks=overdue.get(pid, 0),
                error_queue=failed.get(pid, 0),
                erp_connector=connector,
                erp_state=states.get(connector) if connector else None,
                sftp=pollers.get(pid),
                sftp_problem=poller_problems.get(pid),
            )
        )
    return rows


@dataclass(frozen=True)
class TrackedShipment:
    """A shipment on its way to us, with its order and whether it is late."""

    shipment: Shipment
    order_number: str
    supplier_code: str
    late: bool


def shipments_in_transit(
    db: Session, now: dt.datetime, *, limit: int = 50
) -> list[TrackedShipment]:
    """Undelivered shipments of orders still receiving, soonest expected first."""
    rows = db.execute(
        select(Shipment, Supplier.code)
        .join(PurchaseOrder, PurchaseOrder.id == Shipment.purchase_order_id)
        .join(Supplier, Supplier.id == PurchaseOrder.supplier_id)
        .options(selectinload(Shipment.order))
        .where(
            Shipment.status != ShipmentStatus.DELIVERED,
            PurchaseOrder.status.in_(RECEIVING_STATUSES),
        )
        .order_by(Shipment.expected_delivery.is_(None), Shipment.expected_delivery, Shipment.id)
        .limit(limit)
    ).all()
    return [
        TrackedShipment(shipment, shipment.order.number, code, is_late(shipment, now))
        for shipment, code in rows
    ]


@dataclass(frozen=True)
class CatalogSync:
    """How one supplier's catalogue reaches us: the last 832, the ERP's item sync, changes."""

    supplier: Supplier
    last_832: EdiDocument | None
    items_in_832: int | None
    erp_connector: str | None
    erp_synced_at: dt.datetime | None
    erp_items: int | None
    last_change: dt.datetime | None
    changed_recently: int


CATALOG_CHANGE_WINDOW: Final = dt.timedelta(days=30)


def catalog_sync(
    db: Session, now: dt.datetime, *, erp_by_supplier: Mapping[str, str]
) -> list[CatalogSync]:
    """Per supplier: the last inbound 832, the ERP item sync, catalogue items changed lately."""
    latest_832 = (
        select(func.max(EdiDocument.id))
        .join(EdiInterchange, EdiInterchange.id == EdiDocument.interchange_id)
        .where(EdiDocument.set_id == "832", EdiInterchange.direction == Direction.INBOUND)
        .group_by(EdiInterchange.partner_id)
    )
    documents = {
        d.interchange.partner_id: d
        for d in db.scalars(select(EdiDocument).where(EdiDocument.id.in_(latest_832)))
    }
    partner_of = {p.supplier_id: p.id for p in db.scalars(select(TradingPartner))}
    since = now - CATALOG_CHANGE_WINDOW
    changes = {
        supplier_id: (last, int(recent or 0))
        for supplier_id, last, recent in db.execute(
            select(
                CatalogItem.supplier_id,
                func.max(CatalogItem.updated_at),
                func.sum(case((CatalogItem.updated_at >= since, 1), else_=0)),
            ).group_by(CatalogItem.supplier_id)
        )
    }
    states = {s.connector: s for s in db.scalars(select(ErpSyncState))}
    rows = []
    for supplier in db.scalars(select(Supplier).order_by(Supplier.code)):
        document = documents.get(partner_of.get(supplier.id, -1))
        parsed = document.parsed if document is not None else None
        items = parsed.get("items") if isinstance(parsed, dict) else None
        connector = erp_by_supplier.get(supplier.code)
        state = states.get(connector) if connector else None
        erp_counts = (state.detail or {}).get("counts", {}) if state is not None else {}
        last, recent = changes.get(supplier.id, (None, 0))
        rows.append(
            CatalogSync(
                supplier=supplier,
                last_832=document,
                items_in_832=len(items) if isinstance(items, list) else None,
                erp_connector=connector,
                erp_synced_at=state.last_success_at if state is not None else None,
                erp_items=int(erp_counts.get("item.applied", 0)) if state is not None else None,
                last_change=last,
                changed_recently=recent,
            )
        )
    return rows


@dataclass(frozen=True)
class InterchangeRow:
    """An archived interchange for the EDI page."""

    interchange: EdiInterchange
    partner_code: str | None
    sets: list[str]
    reason: str | None


def interchange_rows(
    db: Session,
    *,
    direction: Direction | None = None,
    status: InterchangeStatus | None = None,
    limit: int = 100,
) -> list[InterchangeRow]:
    """The newest interchanges, optionally of one direction and status, with the first reason."""
    stmt = (
        select(EdiInterchange)
        .options(selectinload(EdiInterchange.documents))
        .order_by(EdiInterchange.id.desc())
        .limit(limit)
    )
    if direction is not None:
        stmt = stmt.where(EdiInterchange.direction == direction)
    if status is not None:
        stmt = stmt.where(EdiInterchange.status == status)
    rows = db.scalars(stmt).all()
    codes = _supplier_codes(db, {r.partner_id for r in rows if r.partner_id is not None})
    return [
        InterchangeRow(
            row,
            codes.get(row.partner_id) if row.partner_id is not None else None,
            [d.set_id for d in row.documents],
            _first_reason(row.errors),
        )
        for row in rows
    ]


@dataclass(frozen=True)
class QueuedDocument:
    """A document in the error queue: what failed, for which partner, why."""

    document: EdiDocument
    partner_code: str | None
    reason: str | None


def error_queue(db: Session, *, limit: int = 200) -> list[QueuedDocument]:
    """Inbound documents that failed to apply, oldest first (the order to work them off)."""
    documents = db.scalars(
        select(EdiDocument)
        .join(EdiInterchange, EdiInterchange.id == EdiDocument.interchange_id)
        .where(
            EdiDocument.status == DocumentStatus.FAILED,
            EdiInterchange.direction == Direction.INBOUND,
        )
        .order_by(EdiDocument.id)
        .limit(limit)
    ).all()
    partner_ids = {d.interchange.partner_id for d in documents}
    codes = _supplier_codes(db, {p for p in partner_ids if p is not None})
    return [
        QueuedDocument(
            d,
            codes.get(d.interchange.partner_id) if d.interchange.partner_id else None,
            _first_reason(d.errors),
        )
        for d in documents
    ]


def _supplier_codes(db: Session, partner_ids: set[int]) -> dict[int, str]:
    if not partner_ids:
        return {}
    return {
        partner_id: code
        for partner_id, code in db.execute(
            select(TradingPartner.id, Supplier.code)
            .join(Supplier, Supplier.id == TradingPartner.supplier_id)
            .where(TradingPartner.id.in_(partner_ids))
        )
    }


def _first_reason(errors: Sequence[Mapping[str, Any]] | None) -> str | None:
    # The archive's messages are our own wording with the partner's values quoted; the page
    # escapes them like any other text.
    for entry in errors or ():
        if entry.get("code") != "warning":
            return f"{entry.get('code')}: {entry.get('message', '')}"[:300]
    return None


# Badge tones (the existing green, amber, red, neutral badges) for EDI states.
EDI_TONES: Final = {
    InterchangeStatus.APPLIED.value: "operational",
    InterchangeStatus.SENT.value: "operational",
    InterchangeStatus.RECEIVED.value: "inactive",
    InterchangeStatus.QUEUED.value: "on_hold",
    InterchangeStatus.PARTIALLY_APPLIED.value: "on_hold",
    InterchangeStatus.DUPLICATE.value: "on_hold",
    InterchangeStatus.FAILED.value: "down",
    InterchangeStatus.REJECTED.value: "down",
    AckState.ACCEPTED.value: "operational",
    AckState.ACCEPTED_WITH_ERRORS.value: "on_hold",
    AckState.PENDING.value: "inactive",
    AckState.NOT_REQUESTED.value: "inactive",
    AckState.REJECTED.value: "down",
    AckState.OVERDUE.value: "down",
    DocumentStatus.PENDING.value: "inactive",
    DocumentStatus.IGNORED.value: "inactive",
}
