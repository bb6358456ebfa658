"""Built-in maintenance reports over the CMMS tables: PM compliance, top bad actors and the open
work-order backlog by age. Each keeps only the rows of the sites the recipient may see.

The PM outcome (on time within a grace of 10 % of the interval, late, missed, pending) and the
downtime of a work order follow the warehouse's definitions (``analytics.transforms``), so a
report and a BI tool show the same figures for the same work orders.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import ColumnElement, false, func, select, true
from sqlalchemy.orm import Session

from maintainpro.analytics.reports.data import (
    Cell,
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
from maintainpro.analytics.transforms import downtime_hours, grace_period, pm_outcome
from maintainpro.core.assets import Asset, Site
from maintainpro.core.schedules import MaintenanceSchedule
from maintainpro.core.work_orders import OPEN_STATUSES, WorkOrder, WorkOrderStatus, WorkOrderType
from maintainpro.iot.alerts import Alert

FAILURE_TYPES: Final = (WorkOrderType.CORRECTIVE, WorkOrderType.CONDITION_BASED)
OUTCOMES: Final = ("on_time", "late", "missed", "pending")
AGE_BUCKETS: Final = ((7, "0-7 days"), (30, "8-30 days"), (90, "31-90 days"))
OLDEST_BUCKET: Final = "over 90 days"
RANKINGS: Final = ("work_orders", "downtime", "alerts")
MAX_TOP: Final = 100


def in_scope(column: Any, site_scope: SiteScope) -> ColumnElement[bool]:
    """A WHERE clause keeping a site column within the scope (always true for every site)."""
    if site_scope is None:
        return true()
    if not site_scope:
        return false()
    clause: ColumnElement[bool] = column.in_(sorted(site_scope))
    return clause


def site_codes(session: Session, site_scope: SiteScope) -> tuple[str, ...]:
    """The codes of the sites in a scope (empty for every site)."""
    if not site_scope:
        return ()
    return tuple(
        session.scalars(
            select(Site.code).where(Site.id.in_(sorted(site_scope))).order_by(Site.code)
        )
    )


def _no_options(options: Mapping[str, Any]) -> dict[str, Any]:
    if options:
        raise SourceError("this report takes no options besides the period")
    return {}


def _pct(part: int, whole: int) -> float | None:
    return round(part * 100 / whole, 1) if whole else None


def _days(delta: dt.timedelta) -> float:
    return round(delta.total_seconds() / 86400, 1)


# --------------------------------------------------------------------------- PM compliance


@dataclass(frozen=True)
class PmCompliance:
    """Preventive occurrences due in the period: on time, late, missed, pending; by site."""

    name: str = "pm_compliance"
    title: str = "PM compliance"

    def check(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """No options."""
        return _no_options(options)

    def run(self, session: Session, params: RunParams, site_scope: SiteScope) -> ReportData:
        """Each occurrence judged at the end of the period (or now, if that is earlier)."""
        judged_at = min(params.period_end, params.as_of)
        stmt = (
            select(
                WorkOrder.id,
                WorkOrder.status,
                WorkOrder.due_at,
                WorkOrder.completed_at,
                MaintenanceSchedule.name,
                MaintenanceSchedule.interval_count,
                MaintenanceSchedule.interval_unit,
                Asset.tag,
                Site.code,
            )
            .join(Asset, Asset.id == WorkOrder.asset_id)
            .join(Site, Site.id == Asset.site_id)
            .outerjoin(MaintenanceSchedule, MaintenanceSchedule.id == WorkOrder.schedule_id)
            .where(
                WorkOrder.schedule_id.is_not(None),
                WorkOrder.due_at >= params.period_start,
                WorkOrder.due_at < params.period_end,
            )
            .order_by(Site.code, WorkOrder.due_at, WorkOrder.id)
        )
        occurrences = []
        per_site: dict[str, Counter[str]] = defaultdict(Counter)
        for row in session.execute(stmt.where(in_scope(Asset.site_id, site_scope))):
            unit = None if row.interval_unit is None else str(row.interval_unit)
            outcome = pm_outcome(
                status=str(row.status),
                due_at=row.due_at,
                completed_at=row.completed_at,
                grace=grace_period(row.interval_count, unit),
                now=judged_at,
            )
            per_site[row.code][outcome] += 1
            late = None
            if row.completed_at is not None and row.due_at is not None:
                late = max(_days(row.completed_at - row.due_at), 0.0)
            occurrences.append(
                (
                    row.code,
                    row.tag,
                    row.name or "",
                    row.id,
                    row.due_at,
                    row.completed_at,
                    outcome.replace("_", " "),
                    late,
                )
            )
        totals: Counter[str] = Counter()
        site_rows = []
        for code in sorted(per_site):
            counts = per_site[code]
            totals.update(counts)
            judged = counts["on_time"] + counts["late"] + counts["missed"]
            site_rows.append(
                (code, *(counts[o] for o in OUTCOMES), _pct(counts["on_time"], judged))
            )
        judged_total = totals["on_time"] + totals["late"] + totals["missed"]
        return ReportData(
            title=params.title,
            period_start=params.period_start,
            period_end=params.period_end,
            timezone=params.timezone,
            generated_at=params.as_of,
            summary=(
                Figure("PM occurrences due", sum(totals.values())),
                Figure("On time", totals["on_time"]),
                Figure("Late", totals["late"]),
                Figure("Missed", totals["missed"]),
                Figure("Pending", totals["pending"]),
                Figure(
                    "PM compliance",
                    _pct(totals["on_time"], judged_total),
                    ColumnKind.PERCENT,
                ),
            ),
            tables=(
                Table(
                    "by_site",
                    "Compliance by site",
                    (
                        Column("site", "Site"),
                        Column("on_time", "On time", ColumnKind.INTEGER),
                        Column("late", "Late", ColumnKind.INTEGER),
                        Column("missed", "Missed", ColumnKind.INTEGER),
                        Column("pending", "Pending", ColumnKind.INTEGER),
                        Column("compliance", "Compliance %", ColumnKind.PERCENT, 1),
                    ),
                    tuple(site_rows),
                ),
                Table(
                    "occurrences",
                    "Occurrences",
                    (
                        Column("site", "Site"),
                        Column("asset", "Asset"),
                        Column("schedule", "Schedule"),
                        Column("work_order", "Work order", ColumnKind.INTEGER),
                        Column("due_at", "Due", ColumnKind.DATETIME),
                        Column("completed_at", "Completed", ColumnKind.DATETIME),
                        Column("outcome", "Outcome"),
                        Column("days_late", "Days late", ColumnKind.DECIMAL, 1),
                    ),
                    tuple(occurrences),
                ),
            ),
            charts=(
                ChartSpec(
                    "PM occurrences by site",
                    ChartKind.STACKED_BAR,
                    "by_site",
                    "site",
                    ("on_time", "late", "missed", "pending"),
                    "occurrences",
                ),
            ),
            notes=(
                "On time: completed within the grace of 10 % of the interval (at least a day) "
                "after the due date. Compliance counts on time against all judged occurrences "
                "(pending ones are not judged yet).",
            ),
        )


# --------------------------------------------------------------------------- bad actors


@dataclass(frozen=True)
class BadActors:
    """Assets with the most failures in the period: failure work orders, downtime, alerts."""

    name: str = "bad_actors"
    title: str = "Top bad actors"

    def check(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """``top`` (1-100, default 10) and ``rank_by`` (work_orders, downtime or alerts)."""
        unknown = set(options) - {"top", "rank_by"}
        if unknown:
            raise SourceError("bad_actors takes the options top and rank_by only")
        top = options.get("top", 10)
        if not isinstance(top, int) or isinstance(top, bool) or not 1 <= top <= MAX_TOP:
            raise SourceError(f"top must be a whole number from 1 to {MAX_TOP}")
        rank_by = options.get("rank_by", "work_orders")
        if rank_by not in RANKINGS:
            raise SourceError("rank_by must be one of " + ", ".join(RANKINGS))
        return {"top": top, "rank_by": rank_by}

    def run(self, session: Session, params: RunParams, site_scope: SiteScope) -> ReportData:
        """The top assets, ranked, with the totals of every asset in scope."""
        options = self.check(params.options)
        start, end = params.period_start, params.period_end
        failures: Counter[int] = Counter()
        down: dict[int, float] = defaultdict(float)
        alerts: Counter[int] = Counter()
        orders = session.execute(
            select(
                WorkOrder.asset_id,
                WorkOrder.type,
                WorkOrder.status,
                WorkOrder.created_at,
                WorkOrder.started_at,
                WorkOrder.completed_at,
            ).where(
                WorkOrder.type.in_(FAILURE_TYPES),
                WorkOrder.status != WorkOrderStatus.CANCELLED,
                (WorkOrder.created_at >= start) & (WorkOrder.created_at < end)
                | (WorkOrder.completed_at >= start) & (WorkOrder.completed_at < end),
            )
        )
        for o in orders:
            if start <= o.created_at < end:
                failures[o.asset_id] += 1
            if o.completed_at is not None and start <= o.completed_at < end:
                hours = downtime_hours(str(o.type), o.created_at, o.started_at, o.completed_at)
                down[o.asset_id] += hours or 0.0
        raised = session.execute(
            select(Alert.asset_id, func.count())
            .where(Alert.asset_id.is_not(None), Alert.raised_at >= start, Alert.raised_at < end)
            .group_by(Alert.asset_id)
        )
        for asset_id, count in raised:
            if asset_id is not None:
                alerts[asset_id] = count
        ids = set(failures) | set(down) | set(alerts)
        assets = {}
        if ids:
            stmt = (
                select(Asset.id, Asset.tag, Asset.name, Site.code)
                .join(Site, Site.id == Asset.site_id)
                .where(Asset.id.in_(sorted(ids)))
            )
            assets = {
                a.id: a for a in session.execute(stmt.where(in_scope(Asset.site_id, site_scope)))
            }
        rank_by = options["rank_by"]

        def order(i: int) -> tuple[float, float, float, float, str]:
            figures = {"work_orders": failures[i], "downtime": down[i], "alerts": alerts[i]}
            return (-figures[rank_by], -failures[i], -down[i], -alerts[i], assets[i].tag)

        ranked = sorted(assets, key=order)
        rows = tuple(
            (
                rank,
                assets[i].code,
                assets[i].tag,
                assets[i].name,
                failures[i],
                round(down[i], 1),
                alerts[i],
            )
            for rank, i in enumerate(ranked[: options["top"]], start=1)
        )
        series = {"work_orders": "failures", "downtime": "downtime_hours", "alerts": "alerts"}
        return ReportData(
            title=params.title,
            period_start=start,
            period_end=end,
            timezone=params.timezone,
            generated_at=params.as_of,
            summary=(
                Figure("Assets with failures or alerts", len(assets)),
                Figure("Failure work orders", sum(failures[i] for i in assets)),
                Figure(
                    "Failure downtime",
                    round(sum(down[i] for i in assets), 1),
                    ColumnKind.DECIMAL,
                    unit="h",
                ),
                Figure("Alerts raised", sum(alerts[i] for i in assets)),
            ),
            tables=(
                Table(
                    "top_assets",
                    f"Top {options['top']} by {options['rank_by'].replace('_', ' ')}",
                    (
                        Column("rank", "Rank", ColumnKind.INTEGER),
                        Column("site", "Site"),
                        Column("asset", "Asset"),
                        Column("name", "Name"),
                        Column("failures", "Failure work orders", ColumnKind.INTEGER),
                        Column("downtime_hours", "Downtime h", ColumnKind.DECIMAL, 1),
                        Column("alerts", "Alerts", ColumnKind.INTEGER),
                    ),
                    rows,
                ),
            ),
            charts=(
                ChartSpec(
                    "Top bad actors",
                    ChartKind.HORIZONTAL_BAR,
                    "top_assets",
                    "asset",
                    (series[options["rank_by"]],),
                ),
            ),
            notes=(
                "Failure work orders: corrective and condition-based work opened in the period. "
                "Downtime: from report to completion of failure work completed in the period.",
            ),
        )


# --------------------------------------------------------------------------- backlog


def age_bucket(age: dt.timedelta) -> str:
    """The backlog age bucket of a work order that has been open this long."""
    days = age.total_seconds() / 86400
    for limit, label in AGE_BUCKETS:
        if days < limit:
            return label
    return OLDEST_BUCKET


BUCKETS: Final = (*(label for _, label in AGE_BUCKETS), OLDEST_BUCKET)


@dataclass(frozen=True)
class Backlog:
    """Work orders open when the report runs, by age bucket and site, oldest first."""

    name: str = "backlog"
    title: str = "Open work-order backlog"

    def check(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """No options."""
        return _no_options(options)

    def run(self, session: Session, params: RunParams, site_scope: SiteScope) -> ReportData:
        """The backlog as of the run."""
        as_of = params.as_of
        stmt = (
            select(
                WorkOrder.id,
                WorkOrder.title,
                WorkOrder.type,
                WorkOrder.priority,
                WorkOrder.status,
                WorkOrder.created_at,
                WorkOrder.due_at,
                Asset.tag,
                Site.code,
            )
            .join(Asset, Asset.id == WorkOrder.asset_id)
            .join(Site, Site.id == Asset.site_id)
            .where(WorkOrder.status.in_(OPEN_STATUSES), WorkOrder.created_at <= as_of)
            .order_by(WorkOrder.created_at, WorkOrder.id)
        )
        per_site: dict[str, Counter[str]] = defaultdict(Counter)
        overdue_by_site: Counter[str] = Counter()
        orders: list[tuple[Cell, ...]] = []
        ages = []
        for o in session.execute(stmt.where(in_scope(Asset.site_id, site_scope))):
            age = as_of - o.created_at
            ages.append(age)
            overdue = o.due_at is not None and o.due_at < as_of
            per_site[o.code][age_bucket(age)] += 1
            overdue_by_site[o.code] += int(overdue)
            orders.append(
                (
                    o.id,
                    o.code,
                    o.tag,
                    o.title,
                    str(o.type).replace("_", " "),
                    str(o.priority),
                    str(o.status).replace("_", " "),
                    o.created_at,
                    o.due_at,
                    _days(age),
                    "yes" if overdue else "no",
                )
            )
        site_rows: tuple[tuple[Cell, ...], ...] = tuple(
            (
                code,
                *(per_site[code][b] for b in BUCKETS),
                sum(per_site[code].values()),
                overdue_by_site[code],
            )
            for code in sorted(per_site)
        )
        bucket_columns = tuple(
            Column(f"age_{i}", label, ColumnKind.INTEGER) for i, label in enumerate(BUCKETS)
        )
        return ReportData(
            title=params.title,
            period_start=params.period_start,
            period_end=params.period_end,
            timezone=params.timezone,
            generated_at=as_of,
            summary=(
                Figure("Open work orders", len(orders)),
                Figure("Overdue", sum(overdue_by_site.values())),
                Figure(
                    "Average age",
                    _days(sum(ages, dt.timedelta()) / len(ages)) if ages else None,
                    ColumnKind.DECIMAL,
                    unit="days",
                ),
                Figure(
                    "Oldest",
                    _days(max(ages)) if ages else None,
                    ColumnKind.DECIMAL,
                    unit="days",
                ),
            ),
            tables=(
                Table(
                    "by_site",
                    "Backlog by site and age",
                    (
                        Column("site", "Site"),
                        *bucket_columns,
                        Column("total", "Total", ColumnKind.INTEGER),
                        Column("overdue", "Overdue", ColumnKind.INTEGER),
                    ),
                    site_rows,
                ),
                Table(
                    "orders",
                    "Open work orders, oldest first",
                    (
                        Column("work_order", "Work order", ColumnKind.INTEGER),
                        Column("site", "Site"),
                        Column("asset", "Asset"),
                        Column("title", "Title"),
                        Column("type", "Type"),
                        Column("priority", "Priority"),
                        Column("status", "Status"),
                        Column("created_at", "Opened", ColumnKind.DATETIME),
                        Column("due_at", "Due", ColumnKind.DATETIME),
                        Column("age_days", "Age (days)", ColumnKind.DECIMAL, 1),
                        Column("overdue", "Overdue"),
                    ),
                    tuple(orders),
                ),
            ),
            charts=(
                ChartSpec(
                    "Backlog by age",
                    ChartKind.STACKED_BAR,
                    "by_site",
                    "site",
                    tuple(c.key for c in bucket_columns),
                    "work orders",
                ),
            ),
            notes=("The backlog is the state when the report ran, not over the period.",),
        )
