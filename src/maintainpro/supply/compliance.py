"""Contract compliance: off-contract prices, contract utilisation, expiry and cap warnings.

The rules are pure functions over small frozen views of contracts and order lines; the
functions taking a session only gather those views and write outbox events.

An order line's day is its order's pricing day (``fx_requested_date``: the day its exchange
rate, contract and catalogue prices were looked up). A contract's status keeps no history, so
only contracts active now are held against earlier orders; their validity dates do have history
and are what decides whether a contract applied on a day.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from maintainpro.core.events import OutboxEvent, emit
from maintainpro.supply.contracts import Contract, ContractStatus
from maintainpro.supply.money import Money, line_total
from maintainpro.supply.purchasing import PoStatus, PurchaseOrder, PurchaseOrderLine
from maintainpro.supply.sourcing import qty_text
from maintainpro.supply.suppliers import Supplier

EXPIRING_TOPIC = "contract.expiring"
UTILISATION_TOPIC = "contract.utilisation"
CONTRACT_TOPICS = (EXPIRING_TOPIC, UTILISATION_TOPIC)
# Besides the configured warning period, a last reminder a week and a day before the end.
LATE_REMINDER_DAYS = (7, 1)
UTILISATION_THRESHOLDS_PCT = (80, 100)
HUNDRED = Decimal(100)
# Orders that commit spend: drafts are not purchases yet and cancelled ones never were.
COMMITTED = frozenset(PoStatus) - {PoStatus.DRAFT, PoStatus.CANCELLED}


class Reason(enum.StrEnum):
    """Why an order line is flagged."""

    OFF_CONTRACT_PRICE = "off_contract_price"
    CONTRACT_PRICE_DIFFERS = "contract_price_differs"
    OUTSIDE_VALIDITY = "outside_validity"


@dataclass(frozen=True)
class ContractTerms:
    """What compliance needs of a contract: its supplier, validity and prices per part."""

    id: int
    number: str
    supplier_id: int
    currency: str
    valid_from: dt.date
    valid_to: dt.date | None
    active: bool
    prices: Mapping[int, Decimal]

    @classmethod
    def of(cls, contract: Contract) -> ContractTerms:
        """The terms of a stored contract."""
        return cls(
            id=contract.id,
            number=contract.number,
            supplier_id=contract.supplier_id,
            currency=contract.currency,
            valid_from=contract.valid_from,
            valid_to=contract.valid_to,
            active=contract.status is ContractStatus.ACTIVE,
            prices={p.part_id: p.unit_price for p in contract.prices},
        )

    def valid_on(self, day: dt.date) -> bool:
        """Whether the day lies within the contract's validity dates."""
        return self.valid_from <= day and (self.valid_to is None or day <= self.valid_to)


@dataclass(frozen=True)
class OrderedLine:
    """A purchase-order line as compliance sees it."""

    line_id: int
    order_id: int
    line_no: int
    supplier_id: int
    part_id: int
    ordered_on: dt.date
    currency: str
    quantity: Decimal
    unit_price: Decimal
    contract_id: int | None

    @property
    def order_number(self) -> str:
        """The order number printed on documents."""
        return f"PO-{self.order_id:06d}"


@dataclass(frozen=True)
class Finding:
    """One reason an order line breaks contract compliance, with the figures behind it."""

    line: OrderedLine
    reason: Reason
    contract: ContractTerms
    contract_price: Decimal | None
    # (paid - contract price) x quantity in the order's currency; None when not comparable.
    excess: Money | None
    message: str


def _excess(line: OrderedLine, contract: ContractTerms, price: Decimal | None) -> Money | None:
    if price is None or contract.currency != line.currency:
        return None
    paid = line_total(Money.of(line.unit_price, line.currency), line.quantity)
    agreed = line_total(Money.of(price, line.currency), line.quantity)
    return paid - agreed


def _price_text(price: Decimal, currency: str) -> str:
    return f"{price.normalize():f} {currency}"


