"""Automatic sourcing: choose a supplier per requisition line and draft one order per supplier.

Choice order: a valid contract price, then the preferred supplier, then the lowest landed cost
in base currency among suppliers whose lead time meets the need date. Every choice is
explained on the order line.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from maintainpro.core.inventory import Part
from maintainpro.supply.catalogs import CatalogItem, order_quantity, round_to_packs, unit_price_for
from maintainpro.supply.contracts import Contract, ContractPrice
from maintainpro.supply.fx import FxConverter, FxError
from maintainpro.supply.money import Money, line_total
from maintainpro.supply.purchasing import PurchaseOrder, add_line, new_purchase_order
from maintainpro.supply.requisitions import RequisitionLine, RequisitionLineStatus, lock_if_open
from maintainpro.supply.suppliers import Supplier, SupplierStatus

HUNDRED = Decimal(100)


def qty_text(quantity: Decimal) -> str:
    """A quantity without trailing zeros, as people write it (13, 2.5)."""
    return f"{quantity.normalize():f}"


@dataclass(frozen=True)
class Offer:
    """One way to buy a requisition line: supplier, quantity, price and what it costs us."""

    supplier: Supplier
    quantity: Decimal
    unit_price: Decimal
    currency: str
    total: Money
    landed_base: Money
    lead_time_days: int
    catalog_item: CatalogItem | None = None
    contract: Contract | None = None

    def arrives_by(self, today: dt.date) -> dt.date:
        """Expected delivery day when ordered today."""
        return today + dt.timedelta(days=self.lead_time_days)


@dataclass(frozen=True)
class Choice:
    """The offer taken for a line and why."""

    offer: Offer
    explanation: str


@dataclass
class AutoPoResult:
    """What an automatic run did."""

    orders: list[PurchaseOrder] = field(default_factory=list)
    considered: int = 0
    ordered: int = 0
    left_for_buyer: list[int] = field(default_factory=list)

    @property
    def automation_rate(self) -> Decimal:
        """Share of requisition lines that became order lines without a human step (0..1)."""
        if self.considered == 0:
            return Decimal(0)
        return (Decimal(self.ordered) / Decimal(self.considered)).quantize(Decimal("0.0001"))


def _landed(total: Money, pct: Decimal, base_currency: str, fx: FxConverter, on: dt.date) -> Money:
    gross = total + total * (pct / HUNDRED) if pct else total
    return fx.convert(gross, base_currency, on).converted


def catalog_offers(
    session: Session,
    line: RequisitionLine,
    *,
    base_currency: str,
    fx: FxConverter,
    today: dt.date,
) -> list[Offer]:
    """Priced offers from every active supplier's valid catalogue items for the line's part."""
    items = session.scalars(
        select(CatalogItem)
        .join(Supplier, Supplier.id == CatalogItem.supplier_id)
        .where(CatalogItem.part_id == line.part_id, Supplier.status == SupplierStatus.ACTIVE)
        .order_by(CatalogItem.id)
    ).all()
    offers: list[Offer] = []
    for item in items:
        if not item.valid_on(today) or not item.price_breaks:
            continue
        quantity = order_quantity(line.quantity, item)
        price = unit_price_for(item, quantity)
        total = line_total(Money.of(price, item.currency), quantity)
        try:
            landed = _landed(total, item.landed_cost_pct, base_currency, fx, today)
        except FxError:
            continue  # without a rate the offer cannot be compared, so it is not one
        offers.append(
            Offer(
                supplier=item.supplier,
                quantity=quantity,
                unit_price=price,
                currency=item.currency,
                total=total,
                landed_base=landed,
                lead_time_days=item.lead_time_days,
                catalog_item=item,
            )
        )
    return offers


def contract_offers(
    session: Session,
    line: RequisitionLine,
    *,
    base_currency: str,
    fx: FxConverter,
    today: dt.date,
) -> list[Offer]:
    """Offers at contract prices from usable contracts whose cap still covers the line."""
    rows = session.execute(
        select(Contract, ContractPrice)
        .join(ContractPrice, ContractPrice.contract_id == Contract.id)
        .join(Supplier, Supplier.id == Contract.supplier_id)
        .where(ContractPrice.part_id == line.part_id, Supplier.status == SupplierStatus.ACTIVE)
        .order_by(Contract.id)
    ).all()
    offers: list[Offer] = []
    for contract, price in rows:
        if not contract.usable_on(today):
            continue
        # The supplier's catalogue item, when there is one, gives pack size and lead time.
        item = session.scalar(
            select(CatalogItem)
            .where(
                CatalogItem.supplier_id == contract.supplier_id,
                CatalogItem.part_id == line.part_id,
            )
            .order_by(CatalogItem.id)
            .limit(1)
        )
        pack = item.pack_size if item is not None else Decimal(1)
        quantity = round_to_packs(line.quantity, pack)
        total = line_total(Money.of(price.unit_price, contract.currency), quantity)
        if not contract.covers(total.amount):
            continue
        pct = item.landed_cost_pct if item is not None else Decimal(0)
        try:
            landed = _landed(total, pct, base_currency, fx, today)
        except FxError:
            continue
        offers.append(
            Offer(
                supplier=contract.supplier,
                quantity=quantity,
                unit_price=price.unit_price,
                currency=contract.currency,
                total=total,
                landed_base=landed,
                lead_time_days=item.lead_time_days if item is not None else 0,
                catalog_item=item,
                contract=contract,
            )
        )
    return offers


def choose_offer(
    contract: Sequence[Offer], catalog: Sequence[Offer], *, need_by: dt.date | None, today: dt.date
) -> Choice | None:
    """Pick an offer: contract first, then preferred supplier, then lowest landed cost in time."""

    def in_time(offer: Offer) -> bool:
        return need_by is None or offer.arrives_by(today) <= need_by

    def cost(offer: Offer) -> tuple[Decimal, int, int]:
        return (offer.landed_base.amount, offer.lead_time_days, offer.supplier.id)

    if contract:
        best = min(contract, key=cost)
        return Choice(
            best,
            f"contract {best.contract.number if best.contract else '?'} price "
            f"{best.unit_price} {best.currency} with {best.supplier.code} "
            f"(contract prices come first)",
        )
    preferred = sorted((o for o in catalog if o.supplier.preferred and in_time(o)), key=cost)
    if preferred:
        best = preferred[0]
        return Choice(
            best,
            f"preferred supplier {best.supplier.code} at {best.unit_price} {best.currency} "
            f"for {qty_text(best.quantity)}, delivery in {best.lead_time_days} days",
        )
    timely = sorted((o for o in catalog if in_time(o)), key=cost)
    if timely:
        best = timely[0]
        others = ", ".join(f"{o.supplier.code} {o.landed_base}" for o in timely[1:3])
        return Choice(
            best,
            f"lowest landed cost {best.landed_base} ({best.total} from {best.supplier.code}) "
            f"among {len(timely)} supplier(s) meeting the need date"
            + (f"; next: {others}" if others else ""),
        )
    return None


def _explain_missing(catalog: Sequence[Offer], need_by: dt.date | None) -> str:
    if catalog:
        return f"no supplier can deliver by {need_by}; a buyer must decide"
    return "no contract and no valid catalogue price for this part"


def generate_purchase_orders(
    session: Session,
    *,
    base_currency: str,
    fx: FxConverter,
    today: dt.date,
    created_by_id: int | None = None,
    now: dt.datetime | None = None,
) -> AutoPoResult:
    """Source every open requisition line and consolidate the lines into a draft per supplier.

    Safe to run concurrently: each line is claimed (see ``lock_if_open``) before it is ordered,
    so a line is ordered by exactly one run; lines another run took are not counted.
    """
    result = AutoPoResult()
    lines = session.scalars(
        select(RequisitionLine)
        .where(RequisitionLine.status == RequisitionLineStatus.OPEN)
        .order_by(RequisitionLine.id)
    ).all()
    drafts: dict[tuple[int, str], PurchaseOrder] = {}
    for line in lines:
        contract = contract_offers(session, line, base_currency=base_currency, fx=fx, today=today)
        catalog = catalog_offers(session, line, base_currency=base_currency, fx=fx, today=today)
        choice = choose_offer(contract, catalog, need_by=line.need_by, today=today)
        # Another run (the reorder job, a buyer's request) may have ordered the line since it was
        # read: claim it before writing anything, and leave it alone if it is gone.
        if not lock_if_open(session, line):
            continue
        result.considered += 1
        if choice is None:
            line.sourcing_note = _explain_missing(catalog, line.need_by)
            result.left_for_buyer.append(line.id)
            continue
        offer = choice.offer
        key = (offer.supplier.id, offer.currency)
        order = drafts.get(key)
        # Lines drafted earlier in this run count against the cap too, or two lines could
        # each fit a cap that cannot hold both.
        if (
            offer.contract is not None
            and order is not None
            and not offer.contract.covers(offer.total.amount + _pending(order, offer.contract.id))
        ):
            line.sourcing_note = f"contract {offer.contract.number} cap would be exceeded"
            result.left_for_buyer.append(line.id)
            continue
        if order is None:
            order = new_purchase_order(
                session,
                supplier=offer.supplier,
                currency=offer.currency,
                base_currency=base_currency,
                rate=fx.rate(offer.currency, base_currency, today),
                automatic=True,
                created_by_id=created_by_id,
                now=now,
            )
            drafts[key] = order
            result.orders.append(order)
        part = session.get(Part, line.part_id)
        note = choice.explanation
        if offer.quantity != line.quantity:
            note += (
                f"; {qty_text(line.quantity)} needed, {qty_text(offer.quantity)} ordered "
                "(minimum or whole packs)"
            )
        add_line(
            order,
            part_id=line.part_id,
            quantity=offer.quantity,
            unit_price=offer.unit_price,
            explanation=f"{part.number if part else line.part_id}: {note}",
            need_by=line.need_by,
            requisition_line_id=line.id,
            catalog_item_id=offer.catalog_item.id if offer.catalog_item else None,
            contract_id=offer.contract.id if offer.contract else None,
            stock_level_id=line.stock_level_id,
        )
        line.status = RequisitionLineStatus.ORDERED
        line.sourcing_note = None
        result.ordered += 1
    session.flush()
    return result


def _pending(order: PurchaseOrder, contract_id: int) -> Decimal:
    return sum(
        (line.line_total for line in order.lines if line.contract_id == contract_id), Decimal(0)
    )
