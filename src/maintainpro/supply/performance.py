"""Supplier performance over a period, weighted into a graded scorecard with recommendations.

The rules are pure functions over plain facts (:class:`SupplierFacts`, built by
:func:`load_facts`); :func:`scorecards` is the thin database entry point. Every definition,
weight, grade threshold and recommendation trigger is explained in docs/procurement-analytics.md.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections import defaultdict
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from types import MappingProxyType
from typing import TypeAlias

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from maintainpro.core.db import utcnow
from maintainpro.supply.contracts import Contract, ContractPrice, ContractStatus
from maintainpro.supply.purchasing import (
    LineAckStatus,
    PoStatus,
    PurchaseOrder,
    PurchaseOrderLine,
)
from maintainpro.supply.receiving import DEFAULT_TOLERANCE_PCT, GoodsReceipt
from maintainpro.supply.suppliers import Supplier

HUNDRED = Decimal(100)
ZERO = Decimal(0)
PCT_PLACES = Decimal("0.1")
DAY_PLACES = Decimal("0.01")
HOUR_PLACES = Decimal("0.1")
WEIGHT_PLACES = Decimal("0.0001")
NO_DATA = "no data"
_US_PER_DAY = Decimal(86_400_000_000)
_US_PER_HOUR = Decimal(3_600_000_000)
# Orders whose receiving is over: a line still short on them will get nothing more.
_RECEIVING_DONE = frozenset({PoStatus.RECEIVED, PoStatus.INVOICED, PoStatus.CLOSED})

Figure: TypeAlias = Decimal | int | None


# --- periods --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Period:
    """The days [start, end): start included, end excluded, in UTC."""

    start: dt.date
    end: dt.date

    def __post_init__(self) -> None:
        """Refuse empty or reversed periods."""
        if self.start >= self.end:
            raise ValueError("a period's start must be before its end")

    def contains(self, day: dt.date) -> bool:
        """Whether a day lies in the period."""
        return self.start <= day < self.end

    def holds(self, moment: dt.datetime) -> bool:
        """Whether an aware moment falls on a day of the period (UTC)."""
        return self.contains(utc_day(moment))

    @property
    def days(self) -> int:
        """Length in days."""
        return (self.end - self.start).days

    def previous(self) -> Period:
        """The period of equal length just before this one."""
        return Period(self.start - (self.end - self.start), self.start)


def utc_day(moment: dt.datetime) -> dt.date:
    """The UTC calendar day of an aware moment."""
    if moment.tzinfo is None:
        raise ValueError("analytics need aware datetimes")
    return moment.astimezone(dt.UTC).date()


def percent(part: Decimal | int, whole: Decimal | int) -> Decimal:
    """part / whole as a percentage with one decimal, rounded half up."""
    return (Decimal(part) * HUNDRED / Decimal(whole)).quantize(PCT_PLACES, ROUND_HALF_UP)


# --- contract prices (shared with spend analytics) ------------------------------------------


@dataclass(frozen=True, slots=True)
class ContractTerm:
    """One contract price as it stood: who, which part, in what currency, when it was valid."""

    contract_id: int
    supplier_id: int
    part_id: int
    currency: str
    unit_price: Decimal
    valid_from: dt.date
    valid_to: dt.date | None

    def valid_on(self, day: dt.date) -> bool:
        """Whether the price was in force on a day."""
        return self.valid_from <= day and (self.valid_to is None or day <= self.valid_to)


def best_contract_price(
    terms: Collection[ContractTerm],
    *,
    part_id: int,
    day: dt.date,
    currency: str,
    supplier_id: int | None = None,
) -> Decimal | None:
    """The lowest contract price of a part on a day in a currency, of one supplier or any."""
    prices = [
        t.unit_price
        for t in terms
        if t.part_id == part_id
        and t.currency == currency
        and (supplier_id is None or t.supplier_id == supplier_id)
        and t.valid_on(day)
    ]
    return min(prices) if prices else None


def load_contract_terms(
    session: Session, *, supplier_ids: Collection[int] | None = None
) -> list[ContractTerm]:
    """Every contract price of suspended-free contracts (of some suppliers, or all)."""
    stmt = (
        select(Contract, ContractPrice)
        .join(ContractPrice, ContractPrice.contract_id == Contract.id)
        # Status changes have no history: a suspended contract's prices are left out, a closed
        # one still counts for days within its validity, when it was in force.
        .where(Contract.status != ContractStatus.SUSPENDED)
        .order_by(ContractPrice.id)
    )
    if supplier_ids is not None:
        stmt = stmt.where(Contract.supplier_id.in_(list(supplier_ids)))
    return [
        ContractTerm(
            contract_id=contract.id,
            supplier_id=contract.supplier_id,
            part_id=price.part_id,
            currency=contract.currency,
            unit_price=price.unit_price,
            valid_from=contract.valid_from,
            valid_to=contract.valid_to,
        )
        for contract, price in session.execute(stmt).all()
    ]


# --- facts ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReceiptFact:
    """One delivery on a line: when, and how much was accepted and rejected."""

    received_at: dt.datetime
    accepted: Decimal
    rejected: Decimal = ZERO


@dataclass(frozen=True, slots=True)
class LineFact:
    """One order line as the scorecard needs it."""

    line_no: int
    ordered: Decimal
    unit_price: Decimal
    need_by: dt.date | None = None
    promised_date: dt.date | None = None
    # The lowest valid contract price this supplier had for the part on the order's day, in
    # the order's currency; None when there was none.
    contract_price: Decimal | None = None
    # The supplier turned the line down in its acknowledgement: nothing was due on it.
    declined: bool = False
    receipts: tuple[ReceiptFact, ...] = ()

    @property
    def due_date(self) -> dt.date | None:
        """The day the goods were due: the supplier's promise, else our need-by date."""
        return self.promised_date or self.need_by

    @property
    def accepted(self) -> Decimal:
        """Accepted quantity over all receipts."""
        return sum((r.accepted for r in self.receipts), ZERO)

    @property
    def delivered(self) -> Decimal:
        """Accepted plus rejected quantity over all receipts."""
        return sum((r.accepted + r.rejected for r in self.receipts), ZERO)


