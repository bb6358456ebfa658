"""Spend analytics in the company's base currency: by supplier, category, site, asset, period.

Also contract against off-contract (maverick) spend, price variance against the contract price
and the last price paid, savings from contracts and supplier concentration. The rules are pure
functions over plain facts (:class:`SpendOrderFact`); :func:`load_spend_facts` reads them.
docs/procurement-analytics.md explains which orders count, conversion and rounding.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import TypeVar

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session, selectinload

from maintainpro.core.assets import Asset, Location, Site
from maintainpro.core.inventory import StockLevel
from maintainpro.core.work_orders import WorkOrder
from maintainpro.supply.catalogs import CatalogItem, NoPrice, PriceChange, break_for
from maintainpro.supply.money import Money, allocate, sum_money
from maintainpro.supply.performance import (
    ContractTerm,
    Period,
    best_contract_price,
    load_contract_terms,
    percent,
    utc_day,
)
from maintainpro.supply.purchasing import PoStatus, PurchaseOrder, PurchaseOrderLine
from maintainpro.supply.requisitions import RequisitionLine

ZERO = Decimal(0)
UNASSIGNED = "unassigned"
# Committed spend: approved and every state after it. Drafts are not commitments yet and
# cancelled orders were withdrawn.
COMMITTED_STATUSES = frozenset(PoStatus) - {PoStatus.DRAFT, PoStatus.CANCELLED}
_CHUNK = 500
T = TypeVar("T")


class SpendGrouping(enum.StrEnum):
    """What spend is grouped by."""

    SUPPLIER = "supplier"
    CATEGORY = "category"
    SITE = "site"
    ASSET = "asset"
    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"


_CALENDAR = frozenset({SpendGrouping.MONTH, SpendGrouping.QUARTER, SpendGrouping.YEAR})


# --- facts ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SpendLineFact:
    """One line of a committed order, with what it is compared against."""

    line_no: int
    part_id: int
    part_number: str
    category: str
    quantity: Decimal
    unit_price: Decimal
    line_total: Decimal
    site: str | None = None
    asset: str | None = None
    contract_id: int | None = None
    # The contract price the line is measured against, in the order's currency: the line's
    # own contract's, else the lowest valid one of any supplier; None when there is none.
    contract_price: Decimal | None = None
    # Any supplier had a valid contract price for the part on the order's day (any currency).
    contract_available: bool = False
    # The catalogue list price at the line's quantity on the order's day, order currency.
    list_price: Decimal | None = None


@dataclass(frozen=True, slots=True)
class SpendOrderFact:
    """One committed purchase order with its stored rate and totals."""

    order_id: int
    number: str
    supplier_code: str
    supplier_name: str
    day: dt.date
    currency: str
    base_currency: str
    fx_rate: Decimal
    total: Decimal
    total_base: Decimal
    lines: tuple[SpendLineFact, ...] = ()


@dataclass(frozen=True, slots=True)
class SpendItem:
    """A line with its order and its amount in base currency."""

    order: SpendOrderFact
    line: SpendLineFact
    base: Money


# --- conversion -----------------------------------------------------------------------------


def to_base(amount: Decimal, rate: Decimal, base_currency: str, *factors: Decimal) -> Money:
    """amount (x factors) at the order's stored rate, rounded once, half up, to the minor unit."""
    # Money multiplies exactly; plain Decimal arithmetic would round at 28 digits first.
    exact = Money(amount, base_currency)
    for factor in factors:
        exact = exact * factor
    return (exact * rate).round()


def line_amounts_in_base(order: SpendOrderFact) -> list[Money]:
    """Each line's share of the order's stored total_base, adding up to it exactly.

    total_base is the order total times the stored rate, rounded once; it is split over the
    lines by their totals with the largest-remainder method. When the stored totals no longer
    match the lines (or all lines are free), each line total is converted on its own instead.
    """
    totals = [line.line_total for line in order.lines]
    if not totals:
        return []
    base_total = Money(order.total_base, order.base_currency)
    if sum(totals, ZERO) == order.total and any(totals) and base_total.is_rounded:
        return allocate(base_total, totals)
    return [to_base(t, order.fx_rate, order.base_currency) for t in totals]


