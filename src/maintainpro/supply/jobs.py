"""Procurement's scheduled jobs: the reorder-point check and the daily contract watch.

Each job is one function of (session factory, settings) that the supervisor runs in a worker
thread; tests call them directly with a fixed day.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

from sqlalchemy.orm import Session, sessionmaker

from maintainpro.config import Settings
from maintainpro.core.audit import SYSTEM, set_actor
from maintainpro.core.db import transaction, utcnow
from maintainpro.supply.compliance import check_expiring_contracts
from maintainpro.supply.rates import stored_converter
from maintainpro.supply.requisitions import requisitions_from_reorder_points
from maintainpro.supply.sourcing import generate_purchase_orders

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReorderRun:
    """What one reorder check did: requisition lines raised and orders drafted."""

    requisition_lines: list[int] = field(default_factory=list)
    orders: list[int] = field(default_factory=list)
    considered: int = 0
    ordered: int = 0
    left_for_buyer: list[int] = field(default_factory=list)


def reorder_check(
    factory: sessionmaker[Session],
    settings: Settings,
    *,
    now: dt.datetime | None = None,
) -> ReorderRun:
    """Requisition stock at or below its reorder point, then (if enabled) order automatically.

    The requisitions commit on their own first: a sourcing failure (a missing exchange rate,
    say) must not lose them. Automatic ordering sources every open requisition line, those
    from work-order shortages and people included, as ``POST /purchase-orders/auto`` does.
    """
    when = now or utcnow()
    with transaction(factory) as session:
        set_actor(session, SYSTEM)
        lines = [line.id for line in requisitions_from_reorder_points(session)]
    if not settings.auto_purchase_orders:
        run = ReorderRun(requisition_lines=lines)
    else:
        with transaction(factory) as session:
            set_actor(session, SYSTEM)
            result = generate_purchase_orders(
                session,
                base_currency=settings.base_currency,
                fx=stored_converter(session),
                today=when.date(),
                now=when,
            )
            session.flush()
            run = ReorderRun(
                requisition_lines=lines,
                orders=[order.id for order in result.orders],
                considered=result.considered,
                ordered=result.ordered,
                left_for_buyer=list(result.left_for_buyer),
            )
    if run.requisition_lines or run.orders or run.left_for_buyer:
        log.info(
            "reorder check",
            extra={
                "requisition_lines": run.requisition_lines,
                "orders": run.orders,
                "left_for_buyer": run.left_for_buyer,
            },
        )
    return run


def contract_watch(
    factory: sessionmaker[Session], settings: Settings, *, today: dt.date | None = None
) -> list[int]:
    """Warn about contracts close to their end or their cap; returns the outbox event ids."""
    day = today or utcnow().date()
    with transaction(factory) as session:
        set_actor(session, SYSTEM)
        events = check_expiring_contracts(session, day, settings.contract_warn_days)
        session.flush()
        ids = [event.id for event in events]
    if ids:
        log.info("contract warnings", extra={"events": ids})
    return ids
