"""Built-in procurement reports: supplier scorecards and spend in base currency.

Both reuse the procurement analytics as they are (``supply.performance.scorecards`` and
``supply.spend``), over the local days of the report's period. Scorecards belong to no site, so
(as in the warehouse's rule) only recipients of every site receive them; spend lines carry the
site they were bought for, so a site recipient gets that site's lines only.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from maintainpro.analytics.reports.data import (
    ChartKind,
    ChartSpec,
    Column,
    ColumnKind,
    Figure,
    ReportData,
    RunParams,
    SiteScope,
    SourceError,
    Table,
)
from maintainpro.analytics.reports.maintenance_sources import site_codes
from maintainpro.supply.money import currency_exponent
from maintainpro.supply.performance import MetricKey, Period, scorecards
from maintainpro.supply.spend import (
    SpendGrouping,
    SpendOrderFact,
    line_amounts_in_base,
    load_spend_facts,
    spend_by,
    spend_summary,
)

NO_SITE_NOTE: Final = (
    "Supplier figures belong to no single site: only recipients who see every site receive them."
)
METRIC_COLUMNS: Final = (
    (MetricKey.ON_TIME, "On time %"),
    (MetricKey.OTIF, "OTIF %"),
    (MetricKey.QUALITY, "Quality %"),
    (MetricKey.ACCURACY, "Accuracy %"),
    (MetricKey.LEAD_TIME, "Lead time (days)"),
    (MetricKey.ACKNOWLEDGEMENT, "Acknowledged (h)"),
    (MetricKey.PRICE_COMPLIANCE, "Price compliance %"),
)
MAX_CHART_GROUPS: Final = 15


def local_days(params: RunParams) -> Period:
    """The report period as whole days in its zone (at least one day)."""
    zone = ZoneInfo(params.timezone)
    start = params.period_start.astimezone(zone).date()
    # The end is exclusive: a period ending at local midnight ends on that day.
    end_moment = params.period_end.astimezone(zone)
    end = end_moment.date()
    if end_moment.time() != dt.time():
        end += dt.timedelta(days=1)
    return Period(start, max(end, start + dt.timedelta(days=1)))


@dataclass(frozen=True)
class SupplierScorecards:
    """Every supplier's weighted score, grade and metrics for the period, best first."""

    name: str = "supplier_scorecards"
    title: str = "Supplier scorecards"

    def check(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """No options."""
        if options:
            raise SourceError("this report takes no options besides the period")
        return {}

    def run(self, session: Session, params: RunParams, site_scope: SiteScope) -> ReportData:
        """Scorecards of suppliers with data; none for a site-bound recipient."""
        period = local_days(params)
        notes: tuple[str, ...] = ()
        rows = []
        if site_scope is None:
            cards = scorecards(session, period, as_of=params.as_of)
            cards.sort(key=lambda c: (c.score is None, -(c.score or 0), c.code))
            for card in cards:
                values = tuple(card.metric(key).value for key, _ in METRIC_COLUMNS)
                rows.append((card.code, card.name, card.score, card.grade or "no data", *values))
        else:
            notes = (NO_SITE_NOTE,)
        scored = [row for row in rows if row[2] is not None]
        grades = [str(row[3]) for row in scored]
        average = (
            (sum((Decimal(str(r[2])) for r in scored), Decimal(0)) / len(scored)).quantize(
                Decimal("0.1")
            )
            if scored
            else None
        )
        return ReportData(
            title=params.title,
            period_start=params.period_start,
            period_end=params.period_end,
            timezone=params.timezone,
            generated_at=params.as_of,
            summary=(
                Figure("Suppliers scored", len(scored)),
                Figure("Average score", average, ColumnKind.DECIMAL),
                Figure("Grade A", grades.count("A")),
                Figure("Grade D or F", grades.count("D") + grades.count("F")),
            ),
            tables=(
                Table(
                    "scorecards",
                    "Scorecards",
                    (
                        Column("supplier", "Supplier"),
                        Column("name", "Name"),
                        Column("score", "Score", ColumnKind.DECIMAL, 1),
                        Column("grade", "Grade"),
                        *(
                            Column(key.value, label, ColumnKind.DECIMAL, 1)
                            for key, label in METRIC_COLUMNS
                        ),
                    ),
                    tuple(rows) if scored else (),
                ),
            ),
            charts=(
                ChartSpec("Supplier scores", ChartKind.BAR, "scorecards", "supplier", ("score",)),
            ),
            notes=notes,
        )


def site_part(order: SpendOrderFact, codes: frozenset[str]) -> SpendOrderFact | None:
    """The lines of an order bought for these sites, with their share of the base total."""
    amounts = line_amounts_in_base(order)
    kept = [(ln, a) for ln, a in zip(order.lines, amounts, strict=True) if ln.site in codes]
    if not kept:
        return None
    if len(kept) == len(order.lines):
        return order
    return dataclasses.replace(
        order,
        lines=tuple(ln for ln, _ in kept),
        total=sum((ln.line_total for ln, _ in kept), Decimal(0)),
        total_base=sum((a.amount for _, a in kept), Decimal(0)),
    )


def orders_for_sites(
    orders: Iterable[SpendOrderFact], codes: frozenset[str]
) -> list[SpendOrderFact]:
    """The orders' lines for these sites only."""
    return [part for o in orders if (part := site_part(o, codes)) is not None]


@dataclass(frozen=True)
class Spend:
    """Committed spend in base currency, grouped (by supplier unless asked otherwise)."""

    name: str = "spend"
    title: str = "Spend"

    def check(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """``group_by``: supplier, category, site, asset, month, quarter or year."""
        if set(options) - {"group_by"}:
            raise SourceError("spend takes the option group_by only")
        group_by = options.get("group_by", SpendGrouping.SUPPLIER.value)
        if group_by not in {g.value for g in SpendGrouping}:
            raise SourceError(
                "group_by must be one of " + ", ".join(g.value for g in SpendGrouping)
            )
        return {"group_by": group_by}

    def run(self, session: Session, params: RunParams, site_scope: SiteScope) -> ReportData:
        """Spend in the period, grouped; a site recipient's share only."""
        options = self.check(params.options)
        period = local_days(params)
        base = params.base_currency
        facts = load_spend_facts(session, until=period.end)
        if site_scope is not None:
            facts = orders_for_sites(facts, frozenset(site_codes(session, site_scope)))
        report = spend_by(
            facts, period, base_currency=base, group_by=SpendGrouping(options["group_by"])
        )
        summary = spend_summary(facts, period, base_currency=base)
        places = currency_exponent(base)
        rows = tuple(
            (g.key, g.label, g.amount.amount, g.share_pct, g.orders, g.lines) for g in report.groups
        )
        return ReportData(
            title=params.title,
            period_start=params.period_start,
            period_end=params.period_end,
            timezone=params.timezone,
            generated_at=params.as_of,
            summary=(
                Figure("Total spend", report.total.amount, ColumnKind.DECIMAL, places, base),
                Figure("Orders", report.orders),
                Figure("On contract", summary.on_contract_pct, ColumnKind.PERCENT),
                Figure("Maverick", summary.maverick_pct, ColumnKind.PERCENT),
            ),
            tables=(
                Table(
                    "spend",
                    f"Spend by {options['group_by']} ({base})",
                    (
                        Column("key", options["group_by"].capitalize()),
                        Column("label", "Name"),
                        Column("amount", f"Spend ({base})", ColumnKind.DECIMAL, places),
                        Column("share", "Share %", ColumnKind.PERCENT, 1),
                        Column("orders", "Orders", ColumnKind.INTEGER),
                        Column("lines", "Lines", ColumnKind.INTEGER),
                    ),
                    rows,
                ),
            ),
            charts=(
                ChartSpec(
                    f"Spend by {options['group_by']}",
                    ChartKind.BAR,
                    "spend",
                    "key",
                    ("amount",),
                    base,
                ),
            ),
            notes=(
                "Committed purchase orders (approved and later) dated in the period, converted "
                "at each order's stored exchange rate.",
            ),
        )