def spend_items(
    orders: Iterable[SpendOrderFact], period: Period, base_currency: str
) -> tuple[list[SpendItem], int]:
    """The period's lines in base currency, and how many orders had another base currency."""
    items: list[SpendItem] = []
    skipped = 0
    for order in orders:
        if not period.contains(order.day):
            continue
        if order.base_currency != base_currency:
            skipped += 1
            continue
        for line, base in zip(order.lines, line_amounts_in_base(order), strict=True):
            items.append(SpendItem(order, line, base))
    return items, skipped


# --- grouping -------------------------------------------------------------------------------


def period_key(day: dt.date, grouping: SpendGrouping) -> str:
    """The calendar bucket of a day: 2026-11, 2026-Q4 or 2026."""
    if grouping is SpendGrouping.MONTH:
        return f"{day.year:04d}-{day.month:02d}"
    if grouping is SpendGrouping.QUARTER:
        return f"{day.year:04d}-Q{(day.month - 1) // 3 + 1}"
    if grouping is SpendGrouping.YEAR:
        return f"{day.year:04d}"
    raise ValueError(f"{grouping} is not a calendar grouping")


def _key(item: SpendItem, grouping: SpendGrouping) -> tuple[str, str]:
    """(key, label) of an item's group."""
    if grouping is SpendGrouping.SUPPLIER:
        return item.order.supplier_code, item.order.supplier_name
    if grouping is SpendGrouping.CATEGORY:
        return item.line.category, item.line.category
    if grouping is SpendGrouping.SITE:
        site = item.line.site or UNASSIGNED
        return site, site
    if grouping is SpendGrouping.ASSET:
        asset = item.line.asset or UNASSIGNED
        return asset, asset
    key = period_key(item.order.day, grouping)
    return key, key


@dataclass(frozen=True)
class SpendGroup:
    """Spend of one group."""

    key: str
    label: str
    amount: Money
    share_pct: Decimal | None
    orders: int
    lines: int


@dataclass(frozen=True)
class SpendReport:
    """Spend in a period grouped one way, largest first (calendar groups in date order)."""

    period: Period
    base_currency: str
    group_by: SpendGrouping
    total: Money
    groups: tuple[SpendGroup, ...]
    orders: int
    skipped_orders: int


def _share(amount: Money, total: Money) -> Decimal | None:
    return percent(amount.amount, total.amount) if total.amount > 0 else None


def spend_by(
    orders: Iterable[SpendOrderFact],
    period: Period,
    *,
    base_currency: str,
    group_by: SpendGrouping,
) -> SpendReport:
    """Committed spend in the period, in base currency, grouped."""
    items, skipped = spend_items(orders, period, base_currency)
    total = sum_money((i.base for i in items), base_currency)
    buckets: dict[str, list[SpendItem]] = defaultdict(list)
    labels: dict[str, str] = {}
    for item in items:
        key, label = _key(item, group_by)
        buckets[key].append(item)
        labels.setdefault(key, label)
    groups = [
        SpendGroup(
            key=key,
            label=labels[key],
            amount=(amount := sum_money((i.base for i in members), base_currency)),
            share_pct=_share(amount, total),
            orders=len({i.order.order_id for i in members}),
            lines=len(members),
        )
        for key, members in buckets.items()
    ]
    if group_by in _CALENDAR:
        groups.sort(key=lambda g: g.key)
    else:
        groups.sort(key=lambda g: (-g.amount.amount, g.key))
    return SpendReport(
        period=period,
        base_currency=base_currency,
        group_by=group_by,
        total=total,
        groups=tuple(groups),
        orders=len({i.order.order_id for i in items}),
        skipped_orders=skipped,
    )


# --- summary --------------------------------------------------------------------------------


@dataclass(frozen=True)
class PartVariance:
    """Variance on one part."""

    part_number: str
    lines: int
    amount: Money