@dataclass(frozen=True, slots=True)
class OrderFact:
    """One sent purchase order."""

    number: str
    sent_at: dt.datetime | None
    acknowledged_at: dt.datetime | None = None
    # Receiving is over (received, invoiced, closed): short lines will not get more.
    receiving_finished: bool = False
    lines: tuple[LineFact, ...] = ()


@dataclass(frozen=True, slots=True)
class SupplierFacts:
    """Everything the scorecard reads about one supplier."""

    supplier_id: int
    code: str
    name: str
    orders: tuple[OrderFact, ...] = ()


# --- rules ----------------------------------------------------------------------------------


class MetricKey(enum.StrEnum):
    """The metrics of a scorecard."""

    ON_TIME = "on_time_delivery"
    OTIF = "on_time_in_full"
    LEAD_TIME = "lead_time"
    QUALITY = "quality"
    ACCURACY = "order_accuracy"
    ACKNOWLEDGEMENT = "acknowledgement"
    PRICE_COMPLIANCE = "price_compliance"


DEFAULT_WEIGHTS: Mapping[MetricKey, Decimal] = MappingProxyType(
    {
        MetricKey.ON_TIME: Decimal("0.25"),
        MetricKey.OTIF: Decimal("0.15"),
        MetricKey.QUALITY: Decimal("0.20"),
        MetricKey.ACCURACY: Decimal("0.10"),
        MetricKey.LEAD_TIME: Decimal("0.10"),
        MetricKey.ACKNOWLEDGEMENT: Decimal("0.10"),
        MetricKey.PRICE_COMPLIANCE: Decimal("0.10"),
    }
)
# Lowest score of each grade; below the last one the grade is F.
GRADE_FLOORS: tuple[tuple[Decimal, str], ...] = (
    (Decimal(90), "A"),
    (Decimal(80), "B"),
    (Decimal(70), "C"),
    (Decimal(60), "D"),
)