def check_line(line: OrderedLine, contracts: Iterable[ContractTerms]) -> list[Finding]:
    """The compliance findings of one order line against the contracts known (pure).

    A line under a contract is flagged when the contract was not valid on the order's day or
    the line's price is not the contract's. A line under no contract is flagged when an active
    contract with the same supplier priced the part on that day and the line paid another price.
    """
    terms = sorted(contracts, key=lambda c: c.id)
    if line.contract_id is not None:
        contract = next((c for c in terms if c.id == line.contract_id), None)
        return [] if contract is None else _under_contract(line, contract)
    applicable = [
        c
        for c in terms
        if c.active
        and c.supplier_id == line.supplier_id
        and line.part_id in c.prices
        and c.valid_on(line.ordered_on)
    ]
    if not applicable or any(
        c.currency == line.currency and c.prices[line.part_id] == line.unit_price
        for c in applicable
    ):
        return []
    # The cheapest comparable contract is the one the buyer should have used.
    same_currency = [c for c in applicable if c.currency == line.currency]
    best = min(same_currency or applicable, key=lambda c: (c.prices[line.part_id], c.id))
    price = best.prices[line.part_id]
    excess = _excess(line, best, price)
    return [
        Finding(
            line,
            Reason.OFF_CONTRACT_PRICE,
            best,
            price,
            excess,
            f"{line.order_number} line {line.line_no} paid "
            f"{_price_text(line.unit_price, line.currency)} outside contract {best.number}, "
            f"which priced the part at {_price_text(price, best.currency)} on {line.ordered_on}"
            + (f" ({excess} more)" if excess is not None and excess.amount > 0 else ""),
        )
    ]


def _under_contract(line: OrderedLine, contract: ContractTerms) -> list[Finding]:
    findings: list[Finding] = []
    price = contract.prices.get(line.part_id)
    where = f"{line.order_number} line {line.line_no}"
    if not contract.valid_on(line.ordered_on):
        until = contract.valid_to.isoformat() if contract.valid_to else "open-ended"
        findings.append(
            Finding(
                line,
                Reason.OUTSIDE_VALIDITY,
                contract,
                price,
                _excess(line, contract, price),
                f"{where} was ordered on {line.ordered_on} under contract {contract.number}, "
                f"valid {contract.valid_from} to {until}",
            )
        )
    if price is None or contract.currency != line.currency or price != line.unit_price:
        agreed = "no price for the part" if price is None else _price_text(price, contract.currency)
        findings.append(
            Finding(
                line,
                Reason.CONTRACT_PRICE_DIFFERS,
                contract,
                price,
                _excess(line, contract, price),
                f"{where} paid {_price_text(line.unit_price, line.currency)} under contract "
                f"{contract.number}, which has {agreed}",
            )
        )
    return findings


def compliance_findings(session: Session, start: dt.date, end: dt.date) -> list[Finding]:
    """Findings for every committed order line priced from start to end (inclusive)."""
    rows = session.execute(
        select(
            PurchaseOrderLine.id,
            PurchaseOrderLine.line_no,
            PurchaseOrderLine.part_id,
            PurchaseOrderLine.quantity,
            PurchaseOrderLine.unit_price,
            PurchaseOrderLine.contract_id,
            PurchaseOrder.id,
            PurchaseOrder.supplier_id,
            PurchaseOrder.currency,
            PurchaseOrder.fx_requested_date,
        )
        .join(PurchaseOrder, PurchaseOrder.id == PurchaseOrderLine.purchase_order_id)
        .where(
            PurchaseOrder.fx_requested_date >= start,
            PurchaseOrder.fx_requested_date <= end,
            PurchaseOrder.status.in_(COMMITTED),
        )
        .order_by(PurchaseOrder.fx_requested_date, PurchaseOrder.id, PurchaseOrderLine.line_no)
    ).all()
    lines = [
        OrderedLine(
            line_id=r[0],
            line_no=r[1],
            part_id=r[2],
            quantity=r[3],
            unit_price=r[4],
            contract_id=r[5],
            order_id=r[6],
            supplier_id=r[7],
            currency=r[8],
            ordered_on=r[9],
        )
        for r in rows
    ]
    if not lines:
        return []
    suppliers = {line.supplier_id for line in lines}
    contract_ids = {line.contract_id for line in lines if line.contract_id is not None}
    contracts = session.scalars(
        select(Contract).where(Contract.supplier_id.in_(suppliers) | Contract.id.in_(contract_ids))
    ).all()
    by_supplier: dict[int, list[ContractTerms]] = {}
    by_id: dict[int, ContractTerms] = {}
    for contract in contracts:
        terms = ContractTerms.of(contract)
        by_supplier.setdefault(terms.supplier_id, []).append(terms)
        by_id[terms.id] = terms
    findings: list[Finding] = []
    for line in lines:
        known = list(by_supplier.get(line.supplier_id, []))
        if line.contract_id is not None and line.contract_id in by_id:
            known.append(by_id[line.contract_id])
        findings.extend(check_line(line, known))
    return findings