@dataclass(frozen=True)
class PriceVariance:
    """What was paid above (positive) or below (negative) a reference price, in base currency."""

    lines_compared: int
    total: Money
    above: Money
    below: Money
    by_part: tuple[PartVariance, ...]


@dataclass(frozen=True)
class Savings:
    """List price minus contract price, times quantity, over lines bought on contract."""

    total: Money
    lines: int
    lines_without_list_price: int


@dataclass(frozen=True)
class SupplierShare:
    """One supplier's spend and share."""

    code: str
    name: str
    amount: Money
    share_pct: Decimal | None


@dataclass(frozen=True)
class Concentration:
    """How much of the spend sits with few suppliers."""

    top_n: int
    top: tuple[SupplierShare, ...]
    top_share_pct: Decimal | None
    hhi: Decimal | None
    suppliers: int


@dataclass(frozen=True)
class SpendSummary:
    """Contract compliance, price variance, savings and concentration for a period."""

    period: Period
    base_currency: str
    total: Money
    on_contract: Money
    off_contract: Money
    maverick: Money
    on_contract_pct: Decimal | None
    maverick_pct: Decimal | None
    contract_variance: PriceVariance
    last_price_variance: PriceVariance
    savings: Savings
    concentration: Concentration
    orders: int
    skipped_orders: int


def _variance(rows: Sequence[tuple[SpendItem, Money]], base_currency: str) -> PriceVariance:
    zero = Money.zero(base_currency)
    parts: dict[str, list[Money]] = defaultdict(list)
    for item, amount in rows:
        parts[item.line.part_number].append(amount)
    by_part = sorted(
        (PartVariance(p, len(v), sum_money(v, base_currency)) for p, v in parts.items()),
        key=lambda pv: (-abs(pv.amount.amount), pv.part_number),
    )
    amounts = [a for _, a in rows]
    return PriceVariance(
        lines_compared=len(rows),
        total=sum_money(amounts, base_currency),
        above=sum_money((a for a in amounts if a.amount > 0), base_currency) if rows else zero,
        below=sum_money((a for a in amounts if a.amount < 0), base_currency) if rows else zero,
        by_part=tuple(by_part),
    )


def contract_variance(items: Sequence[SpendItem], base_currency: str) -> PriceVariance:
    """(unit price - contract price) x quantity at the order's rate, per line, summed."""
    rows = [
        (
            item,
            to_base(
                item.line.unit_price - item.line.contract_price,
                item.order.fx_rate,
                base_currency,
                item.line.quantity,
            ),
        )
        for item in items
        if item.line.contract_price is not None
    ]
    return _variance(rows, base_currency)


def _history_order(order: SpendOrderFact, line: SpendLineFact) -> tuple[dt.date, int, int]:
    return order.day, order.order_id, line.line_no


def last_price_variance(
    orders: Iterable[SpendOrderFact], period: Period, base_currency: str
) -> PriceVariance:
    """Each line against the last earlier price paid for its part, both in base currency.

    Unit prices are compared in base currency at each order's own stored rate, so a part
    bought from suppliers in different currencies still has one price history.
    """
    history = sorted(
        (
            (order, line)
            for order in orders
            if order.base_currency == base_currency and order.day < period.end
            for line in order.lines
        ),
        key=lambda pair: _history_order(*pair),
    )
    last: dict[int, Money] = {}
    rows: list[tuple[SpendItem, Money]] = []
    for order, line in history:
        unit_base = Money(line.unit_price, base_currency) * order.fx_rate
        before = last.get(line.part_id)
        if before is not None and period.contains(order.day):
            amount = ((unit_base - before) * line.quantity).round()
            rows.append((SpendItem(order, line, Money.zero(base_currency)), amount))
        last[line.part_id] = unit_base
    return _variance(rows, base_currency)