@dataclass(frozen=True)
class ScorecardRules:
    """Weights, tolerances and recommendation triggers (defaults in the docs)."""

    weights: Mapping[MetricKey, Decimal] = field(default_factory=lambda: DEFAULT_WEIGHTS)
    # Receipt tolerance for order accuracy and "in full", in percent of the ordered quantity
    # (the API and CLI pass the receipt_tolerance_pct setting).
    tolerance_pct: Decimal = DEFAULT_TOLERANCE_PCT
    # An acknowledgement within this many hours of sending counts as prompt.
    ack_target_hours: Decimal = Decimal(48)
    # Recommendation triggers.
    on_time_floor_pct: Decimal = Decimal(90)
    rejection_ceiling_pct: Decimal = Decimal(5)
    drift_ratio: Decimal = Decimal("0.20")
    drift_min_days: Decimal = Decimal(1)
    drift_min_receipts: int = 2

    def __post_init__(self) -> None:
        """Refuse weights that cannot be renormalised and nonsensical thresholds."""
        for key, weight in self.weights.items():
            if key not in MetricKey.__members__.values():
                raise ValueError(f"unknown metric {key!r} in weights")
            if not isinstance(weight, Decimal) or not weight.is_finite() or weight < 0:
                raise ValueError(f"the weight of {key} must be a non-negative Decimal")
        if sum(self.weights.values(), ZERO) <= 0:
            raise ValueError("at least one weight must be positive")
        if self.tolerance_pct < 0 or self.ack_target_hours <= 0 or self.drift_ratio < 0:
            raise ValueError("tolerance, acknowledgement target and drift ratio must be positive")
        if self.drift_min_receipts < 1:
            raise ValueError("drift_min_receipts must be at least 1")


@dataclass(frozen=True)
class Metric:
    """One measured figure, its 0-100 score, what it rests on, and any caveat."""

    key: MetricKey
    value: Decimal | None
    unit: str
    score: Decimal | None
    basis: int
    detail: Mapping[str, Figure] = field(default_factory=dict)
    note: str = ""

    @property
    def display(self) -> str:
        """The value as people read it; "no data" when there was nothing to measure."""
        if self.value is None:
            return NO_DATA
        suffix = {"%": "%", "days": " days", "hours": " h"}.get(self.unit, f" {self.unit}")
        return f"{self.value}{suffix}"


class RecommendationKind(enum.StrEnum):
    """Why a recommendation was raised."""

    LEAD_TIME_DRIFT = "lead_time_drift"
    HIGH_REJECTION = "high_rejection_rate"
    LATE_DELIVERIES = "late_deliveries"
    SLOW_ACKNOWLEDGEMENT = "slow_acknowledgement"


@dataclass(frozen=True)
class Recommendation:
    """Advice with the figures that triggered it."""

    kind: RecommendationKind
    message: str
    figures: Mapping[str, Figure]


@dataclass(frozen=True)
class Scorecard:
    """A supplier's metrics, weighted score and grade for a period, with recommendations."""

    supplier_id: int
    code: str
    name: str
    period: Period
    metrics: tuple[Metric, ...]
    score: Decimal | None
    grade: str | None
    weights_used: Mapping[MetricKey, Decimal]
    recommendations: tuple[Recommendation, ...]

    def metric(self, key: MetricKey) -> Metric:
        """The metric with this key."""
        return next(m for m in self.metrics if m.key is key)


# --- metrics --------------------------------------------------------------------------------


def _receipts_in(
    facts: SupplierFacts, period: Period
) -> Iterator[tuple[OrderFact, LineFact, ReceiptFact]]:
    for order in facts.orders:
        for line in order.lines:
            for receipt in line.receipts:
                if period.holds(receipt.received_at):
                    yield order, line, receipt