# --- utilisation ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Utilisation:
    """How much of a contract's cap is drawn and how long it still runs."""

    contract_id: int
    number: str
    status: ContractStatus
    currency: str
    spend_cap: Decimal | None
    drawn: Decimal
    remaining: Decimal | None
    # Percentage of the cap drawn, to one decimal; None for an uncapped contract.
    pct_used: Decimal | None
    valid_from: dt.date
    valid_to: dt.date | None
    # Days from today to the last valid day (0 on it and after it); None when open-ended.
    days_left: int | None
    state: str


def used_fraction(drawn: Decimal, cap: Decimal) -> Decimal:
    """Drawn spend as a percentage of the cap (a zero cap counts as fully used), exact."""
    if cap <= 0:
        return HUNDRED
    return drawn * HUNDRED / cap


def utilisation(contract: Contract, today: dt.date) -> Utilisation:
    """A contract's utilisation on a day (pure: reads the contract's attributes only)."""
    cap = contract.spend_cap
    pct = (
        None
        if cap is None
        else used_fraction(contract.drawn, cap).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)
    )
    if today < contract.valid_from:
        state = "not_started"
    elif contract.valid_to is not None and today > contract.valid_to:
        state = "expired"
    else:
        state = "in_force"
    days_left = None if contract.valid_to is None else max((contract.valid_to - today).days, 0)
    return Utilisation(
        contract_id=contract.id,
        number=contract.number,
        status=contract.status,
        currency=contract.currency,
        spend_cap=cap,
        drawn=contract.drawn,
        remaining=contract.remaining,
        pct_used=pct,
        valid_from=contract.valid_from,
        valid_to=contract.valid_to,
        days_left=days_left,
        state=state,
    )


# --- expiry and cap warnings ------------------------------------------------------------------


def expiry_thresholds(warn_days: int) -> tuple[int, ...]:
    """Days before the end at which to warn, widest first (30 -> (30, 7, 1))."""
    return tuple(
        sorted({warn_days, *(d for d in LATE_REMINDER_DAYS if d < warn_days)}, reverse=True)
    )


def expiry_threshold(days_left: int, warn_days: int) -> int | None:
    """The tightest warning threshold a contract with so many days left has reached."""
    if days_left < 0:
        return None
    reached = [t for t in expiry_thresholds(warn_days) if days_left <= t]
    return min(reached) if reached else None


def utilisation_threshold(drawn: Decimal, cap: Decimal | None) -> int | None:
    """The highest utilisation threshold (percent of the cap) the drawn spend has reached."""
    if cap is None:
        return None
    used = used_fraction(drawn, cap)
    reached = [t for t in UTILISATION_THRESHOLDS_PCT if used >= t]
    return max(reached) if reached else None


def _announced(session: Session) -> set[tuple[Any, ...]]:
    # The outbox is the memory of what was sent. The key holds the end date (or the cap), so a
    # contract extended (or given a larger cap) is warned about again when it gets close again.
    keys: set[tuple[Any, ...]] = set()
    rows = session.execute(
        select(OutboxEvent.topic, OutboxEvent.payload).where(OutboxEvent.topic.in_(CONTRACT_TOPICS))
    )
    for topic, payload in rows:
        version, threshold = (
            ("valid_to", "threshold_days")
            if topic == EXPIRING_TOPIC
            else ("cap_key", "threshold_pct")
        )
        keys.add((topic, payload.get("contract_id"), payload.get(version), payload.get(threshold)))
    return keys


def cap_key(cap: Decimal) -> str:
    """A short digest standing for a spend cap in event payloads, which carry no amounts."""
    return hashlib.sha256(f"{cap.normalize():f}".encode()).hexdigest()[:16]