def contract_savings(items: Sequence[SpendItem], base_currency: str) -> Savings:
    """(list price - contract price) x quantity at the order's rate, over on-contract lines."""
    on_contract = [
        i for i in items if i.line.contract_id is not None and i.line.contract_price is not None
    ]
    amounts = [
        to_base(
            i.line.list_price - i.line.contract_price,
            i.order.fx_rate,
            base_currency,
            i.line.quantity,
        )
        for i in on_contract
        if i.line.list_price is not None and i.line.contract_price is not None
    ]
    return Savings(
        total=sum_money(amounts, base_currency),
        lines=len(amounts),
        lines_without_list_price=len(on_contract) - len(amounts),
    )


HHI_PLACES = Decimal(1)


def concentration(items: Sequence[SpendItem], base_currency: str, top_n: int) -> Concentration:
    """Top suppliers' share and the Herfindahl-Hirschman index (0-10000) of supplier spend."""
    if top_n < 1:
        raise ValueError("top_n must be at least 1")
    amounts: dict[str, list[Money]] = defaultdict(list)
    names: dict[str, str] = {}
    for item in items:
        amounts[item.order.supplier_code].append(item.base)
        names.setdefault(item.order.supplier_code, item.order.supplier_name)
    per_supplier = sorted(
        ((code, sum_money(v, base_currency)) for code, v in amounts.items()),
        key=lambda pair: (-pair[1].amount, pair[0]),
    )
    total = sum_money((m for _, m in per_supplier), base_currency)
    top = per_supplier[:top_n]
    hhi: Decimal | None = None
    top_share: Decimal | None = None
    if total.amount > 0:
        shares = (m.amount * 100 / total.amount for _, m in per_supplier)
        hhi = sum((s * s for s in shares), ZERO).quantize(HHI_PLACES, ROUND_HALF_UP)
        top_share = percent(sum((m.amount for _, m in top), ZERO), total.amount)
    return Concentration(
        top_n=top_n,
        top=tuple(SupplierShare(c, names[c], m, _share(m, total)) for c, m in top),
        top_share_pct=top_share,
        hhi=hhi,
        suppliers=len(per_supplier),
    )


def spend_summary(
    orders: Sequence[SpendOrderFact],
    period: Period,
    *,
    base_currency: str,
    top_n: int = 3,
) -> SpendSummary:
    """Contract and maverick spend, variances, savings and concentration in the period."""
    items, skipped = spend_items(orders, period, base_currency)
    total = sum_money((i.base for i in items), base_currency)
    on = sum_money((i.base for i in items if i.line.contract_id is not None), base_currency)
    maverick = sum_money(
        (i.base for i in items if i.line.contract_id is None and i.line.contract_available),
        base_currency,
    )
    return SpendSummary(
        period=period,
        base_currency=base_currency,
        total=total,
        on_contract=on,
        off_contract=total - on,
        maverick=maverick,
        on_contract_pct=_share(on, total),
        maverick_pct=_share(maverick, total),
        contract_variance=contract_variance(items, base_currency),
        last_price_variance=last_price_variance(orders, period, base_currency),
        savings=contract_savings(items, base_currency),
        concentration=concentration(items, base_currency, top_n),
        orders=len({i.order.order_id for i in items}),
        skipped_orders=skipped,
    )


# --- catalogue prices as they stood ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PriceChangeFact:
    """A recorded change of one price break."""

    changed_at: dt.datetime
    min_quantity: Decimal
    old_price: Decimal | None
    new_price: Decimal | None


def breaks_on(
    current: Iterable[tuple[Decimal, Decimal]],
    changes: Iterable[PriceChangeFact],
    day: dt.date,
) -> list[tuple[Decimal, Decimal]]:
    """The (min quantity, price) breaks in force at the end of a day, from the change history.

    A break takes the new price of its last change on or before the day; without one, the old
    price of its first later change; without any change, its current price. A None price means
    the break did not exist then.
    """
    now = {minimum: price for minimum, price in current}
    by_break: dict[Decimal, list[PriceChangeFact]] = defaultdict(list)
    for change in sorted(changes, key=lambda c: c.changed_at):
        by_break[change.min_quantity].append(change)
    result: list[tuple[Decimal, Decimal]] = []
    for minimum in sorted(set(now) | set(by_break)):
        history = by_break.get(minimum, [])
        applied = [c for c in history if utc_day(c.changed_at) <= day]
        later = [c for c in history if utc_day(c.changed_at) > day]
        if applied:
            price = applied[-1].new_price
        elif later:
            price = later[0].old_price
        else:
            price = now.get(minimum)
        if price is not None:
            result.append((minimum, price))
    return result


