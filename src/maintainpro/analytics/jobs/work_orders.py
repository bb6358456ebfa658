"""fact_work_order and fact_work_order_status: durations, downtime, labour and parts cost.

A work order is reloaded whole (its row and its status intervals) when it, one of its labour
notes or one of its reservations changed in the window. Status history comes from the
``work_order.status_changed`` events the services write in the same transaction as the move.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Select, func, or_, select, union

from maintainpro.analytics import schema
from maintainpro.analytics.extract import to_arrow
from maintainpro.analytics.jobs.base import JobResult, Window, rate_lookup, source
from maintainpro.analytics.schema import WarehouseTable
from maintainpro.analytics.transforms import (
    FAILURE_TYPES,
    StatusChange,
    date_key,
    downtime_hours,
    hours_between,
    hours_in,
    parts_cost,
    status_intervals,
    utc,
)
from maintainpro.analytics.warehouse import WarehouseTarget

STATUS_TOPIC = "work_order.status_changed"


def changed_work_orders(since: dt.datetime) -> Select[Any]:
    """Ids of work orders that changed, or whose notes or reservations did, since ``since``."""
    wo, notes, res = source("work_orders"), source("work_order_notes"), source("reservations")
    return select(
        union(
            select(wo.c.id).where(wo.c.updated_at >= since),
            select(notes.c.work_order_id).where(notes.c.created_at >= since),
            select(res.c.work_order_id).where(
                or_(res.c.created_at >= since, res.c.closed_at >= since)
            ),
        ).subquery()
    )


def _aware(value: Any) -> dt.datetime:
    moment = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


# Events are written after the order they describe; the margin allows for clock skew between
# the processes that wrote them.
CLOCK_MARGIN = dt.timedelta(days=1)


def load_status_changes(
    connection: Connection, ids: Select[Any] | None, not_before: dt.datetime | None = None
) -> dict[int, list[StatusChange]]:
    """Status changes per work order from the outbox events (all, or of the given ids).

    ``not_before`` (the earliest creation of those orders) skips older events before their
    JSON payload is looked into, which is what an incremental run spends its time on.
    """
    events = source("outbox_events")
    wo_id = events.c.payload["work_order_id"].as_integer()
    stmt = select(wo_id, events.c.created_at, events.c.payload).where(
        events.c.topic == STATUS_TOPIC
    )
    if not_before is not None:
        stmt = stmt.where(events.c.created_at >= not_before - CLOCK_MARGIN)
    if ids is not None:
        stmt = stmt.where(wo_id.in_(ids))
    changes: dict[int, list[StatusChange]] = defaultdict(list)
    for work_order_id, created_at, payload in connection.execute(stmt.order_by(events.c.id)):
        if work_order_id is None or not isinstance(payload, dict):
            continue
        changes[int(work_order_id)].append(
            StatusChange(_aware(created_at), str(payload.get("from")), str(payload.get("to")))
        )
    return changes


def _labour(connection: Connection, ids: Select[Any] | None) -> dict[int, Decimal]:
    notes = source("work_order_notes")
    stmt = select(notes.c.work_order_id, func.sum(notes.c.hours)).group_by(notes.c.work_order_id)
    if ids is not None:
        stmt = stmt.where(notes.c.work_order_id.in_(ids))
    return {wo: Decimal(str(hours)) for wo, hours in connection.execute(stmt) if hours is not None}


def _consumed(
    connection: Connection, ids: Select[Any] | None
) -> dict[int, list[tuple[Decimal, Decimal | None, str]]]:
    res, levels, parts = source("reservations"), source("stock_levels"), source("parts")
    stmt = (
        select(res.c.work_order_id, res.c.quantity, parts.c.unit_cost, parts.c.currency)
        .join(levels, levels.c.id == res.c.stock_level_id)
        .join(parts, parts.c.id == levels.c.part_id)
        .where(res.c.status == "consumed")
    )
    if ids is not None:
        stmt = stmt.where(res.c.work_order_id.in_(ids))
    consumed: dict[int, list[tuple[Decimal, Decimal | None, str]]] = defaultdict(list)
    for wo, quantity, unit_cost, currency in connection.execute(stmt):
        consumed[wo].append((Decimal(quantity), unit_cost, currency))
    return consumed


@dataclass(frozen=True)
class WorkOrdersJob:
    """Work orders and their status intervals."""

    name: str = "fact_work_order"
    description: str = "Work orders: durations, downtime, waiting for parts, labour, parts cost."
    outputs: tuple[WarehouseTable, ...] = (
        schema.FACT_WORK_ORDER,
        schema.FACT_WORK_ORDER_STATUS,
    )
    overlap: dt.timedelta = dt.timedelta(minutes=10)

    def run(self, source_db: Connection, target: WarehouseTarget, window: Window) -> JobResult:
        """Replace the changed work orders' rows in both tables."""
        wo, assets = source("work_orders"), source("assets")
        ids = None if window.since is None else changed_work_orders(window.since)
        stmt = select(wo, assets.c.site_id).join(assets, assets.c.id == wo.c.asset_id)
        if ids is not None:
            stmt = stmt.where(wo.c.id.in_(ids))
        orders = source_db.execute(stmt.order_by(wo.c.id)).all()
        first = min((o.created_at for o in orders), default=None) if ids is not None else None
        changes = load_status_changes(source_db, ids, first)
        labour = _labour(source_db, ids)
        consumed = _consumed(source_db, ids)
        rates = rate_lookup(source_db, window.base_currency)
        fact_rows, status_rows = self.transform(
            orders, changes, labour, consumed, rates, window.base_currency
        )
        facts = to_arrow(fact_rows, schema.FACT_WORK_ORDER.arrow_schema)
        statuses = to_arrow(status_rows, schema.FACT_WORK_ORDER_STATUS.arrow_schema)
        if window.full:
            target.delete_all(schema.FACT_WORK_ORDER)
            target.delete_all(schema.FACT_WORK_ORDER_STATUS)
        else:
            target.delete_keys(schema.FACT_WORK_ORDER, facts)
            target.delete_keys(schema.FACT_WORK_ORDER_STATUS, facts, on=("work_order_key",))
        written = target.insert(schema.FACT_WORK_ORDER, facts)
        written += target.insert(schema.FACT_WORK_ORDER_STATUS, statuses)
        return JobResult(rows_in=len(orders), rows_out=written)

    @staticmethod
    def transform(
        orders: Sequence[Any],
        changes: dict[int, list[StatusChange]],
        labour: dict[int, Decimal],
        consumed: dict[int, list[tuple[Decimal, Decimal | None, str]]],
        rates: Any,
        base_currency: str,
    ) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        """Fact rows and status-interval rows of the extracted work orders."""
        fact_rows: list[tuple[Any, ...]] = []
        status_rows: list[tuple[Any, ...]] = []
        for o in orders:
            wo_type = str(o.type)
            intervals = status_intervals(
                o.created_at,
                changes.get(o.id, []),
                str(o.status),
                o.closed_at or o.completed_at or o.updated_at,
            )
            for i in intervals:
                status_rows.append(
                    (o.id, i.seq, i.status, utc(i.entered_at), utc(i.left_at), i.hours)
                )
            cost_day = (o.completed_at or o.closed_at or o.updated_at).date()
            cost, complete = parts_cost(consumed.get(o.id, []), base_currency, rates.on(cost_day))
            fact_rows.append(
                (
                    o.id,
                    o.asset_id,
                    o.site_id,
                    o.schedule_id,
                    o.assignee_id,
                    wo_type,
                    str(o.priority),
                    str(o.status),
                    str(o.origin),
                    wo_type in FAILURE_TYPES,
                    utc(o.created_at),
                    date_key(o.created_at),
                    utc(o.due_at),
                    utc(o.started_at),
                    utc(o.completed_at),
                    utc(o.closed_at),
                    hours_between(o.created_at, o.started_at),
                    hours_between(o.created_at, o.completed_at),
                    downtime_hours(wo_type, o.created_at, o.started_at, o.completed_at),
                    hours_in(intervals, "waiting_for_parts"),
                    hours_in(intervals, "on_hold"),
                    labour.get(o.id, Decimal(0)),
                    cost,
                    base_currency,
                    complete,
                )
            )
        return fact_rows, status_rows