def _link(contract: Contract) -> str:
    return f"/api/v1/contracts/{contract.id}/utilisation"


def check_expiring_contracts(session: Session, today: dt.date, warn_days: int) -> list[OutboxEvent]:
    """Warn once per contract and threshold about an approaching end or a cap nearly drawn.

    Emits ``contract.expiring`` when an active contract is within warn_days (then 7 and 1
    days) of its last valid day, and ``contract.utilisation`` when its drawn spend reaches 80 %
    and 100 % of its cap. Amounts stay out of the payload: subscribers follow the link, which
    needs procurement access. The caller commits.
    """
    # Locking the active contracts (PostgreSQL) makes two concurrent checks take turns, so the
    # second sees the events of the first and sends nothing twice.
    contracts = session.scalars(
        select(Contract)
        .where(Contract.status == ContractStatus.ACTIVE)
        .order_by(Contract.id)
        .with_for_update()
    ).all()
    if not contracts:
        return []
    sent = _announced(session)
    supplier_codes = {
        row.id: row.code
        for row in session.execute(
            select(Supplier.id, Supplier.code).where(
                Supplier.id.in_({c.supplier_id for c in contracts})
            )
        )
    }
    events: list[OutboxEvent] = []
    for contract in contracts:
        common = {
            "contract_id": contract.id,
            "contract_number": contract.number,
            "supplier_id": contract.supplier_id,
            "supplier_code": supplier_codes.get(contract.supplier_id),
            "url": _link(contract),
        }
        events.extend(_expiry_event(session, contract, common, sent, today, warn_days))
        events.extend(_utilisation_event(session, contract, common, sent))
    return events


def _expiry_event(
    session: Session,
    contract: Contract,
    common: dict[str, Any],
    sent: set[tuple[Any, ...]],
    today: dt.date,
    warn_days: int,
) -> list[OutboxEvent]:
    if contract.valid_to is None or today < contract.valid_from:
        return []
    days_left = (contract.valid_to - today).days
    threshold = expiry_threshold(days_left, warn_days)
    valid_to = contract.valid_to.isoformat()
    if threshold is None or (EXPIRING_TOPIC, contract.id, valid_to, threshold) in sent:
        return []
    when = "today" if days_left == 0 else f"in {days_left} day{'s' if days_left != 1 else ''}"
    payload = {
        **common,
        "valid_to": valid_to,
        "days_left": days_left,
        "threshold_days": threshold,
        "severity": "major" if days_left <= min(LATE_REMINDER_DAYS) else "warning",
        "title": f"Contract {contract.number} ends {when} ({valid_to})",
        "reason": f"the contract's last valid day is within {threshold} days; renew or replace it",
    }
    return [emit(session, EXPIRING_TOPIC, payload)]


def _utilisation_event(
    session: Session, contract: Contract, common: dict[str, Any], sent: set[tuple[Any, ...]]
) -> list[OutboxEvent]:
    threshold = utilisation_threshold(contract.drawn, contract.spend_cap)
    if threshold is None or contract.spend_cap is None:
        return []
    cap = cap_key(contract.spend_cap)
    if (UTILISATION_TOPIC, contract.id, cap, threshold) in sent:
        return []
    pct = used_fraction(contract.drawn, contract.spend_cap).quantize(
        Decimal("0.1"), rounding=ROUND_HALF_UP
    )
    payload = {
        **common,
        "cap_key": cap,
        "threshold_pct": threshold,
        "pct_used": str(pct),
        "severity": "major" if threshold >= 100 else "warning",
        "title": f"Contract {contract.number} has used {qty_text(pct)} % of its spend cap",
        "reason": (
            "the cap is used up: new orders cannot draw on it"
            if threshold >= 100
            else f"more than {threshold} % of the cap is drawn"
        ),
    }
    return [emit(session, UTILISATION_TOPIC, payload)]


def summary(findings: Sequence[Finding]) -> dict[Reason, int]:
    """How many findings there are of each reason."""
    counts: dict[Reason, int] = {}
    for finding in findings:
        counts[finding.reason] = counts.get(finding.reason, 0) + 1
    return counts
