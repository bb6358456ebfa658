"""Supplier performance scorecards and spend analytics."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from maintainpro.api.deps import SessionDep, SettingsDep, require
from maintainpro.api.problems import Problem
from maintainpro.api.routes.supply import BaseCurrency
from maintainpro.core.db import utcnow
from maintainpro.core.users import Permission
from maintainpro.supply.performance import (
    NO_DATA,
    Figure,
    MetricKey,
    Period,
    Scorecard,
    ScorecardRules,
    scorecards,
)
from maintainpro.supply.spend import (
    PriceVariance,
    SpendGrouping,
    load_spend_facts,
    spend_by,
    spend_summary,
)
from maintainpro.supply.suppliers import Supplier

router = APIRouter(tags=["supply"])
Reader = Depends(require(Permission.SUPPLY_READ))

DEFAULT_DAYS = 90
MAX_DAYS = 3660
EARLIEST = dt.date(1990, 1, 1)
LATEST = dt.date(2999, 12, 31)
_WEIGHT_ITEM = re.compile(r"^([a-z_]{1,40}):([0-9]{1,4}(?:\.[0-9]{1,6})?)$")


def analysis_period(
    start: Annotated[
        dt.date | None, Query(description="first day (included); default: 90 days before end")
    ] = None,
    end: Annotated[
        dt.date | None, Query(description="day after the last (excluded); default: tomorrow")
    ] = None,
) -> Period:
    """The [start, end) period asked for, checked."""
    last = end or utcnow().date() + dt.timedelta(days=1)
    if not EARLIEST <= last <= LATEST:
        raise Problem(422, f"end must lie between {EARLIEST} and {LATEST}", title="Invalid period")
    first = start or max(EARLIEST, last - dt.timedelta(days=DEFAULT_DAYS))
    if not EARLIEST <= first <= LATEST:
        raise Problem(
            422, f"start must lie between {EARLIEST} and {LATEST}", title="Invalid period"
        )
    if first >= last:
        raise Problem(422, "start must be before end", title="Invalid period")
    if (last - first).days > MAX_DAYS:
        raise Problem(422, f"a period may span at most {MAX_DAYS} days", title="Invalid period")
    return Period(first, last)


def scorecard_rules(
    settings: SettingsDep,
    weights: Annotated[
        str | None,
        Query(
            max_length=400,
            description="metric:weight pairs, comma separated, e.g. "
            "on_time_delivery:0.5,quality:0.5 (renormalised over metrics with data)",
        ),
    ] = None,
) -> ScorecardRules:
    """Scorecard rules: the receipt tolerance setting, and the weights asked for when given."""
    tolerance = settings.receipt_tolerance_pct
    if weights is None:
        return ScorecardRules(tolerance_pct=tolerance)
    parsed: dict[MetricKey, Decimal] = {}
    for item in weights.split(","):
        match = _WEIGHT_ITEM.match(item.strip())
        if match is None or match.group(1) not in MetricKey.__members__.values():
            raise Problem(
                422,
                "weights must be metric:number pairs; metrics: " + ", ".join(MetricKey),
                title="Invalid weights",
            )
        key = MetricKey(match.group(1))
        if key in parsed:
            raise Problem(422, f"the weight of {key} is given twice", title="Invalid weights")
        parsed[key] = Decimal(match.group(2))
    try:
        return ScorecardRules(weights=parsed, tolerance_pct=tolerance)
    except ValueError as exc:
        raise Problem(422, str(exc), title="Invalid weights") from None


PeriodDep = Annotated[Period, Depends(analysis_period)]
RulesDep = Annotated[ScorecardRules, Depends(scorecard_rules)]


# --- scorecards ----------------------------------------------------------------------------


class MetricOut(BaseModel):
    """One metric: its value ("no data" when nothing was measured), score and basis."""

    key: MetricKey
    value: Decimal | None
    display: str
    unit: str
    score: Decimal | None
    basis: int
    detail: dict[str, Figure]
    note: str


class RecommendationOut(BaseModel):
    """Advice and the figures behind it."""

    kind: str
    message: str
    figures: dict[str, Figure]


class ScorecardOut(BaseModel):
    """A supplier's scorecard for a period."""

    supplier_id: int
    code: str
    name: str
    start: dt.date
    end: dt.date
    score: Decimal | None
    grade: str | None
    display: str
    metrics: list[MetricOut]
    weights_used: dict[str, Decimal]
    recommendations: list[RecommendationOut]


class ScorecardsOut(BaseModel):
    """Every supplier's scorecard for a period, best score first, "no data" last."""

    start: dt.date
    end: dt.date
    items: list[ScorecardOut]


def scorecard_out(card: Scorecard) -> ScorecardOut:
    """The response form of a scorecard."""
    return ScorecardOut(
        supplier_id=card.supplier_id,
        code=card.code,
        name=card.name,
        start=card.period.start,
        end=card.period.end,
        score=card.score,
        grade=card.grade,
        display=NO_DATA if card.score is None else f"{card.score} ({card.grade})",
        metrics=[
            MetricOut(
                key=m.key,
                value=m.value,
                display=m.display,
                unit=m.unit,
                score=m.score,
                basis=m.basis,
                detail=dict(m.detail),
                note=m.note,
            )
            for m in card.metrics
        ],
        weights_used={str(k): v for k, v in card.weights_used.items()},
        recommendations=[
            RecommendationOut(kind=r.kind.value, message=r.message, figures=dict(r.figures))
            for r in card.recommendations
        ],
    )