def list_price_on(
    current: Iterable[tuple[Decimal, Decimal]],
    changes: Iterable[PriceChangeFact],
    day: dt.date,
    quantity: Decimal,
) -> Decimal | None:
    """The catalogue unit price at a quantity on a day, or None when the item had no price."""
    try:
        return break_for(breaks_on(current, changes, day), quantity)[1]
    except NoPrice:
        return None


# --- loading --------------------------------------------------------------------------------


def _chunks(values: Sequence[T]) -> Iterator[Sequence[T]]:
    # Bounded IN lists keep every backend within its bound-parameter limits.
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


def _lookup(ids: Collection[int], query: Callable[[Sequence[int]], Iterable[T]]) -> list[T]:
    rows: list[T] = []
    for chunk in _chunks(sorted(ids)):
        rows.extend(query(chunk))
    return rows


def _commitment_day(order: PurchaseOrder) -> dt.date:
    # Spend is committed when the order is approved; older rows without an approval time fall
    # back to the day the order was priced.
    return utc_day(order.approved_at) if order.approved_at else order.fx_requested_date


@dataclass(frozen=True)
class _Places:
    """Where the lines' goods are for: asset tag and site code, by requisition and stock level."""

    assets: dict[int, tuple[str, str]]
    stores: dict[int, str]


def _places(session: Session, lines: Sequence[PurchaseOrderLine]) -> _Places:
    requisitions = {ln.requisition_line_id for ln in lines if ln.requisition_line_id is not None}
    levels = {ln.stock_level_id for ln in lines if ln.stock_level_id is not None}
    asset_rows = _lookup(
        requisitions,
        lambda chunk: session.execute(
            select(RequisitionLine.id, Asset.tag, Site.code)
            .join(WorkOrder, WorkOrder.id == RequisitionLine.work_order_id)
            .join(Asset, Asset.id == WorkOrder.asset_id)
            .join(Site, Site.id == Asset.site_id)
            .where(RequisitionLine.id.in_(chunk))
        ).all(),
    )
    store_rows = _lookup(
        levels,
        lambda chunk: session.execute(
            select(StockLevel.id, Site.code)
            .join(Location, Location.id == StockLevel.location_id)
            .join(Site, Site.id == Location.site_id)
            .where(StockLevel.id.in_(chunk))
        ).all(),
    )
    return _Places(
        assets={rid: (tag, site) for rid, tag, site in asset_rows},
        stores=dict(store_rows),
    )


@dataclass(frozen=True)
class _Catalogue:
    """Catalogue items with their current breaks and change history."""

    items: dict[int, CatalogItem]
    changes: dict[int, list[PriceChangeFact]]

    def item_for(self, order: PurchaseOrder, line: PurchaseOrderLine) -> CatalogItem | None:
        if line.catalog_item_id is not None and line.catalog_item_id in self.items:
            return self.items[line.catalog_item_id]
        candidates = [
            i
            for i in self.items.values()
            if i.supplier_id == order.supplier_id
            and i.part_id == line.part_id
            and i.currency == order.currency
        ]
        return min(candidates, key=lambda i: i.id) if candidates else None

    def list_price(
        self, order: PurchaseOrder, line: PurchaseOrderLine, day: dt.date
    ) -> Decimal | None:
        item = self.item_for(order, line)
        if item is None or item.currency != order.currency:
            return None
        current = [(b.min_quantity, b.unit_price) for b in item.price_breaks]
        return list_price_on(current, self.changes.get(item.id, []), day, line.quantity)


