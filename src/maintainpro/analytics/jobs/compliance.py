"""fact_schedule_compliance: each preventive occurrence done on time, late, or missed."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Connection, or_, select

from maintainpro.analytics import schema
from maintainpro.analytics.extract import to_arrow
from maintainpro.analytics.jobs.base import JobResult, Window, source
from maintainpro.analytics.schema import WarehouseTable
from maintainpro.analytics.transforms import date_key, grace_period, pm_outcome, utc
from maintainpro.analytics.warehouse import WarehouseTarget

# Occurrences whose outcome can still change with time alone (pending becomes missed), so
# every run re-evaluates them whatever their change time.
OPEN_STATUSES = ("open", "assigned", "in_progress", "on_hold", "waiting_for_parts")


@dataclass(frozen=True)
class ComplianceJob:
    """Work orders that came from a maintenance schedule, judged against their due date."""

    name: str = "fact_schedule_compliance"
    description: str = "Preventive occurrences: on time, late, missed or pending."
    outputs: tuple[WarehouseTable, ...] = (schema.FACT_SCHEDULE_COMPLIANCE,)
    overlap: dt.timedelta = dt.timedelta(minutes=10)

    def run(self, source_db: Connection, target: WarehouseTarget, window: Window) -> JobResult:
        """Replace the rows of occurrences that changed or are still open."""
        wo, plans, assets = source("work_orders"), source("maintenance_schedules"), source("assets")
        stmt = (
            select(
                wo.c.id,
                wo.c.schedule_id,
                wo.c.asset_id,
                assets.c.site_id,
                wo.c.status,
                wo.c.due_at,
                wo.c.completed_at,
                plans.c.interval_count,
                plans.c.interval_unit,
            )
            .join(assets, assets.c.id == wo.c.asset_id)
            .outerjoin(plans, plans.c.id == wo.c.schedule_id)
            .where(wo.c.schedule_id.is_not(None))
        )
        if window.since is not None:
            stmt = stmt.where(or_(wo.c.updated_at >= window.since, wo.c.status.in_(OPEN_STATUSES)))
        rows = []
        for o in source_db.execute(stmt.order_by(wo.c.id)):
            unit = None if o.interval_unit is None else str(o.interval_unit)
            grace = grace_period(o.interval_count, unit)
            outcome = pm_outcome(
                status=str(o.status),
                due_at=o.due_at,
                completed_at=o.completed_at,
                grace=grace,
                now=window.until,
            )
            late = None
            if o.due_at is not None and o.completed_at is not None:
                late = max((o.completed_at - o.due_at).total_seconds() / 86400.0, 0.0)
            rows.append(
                (
                    o.id,
                    o.schedule_id,
                    o.asset_id,
                    o.site_id,
                    utc(o.due_at),
                    date_key(o.due_at) if o.due_at else None,
                    grace.total_seconds() / 3600.0,
                    utc(o.completed_at),
                    outcome,
                    late,
                )
            )
        table = to_arrow(rows, schema.FACT_SCHEDULE_COMPLIANCE.arrow_schema)
        if window.full:
            target.delete_all(schema.FACT_SCHEDULE_COMPLIANCE)
        else:
            target.delete_keys(schema.FACT_SCHEDULE_COMPLIANCE, table)
        return JobResult(
            rows_in=len(rows), rows_out=target.insert(schema.FACT_SCHEDULE_COMPLIANCE, table)
        )