@router.get("/suppliers/{supplier_id}/scorecard", dependencies=[Reader])
def supplier_scorecard(
    db: SessionDep, supplier_id: int, period: PeriodDep, rules: RulesDep
) -> ScorecardOut:
    """One supplier's performance in a period: metrics, weighted score, grade, advice."""
    if db.get(Supplier, supplier_id) is None:
        raise Problem(404, "no such supplier")
    (card,) = scorecards(db, period, supplier_ids=[supplier_id], rules=rules)
    return scorecard_out(card)


@router.get("/supplier-scorecards", dependencies=[Reader])
def all_scorecards(db: SessionDep, period: PeriodDep, rules: RulesDep) -> ScorecardsOut:
    """Every supplier's scorecard in a period, best first; suppliers without data last."""
    cards = scorecards(db, period, rules=rules)
    cards.sort(key=lambda c: (c.score is None, -(c.score or 0), c.code))
    return ScorecardsOut(
        start=period.start, end=period.end, items=[scorecard_out(c) for c in cards]
    )


# --- spend ---------------------------------------------------------------------------------


class SpendGroupOut(BaseModel):
    """Spend of one group in base currency."""

    key: str
    label: str
    amount: Decimal
    share_pct: Decimal | None
    orders: int
    lines: int


class SpendOut(BaseModel):
    """Committed spend in a period, grouped, in the company's base currency."""

    start: dt.date
    end: dt.date
    base_currency: str
    group_by: SpendGrouping
    total: Decimal
    orders: int
    skipped_orders: int
    groups: list[SpendGroupOut]


@router.get("/spend", dependencies=[Reader])
def spend(
    db: SessionDep,
    period: PeriodDep,
    base: BaseCurrency,
    group_by: Annotated[SpendGrouping, Query(description="how to group")] = SpendGrouping.SUPPLIER,
) -> SpendOut:
    """Spend of committed orders by supplier, category, site, asset, month, quarter or year."""
    report = spend_by(
        load_spend_facts(db, until=period.end), period, base_currency=base, group_by=group_by
    )
    return SpendOut(
        start=period.start,
        end=period.end,
        base_currency=base,
        group_by=group_by,
        total=report.total.amount,
        orders=report.orders,
        skipped_orders=report.skipped_orders,
        groups=[
            SpendGroupOut(
                key=g.key,
                label=g.label,
                amount=g.amount.amount,
                share_pct=g.share_pct,
                orders=g.orders,
                lines=g.lines,
            )
            for g in report.groups
        ],
    )


class PartVarianceOut(BaseModel):
    """Variance on one part."""

    part_number: str
    lines: int
    amount: Decimal


class VarianceOut(BaseModel):
    """Paid above (positive) or below (negative) a reference price."""

    lines_compared: int
    total: Decimal
    above: Decimal
    below: Decimal
    by_part: list[PartVarianceOut]


class SavingsOut(BaseModel):
    """Savings from contracts against catalogue list prices."""

    total: Decimal
    lines: int
    lines_without_list_price: int


class SupplierShareOut(BaseModel):
    """A top supplier."""

    code: str
    name: str
    amount: Decimal
    share_pct: Decimal | None


class ConcentrationOut(BaseModel):
    """Supplier concentration."""

    top_n: int
    top: list[SupplierShareOut]
    top_share_pct: Decimal | None
    hhi: Decimal | None
    suppliers: int


class SpendSummaryOut(BaseModel):
    """Contract compliance, variance, savings and concentration in a period."""

    start: dt.date
    end: dt.date
    base_currency: str
    total: Decimal
    on_contract: Decimal
    off_contract: Decimal
    maverick: Decimal
    on_contract_pct: Decimal | None
    maverick_pct: Decimal | None
    contract_variance: VarianceOut
    last_price_variance: VarianceOut
    savings: SavingsOut
    concentration: ConcentrationOut
    orders: int
    skipped_orders: int


def _variance_out(variance: PriceVariance) -> VarianceOut:
    return VarianceOut(
        lines_compared=variance.lines_compared,
        total=variance.total.amount,
        above=variance.above.amount,
        below=variance.below.amount,
        by_part=[
            PartVarianceOut(part_number=p.part_number, lines=p.lines, amount=p.amount.amount)
            for p in variance.by_part
        ],
    )


@router.get("/spend/summary", dependencies=[Reader])
def spend_overview(
    db: SessionDep,
    period: PeriodDep,
    base: BaseCurrency,
    top: Annotated[int, Query(ge=1, le=50, description="suppliers in the top share")] = 3,
) -> SpendSummaryOut:
    """Maverick spend, price variance, contract savings and supplier concentration."""
    summary = spend_summary(
        load_spend_facts(db, until=period.end), period, base_currency=base, top_n=top
    )
    conc = summary.concentration
    return SpendSummaryOut(
        start=period.start,
        end=period.end,
        base_currency=base,
        total=summary.total.amount,
        on_contract=summary.on_contract.amount,
        off_contract=summary.off_contract.amount,
        maverick=summary.maverick.amount,
        on_contract_pct=summary.on_contract_pct,
        maverick_pct=summary.maverick_pct,
        contract_variance=_variance_out(summary.contract_variance),
        last_price_variance=_variance_out(summary.last_price_variance),
        savings=SavingsOut(
            total=summary.savings.total.amount,
            lines=summary.savings.lines,
            lines_without_list_price=summary.savings.lines_without_list_price,
        ),
        concentration=ConcentrationOut(
            top_n=conc.top_n,
            top=[
                SupplierShareOut(
                    code=s.code, name=s.name, amount=s.amount.amount, share_pct=s.share_pct
                )
                for s in conc.top
            ],
            top_share_pct=conc.top_share_pct,
            hhi=conc.hhi,
            suppliers=conc.suppliers,
        ),
        orders=summary.orders,
        skipped_orders=summary.skipped_orders,
    )