def _mean(values: Sequence[Decimal]) -> Decimal:
    return sum(values, ZERO) / len(values)


def _std_dev(values: Sequence[Decimal]) -> Decimal:
    # Population standard deviation: the spread of the deliveries seen, not an estimate of a
    # wider population, and defined for a single receipt (0).
    mean = _mean(values)
    return (sum(((v - mean) ** 2 for v in values), ZERO) / len(values)).sqrt()


def _days(delta: dt.timedelta) -> Decimal:
    return Decimal(delta // dt.timedelta(microseconds=1)) / _US_PER_DAY


def _hours(delta: dt.timedelta) -> Decimal:
    return Decimal(delta // dt.timedelta(microseconds=1)) / _US_PER_HOUR


def _share_metric(
    key: MetricKey, hits: int, assessed: int, detail: Mapping[str, Figure], note: str = ""
) -> Metric:
    """A percentage metric scored by its own value; no data when nothing was assessed."""
    value = percent(hits, assessed) if assessed else None
    return Metric(key, value, "%", value, assessed, detail, note)


def on_time_delivery(facts: SupplierFacts, period: Period) -> Metric:
    """Share of the period's receipts that arrived on or before their line's due date."""
    on_time = 0
    late_days: list[int] = []
    undated = 0
    for _, line, receipt in _receipts_in(facts, period):
        due = line.due_date
        if due is None:
            undated += 1
            continue
        arrived = utc_day(receipt.received_at)
        if arrived <= due:
            on_time += 1
        else:
            late_days.append((arrived - due).days)
    return _share_metric(
        MetricKey.ON_TIME,
        on_time,
        on_time + len(late_days),
        {
            "on_time": on_time,
            "late": len(late_days),
            "without_due_date": undated,
            "mean_days_late": (
                _mean([Decimal(d) for d in late_days]).quantize(DAY_PLACES, ROUND_HALF_UP)
                if late_days
                else None
            ),
        },
        _undated_note(undated, "receipt"),
    )


def _undated_note(count: int, what: str) -> str:
    if not count:
        return ""
    return f"{count} {what}(s) on lines with neither a promised nor a need-by date are not counted"


def _in_full(accepted: Decimal, ordered: Decimal, tolerance_pct: Decimal) -> bool:
    return accepted >= ordered - ordered * tolerance_pct / HUNDRED


def on_time_in_full(
    facts: SupplierFacts, period: Period, *, as_of: dt.datetime, tolerance_pct: Decimal = ZERO
) -> Metric:
    """Share of lines due in the period whose full quantity was accepted by the due date."""
    hits = misses = pending = undated = 0
    today = utc_day(as_of)
    for order in facts.orders:
        for line in order.lines:
            if line.declined:
                continue
            due = line.due_date
            if due is None:
                # Said so when the line saw activity in the period, the only way to place it.
                undated += any(period.holds(r.received_at) for r in line.receipts)
                continue
            if not period.contains(due):
                continue
            by_due = sum((r.accepted for r in line.receipts if utc_day(r.received_at) <= due), ZERO)
            if _in_full(by_due, line.ordered, tolerance_pct):
                hits += 1
            elif today > due:
                misses += 1
            else:
                pending += 1
    return _share_metric(
        MetricKey.OTIF,
        hits,
        hits + misses,
        {"in_full_on_time": hits, "missed": misses, "not_yet_due": pending, "undated": undated},
        "; ".join(
            note
            for note in (
                _undated_note(undated, "line"),
                f"{pending} line(s) not yet due and not yet in full" if pending else "",
            )
            if note
        ),
    )


@dataclass(frozen=True)
class LeadTimes:
    """Lead times (days from sending the order to each receipt) in one period."""

    days: tuple[Decimal, ...]
    before_sent: int = 0

    @property
    def mean(self) -> Decimal | None:
        """Mean lead time in days."""
        return _mean(self.days) if self.days else None

    @property
    def std_dev(self) -> Decimal | None:
        """Population standard deviation in days."""
        return _std_dev(self.days) if self.days else None


def lead_times(facts: SupplierFacts, period: Period) -> LeadTimes:
    """Days from each order's sending to each of its receipts in the period."""
    days: list[Decimal] = []
    before_sent = 0
    for order, _, receipt in _receipts_in(facts, period):
        if order.sent_at is None:
            continue
        delta = receipt.received_at - order.sent_at
        if delta < dt.timedelta(0):
            # A receipt booked before the order was sent is a data error, not a lead time.
            before_sent += 1
            continue
        days.append(_days(delta))
    return LeadTimes(tuple(days), before_sent)


def _q(value: Decimal | None, places: Decimal) -> Decimal | None:
    return None if value is None else value.quantize(places, ROUND_HALF_UP)


def lead_time(facts: SupplierFacts, period: Period) -> Metric:
    """Mean and spread of lead times; the score rewards consistency (100 x (1 - CV))."""
    now = lead_times(facts, period)
    before = lead_times(facts, period.previous())
    mean, spread = now.mean, now.std_dev
    score: Decimal | None = None
    # One receipt says nothing about consistency, so the score needs two.
    if mean is not None and spread is not None and len(now.days) >= 2:
        variation = spread / mean if mean > 0 else ZERO
        score = (max(ZERO, 1 - variation) * HUNDRED).quantize(PCT_PLACES, ROUND_HALF_UP)
    return Metric(
        MetricKey.LEAD_TIME,
        _q(mean, DAY_PLACES),
        "days",
        score,
        len(now.days),
        {
            "std_dev_days": _q(spread, DAY_PLACES),
            "min_days": _q(min(now.days), DAY_PLACES) if now.days else None,
            "max_days": _q(max(now.days), DAY_PLACES) if now.days else None,
            "previous_mean_days": _q(before.mean, DAY_PLACES),
            "previous_receipts": len(before.days),
            "before_sent": now.before_sent,
        },
        ""
        if not now.before_sent
        else f"{now.before_sent} receipt(s) dated before sending left out",
    )


def quality(facts: SupplierFacts, period: Period) -> Metric:
    """Accepted share of the quantity delivered in the period."""
    accepted = rejected = ZERO
    count = 0
    for _, _, receipt in _receipts_in(facts, period):
        accepted += receipt.accepted
        rejected += receipt.rejected
        count += 1
    delivered = accepted + rejected
    value = percent(accepted, delivered) if delivered > 0 else None
    return Metric(
        MetricKey.QUALITY,
        value,
        "%",
        value,
        count,
        {
            "accepted_quantity": accepted,
            "rejected_quantity": rejected,
            "rejection_rate_pct": percent(rejected, delivered) if delivered > 0 else None,
        },
    )


def order_accuracy(
    facts: SupplierFacts, period: Period, *, tolerance_pct: Decimal = ZERO
) -> Metric:
    """Share of finished lines whose delivered quantity (accepted + rejected) matches the order.

    A line is judged once it is finished (fully accepted, or its order's receiving is over), in
    the period of its last receipt; it matches within ``tolerance_pct`` either way.
    """
    right = short = over = 0
    for order in facts.orders:
        for line in order.lines:
            if line.declined or not line.receipts:
                continue
            last = max(r.received_at for r in line.receipts)
            finished = order.receiving_finished or line.accepted >= line.ordered
            if not finished or not period.holds(last):
                continue
            slack = line.ordered * tolerance_pct / HUNDRED
            if line.delivered < line.ordered - slack:
                short += 1
            elif line.delivered > line.ordered + slack:
                over += 1
            else:
                right += 1
    return _share_metric(
        MetricKey.ACCURACY,
        right,
        right + short + over,
        {"accurate": right, "short": short, "over": over},
    )


def acknowledgement(
    facts: SupplierFacts, period: Period, *, as_of: dt.datetime, target_hours: Decimal
) -> Metric:
    """Hours from sending to acknowledgement for orders sent in the period.

    The value is the mean over acknowledged orders; the score is the share acknowledged within
    the target, where an order still unacknowledged past the target counts as slow.
    """
    hours: list[Decimal] = []
    overdue = waiting = 0
    for order in facts.orders:
        if order.sent_at is None or not period.holds(order.sent_at):
            continue
        if order.acknowledged_at is not None:
            hours.append(max(ZERO, _hours(order.acknowledged_at - order.sent_at)))
        elif _hours(as_of - order.sent_at) > target_hours:
            overdue += 1
        else:
            waiting += 1
    prompt = sum(1 for h in hours if h <= target_hours)
    assessed = len(hours) + overdue
    score = percent(prompt, assessed) if assessed else None
    return Metric(
        MetricKey.ACKNOWLEDGEMENT,
        _q(_mean(hours), HOUR_PLACES) if hours else None,
        "hours",
        score,
        assessed,
        {
            "acknowledged": len(hours),
            "within_target": prompt,
            "unacknowledged_past_target": overdue,
            "awaiting": waiting,
            "max_hours": _q(max(hours), HOUR_PLACES) if hours else None,
            "target_hours": target_hours,
        },
    )


def price_compliance(facts: SupplierFacts, period: Period) -> Metric:
    """Share of lines with a valid contract price, on orders sent in the period, bought at it."""
    compliant = above = 0
    for order in facts.orders:
        if order.sent_at is None or not period.holds(order.sent_at):
            continue
        for line in order.lines:
            if line.declined or line.contract_price is None:
                continue
            if line.unit_price <= line.contract_price:
                compliant += 1
            else:
                above += 1
    return _share_metric(
        MetricKey.PRICE_COMPLIANCE,
        compliant,
        compliant + above,
        {"at_contract_price": compliant, "above_contract_price": above},
    )


# --- scorecard ------------------------------------------------------------------------------


def grade_for(score: Decimal) -> str:
    """The letter grade of a 0-100 score (A >= 90, B >= 80, C >= 70, D >= 60, else F)."""
    return next((letter for floor, letter in GRADE_FLOORS if score >= floor), "F")


def weighted_score(
    metrics: Sequence[Metric], weights: Mapping[MetricKey, Decimal]
) -> tuple[Decimal | None, dict[MetricKey, Decimal]]:
    """Weighted mean of the scores that have data, weights renormalised over those metrics."""
    scored = [(m, weights.get(m.key, ZERO)) for m in metrics if m.score is not None]
    scored = [(m, w) for m, w in scored if w > 0]
    total = sum((w for _, w in scored), ZERO)
    if total == 0:
        return None, {}
    score = sum((m.score * w for m, w in scored if m.score is not None), ZERO) / total
    used = {m.key: (w / total).quantize(WEIGHT_PLACES, ROUND_HALF_UP) for m, w in scored}
    return score.quantize(PCT_PLACES, ROUND_HALF_UP), used


def _drift(metric: Metric, facts: SupplierFacts, rules: ScorecardRules) -> Recommendation | None:
    now, before = metric.value, metric.detail.get("previous_mean_days")
    count, earlier = metric.basis, metric.detail.get("previous_receipts")
    if now is None or not isinstance(before, Decimal) or not isinstance(earlier, int):
        return None
    if min(count, earlier) < rules.drift_min_receipts or before <= 0:
        return None
    rise = now - before
    if rise < rules.drift_min_days or now < before * (1 + rules.drift_ratio):
        return None
    change = percent(rise, before)
    return Recommendation(
        RecommendationKind.LEAD_TIME_DRIFT,
        f"Lead time of {facts.code} rose from {before} to {now} days (+{change}%) against the "
        "previous period of equal length: review the planned lead time and ask the supplier "
        "about capacity.",
        {
            "previous_mean_days": before,
            "current_mean_days": now,
            "change_days": rise,
            "change_pct": change,
            "previous_receipts": earlier,
            "current_receipts": count,
        },
    )


def _rejections(
    metric: Metric, facts: SupplierFacts, rules: ScorecardRules
) -> Recommendation | None:
    rate = metric.detail.get("rejection_rate_pct")
    if not isinstance(rate, Decimal) or rate <= rules.rejection_ceiling_pct:
        return None
    return Recommendation(
        RecommendationKind.HIGH_REJECTION,
        f"{rate}% of the quantity {facts.code} delivered was rejected (above "
        f"{rules.rejection_ceiling_pct}%): raise a quality complaint and consider incoming "
        "inspection.",
        {
            "rejection_rate_pct": rate,
            "rejected_quantity": metric.detail["rejected_quantity"],
            "accepted_quantity": metric.detail["accepted_quantity"],
            "receipts": metric.basis,
            "threshold_pct": rules.rejection_ceiling_pct,
        },
    )


def _lateness(metric: Metric, facts: SupplierFacts, rules: ScorecardRules) -> Recommendation | None:
    if metric.value is None or metric.value >= rules.on_time_floor_pct:
        return None
    return Recommendation(
        RecommendationKind.LATE_DELIVERIES,
        f"Only {metric.value}% of {facts.code}'s deliveries arrived on time (target "
        f"{rules.on_time_floor_pct}%): expedite open orders and plan with a longer lead time.",
        {
            "on_time_pct": metric.value,
            "late_receipts": metric.detail["late"],
            "receipts": metric.basis,
            "mean_days_late": metric.detail["mean_days_late"],
            "threshold_pct": rules.on_time_floor_pct,
        },
    )


def _slow_ack(metric: Metric, facts: SupplierFacts, rules: ScorecardRules) -> Recommendation | None:
    overdue = metric.detail.get("unacknowledged_past_target")
    slow = metric.value is not None and metric.value > rules.ack_target_hours
    if not slow and not overdue:
        return None
    return Recommendation(
        RecommendationKind.SLOW_ACKNOWLEDGEMENT,
        f"{facts.code} acknowledges orders slowly (mean {metric.display}, "
        f"{overdue} unacknowledged past {rules.ack_target_hours} h): agree an acknowledgement "
        "deadline or move the supplier to EDI/portal ordering.",
        {
            "mean_hours": metric.value,
            "acknowledged": metric.detail["acknowledged"],
            "unacknowledged_past_target": overdue,
            "target_hours": rules.ack_target_hours,
        },
    )


_ADVICE: tuple[
    tuple[MetricKey, Callable[[Metric, SupplierFacts, ScorecardRules], Recommendation | None]],
    ...,
] = (
    (MetricKey.LEAD_TIME, _drift),
    (MetricKey.QUALITY, _rejections),
    (MetricKey.ON_TIME, _lateness),
    (MetricKey.ACKNOWLEDGEMENT, _slow_ack),
)


def compute_scorecard(
    facts: SupplierFacts,
    period: Period,
    *,
    as_of: dt.datetime,
    rules: ScorecardRules | None = None,
) -> Scorecard:
    """The supplier's scorecard for the period, judged as things stood at ``as_of``."""
    rules = rules or ScorecardRules()
    metrics = (
        on_time_delivery(facts, period),
        on_time_in_full(facts, period, as_of=as_of, tolerance_pct=rules.tolerance_pct),
        lead_time(facts, period),
        quality(facts, period),
        order_accuracy(facts, period, tolerance_pct=rules.tolerance_pct),
        acknowledgement(facts, period, as_of=as_of, target_hours=rules.ack_target_hours),
        price_compliance(facts, period),
    )
    score, used = weighted_score(metrics, rules.weights)
    by_key = {m.key: m for m in metrics}
    advice = (rule(by_key[key], facts, rules) for key, rule in _ADVICE)
    return Scorecard(
        supplier_id=facts.supplier_id,
        code=facts.code,
        name=facts.name,
        period=period,
        metrics=metrics,
        score=score,
        grade=None if score is None else grade_for(score),
        weights_used=used,
        recommendations=tuple(r for r in advice if r is not None),
    )


# --- loading --------------------------------------------------------------------------------


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)


def load_facts(
    session: Session, *, until: dt.date, supplier_ids: Collection[int] | None = None
) -> list[SupplierFacts]:
    """Facts of every supplier (or some) from their orders sent before ``until``, by code."""
    suppliers_stmt = select(Supplier).order_by(Supplier.code)
    orders_stmt = (
        select(PurchaseOrder)
        .options(selectinload(PurchaseOrder.lines))
        .where(
            PurchaseOrder.sent_at.is_not(None),
            PurchaseOrder.sent_at < _midnight(until),
            PurchaseOrder.status != PoStatus.CANCELLED,
        )
        .order_by(PurchaseOrder.id)
    )
    receipts_stmt = (
        select(GoodsReceipt)
        .join(PurchaseOrderLine, PurchaseOrderLine.id == GoodsReceipt.purchase_order_line_id)
        .join(PurchaseOrder, PurchaseOrder.id == PurchaseOrderLine.purchase_order_id)
        .where(
            PurchaseOrder.sent_at.is_not(None),
            PurchaseOrder.sent_at < _midnight(until),
            PurchaseOrder.status != PoStatus.CANCELLED,
        )
        .order_by(GoodsReceipt.received_at, GoodsReceipt.id)
    )
    if supplier_ids is not None:
        ids = list(supplier_ids)
        suppliers_stmt = suppliers_stmt.where(Supplier.id.in_(ids))
        orders_stmt = orders_stmt.where(PurchaseOrder.supplier_id.in_(ids))
        receipts_stmt = receipts_stmt.where(PurchaseOrder.supplier_id.in_(ids))
    receipts: dict[int, list[ReceiptFact]] = defaultdict(list)
    for receipt in session.scalars(receipts_stmt):
        receipts[receipt.purchase_order_line_id].append(
            ReceiptFact(receipt.received_at, receipt.quantity_received, receipt.quantity_rejected)
        )
    terms = load_contract_terms(session, supplier_ids=supplier_ids)
    by_supplier: dict[int, list[OrderFact]] = defaultdict(list)
    for order in session.scalars(orders_stmt):
        lines = tuple(
            LineFact(
                line_no=line.line_no,
                ordered=line.quantity,
                unit_price=line.unit_price,
                need_by=line.need_by,
                promised_date=line.promised_date,
                contract_price=best_contract_price(
                    terms,
                    part_id=line.part_id,
                    day=order.fx_requested_date,
                    currency=order.currency,
                    supplier_id=order.supplier_id,
                ),
                declined=line.ack_status is LineAckStatus.REJECTED,
                receipts=tuple(receipts.get(line.id, ())),
            )
            for line in order.lines
        )
        by_supplier[order.supplier_id].append(
            OrderFact(
                number=order.number,
                sent_at=order.sent_at,
                acknowledged_at=order.acknowledged_at,
                receiving_finished=order.status in _RECEIVING_DONE,
                lines=lines,
            )
        )
    return [
        SupplierFacts(s.id, s.code, s.legal_name, tuple(by_supplier.get(s.id, ())))
        for s in session.scalars(suppliers_stmt)
    ]


def scorecards(
    session: Session,
    period: Period,
    *,
    supplier_ids: Collection[int] | None = None,
    as_of: dt.datetime | None = None,
    rules: ScorecardRules | None = None,
) -> list[Scorecard]:
    """Scorecards of every supplier (or some) for a period, in supplier-code order."""
    facts = load_facts(session, until=period.end, supplier_ids=supplier_ids)
    moment = as_of or utcnow()
    return [compute_scorecard(f, period, as_of=moment, rules=rules) for f in facts]