def _catalogue(session: Session, orders: Sequence[PurchaseOrder]) -> _Catalogue:
    suppliers = {o.supplier_id for o in orders}
    items = _lookup(
        suppliers,
        lambda chunk: session.scalars(
            select(CatalogItem)
            .options(selectinload(CatalogItem.price_breaks))
            .where(CatalogItem.supplier_id.in_(chunk))
        ),
    )
    changes: dict[int, list[PriceChangeFact]] = defaultdict(list)
    for change in _lookup(
        {i.id for i in items},
        lambda chunk: session.scalars(
            select(PriceChange)
            .where(PriceChange.catalog_item_id.in_(chunk))
            .order_by(PriceChange.changed_at, PriceChange.id)
        ),
    ):
        changes[change.catalog_item_id].append(
            PriceChangeFact(
                change.changed_at, change.min_quantity, change.old_price, change.new_price
            )
        )
    return _Catalogue({i.id: i for i in items}, changes)


def _reference_price(
    terms: Sequence[ContractTerm], order: PurchaseOrder, line: PurchaseOrderLine
) -> Decimal | None:
    day = order.fx_requested_date
    if line.contract_id is not None:
        own = [
            t.unit_price
            for t in terms
            if t.contract_id == line.contract_id and t.currency == order.currency
        ]
        if own:
            return min(own)
    return best_contract_price(terms, part_id=line.part_id, day=day, currency=order.currency)


def load_spend_facts(session: Session, *, until: dt.date) -> list[SpendOrderFact]:
    """Every order committed before ``until`` (history included, for last prices)."""
    end = dt.datetime.combine(until, dt.time(), tzinfo=dt.UTC)
    orders = list(
        session.scalars(
            select(PurchaseOrder)
            .options(
                selectinload(PurchaseOrder.supplier),
                selectinload(PurchaseOrder.lines).selectinload(PurchaseOrderLine.part),
            )
            .where(
                PurchaseOrder.status.in_(COMMITTED_STATUSES),
                or_(
                    PurchaseOrder.approved_at < end,
                    and_(
                        PurchaseOrder.approved_at.is_(None),
                        PurchaseOrder.fx_requested_date < until,
                    ),
                ),
            )
            .order_by(PurchaseOrder.id)
        )
    )
    lines = [line for order in orders for line in order.lines]
    places = _places(session, lines)
    catalogue = _catalogue(session, orders)
    terms_by_part: dict[int, list[ContractTerm]] = defaultdict(list)
    for term in load_contract_terms(session):
        terms_by_part[term.part_id].append(term)
    facts: list[SpendOrderFact] = []
    for order in orders:
        day = order.fx_requested_date
        line_facts = []
        for line in order.lines:
            terms = terms_by_part.get(line.part_id, [])
            asset = (
                places.assets.get(line.requisition_line_id)
                if line.requisition_line_id is not None
                else None
            )
            store_site = (
                places.stores.get(line.stock_level_id) if line.stock_level_id is not None else None
            )
            line_facts.append(
                SpendLineFact(
                    line_no=line.line_no,
                    part_id=line.part_id,
                    part_number=line.part.number,
                    category=line.part.category,
                    quantity=line.quantity,
                    unit_price=line.unit_price,
                    line_total=line.line_total,
                    site=asset[1] if asset else store_site,
                    asset=asset[0] if asset else None,
                    contract_id=line.contract_id,
                    contract_price=_reference_price(terms, order, line),
                    contract_available=any(t.valid_on(day) for t in terms),
                    list_price=catalogue.list_price(order, line, day),
                )
            )
        facts.append(
            SpendOrderFact(
                order_id=order.id,
                number=order.number,
                supplier_code=order.supplier.code,
                supplier_name=order.supplier.legal_name,
                day=_commitment_day(order),
                currency=order.currency,
                base_currency=order.base_currency,
                fx_rate=order.fx_rate,
                total=order.total,
                total_base=order.total_base,
                lines=tuple(line_facts),
            )
        )
    return facts
