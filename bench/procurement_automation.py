"""Automation rate of purchasing on the demo data: requisition lines ordered with no human step.

Seeds a fresh database with the demo plant and the procurement demo (suppliers, catalogues, the
contract, stored ECB rates, three months of past orders, today's work orders with short parts
and stock below reorder points). Then does what the running hub does:

1. delivers the outbox's ``part.demand`` events to the requisition handler (work-order
   shortages become requisition lines, one transaction per event);
2. raises requisitions for every stock level at or below its reorder point;
3. runs automatic sourcing (``generate_purchase_orders``) for a company in the base currency.

It prints the share of requisition lines that became purchase-order lines, by choice rule, and
each line left for a buyer with the reason sourcing recorded. Not a test: run it by hand, e.g.

    .venv/bin/python bench/procurement_automation.py
    .venv/bin/python bench/procurement_automation.py --backend postgresql --base-currency EUR
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from sqlalchemy import func, select
from storage import database, print_header

from maintainpro.core.audit import install_audit
from maintainpro.core.db import build_session_factory, utcnow
from maintainpro.core.events import OutboxEvent, deliver_pending
from maintainpro.demo.plant import seed_demo_plant
from maintainpro.demo.procurement import (
    AutomationReport,
    automation_report,
    run_automatic_purchasing,
    seed_demo_procurement,
)
from maintainpro.supply.requisitions import part_demand_handler

GOAL = 0.90
PASSWORD = "bench password 1234"  # noqa: S105 - a throwaway database


def percent(share: object) -> str:
    """A 0..1 share as a percentage, or "no data"."""
    return "no data" if share is None else f"{float(str(share)) * 100:.1f} %"


def show(report: AutomationReport, seconds: float, orders: int) -> None:
    """Print the figures and the lines left for a buyer."""
    print()
    print(f"requisition lines considered: {report.considered}")
    print(f"ordered with no human step:   {report.ordered}  ({percent(report.rate)})")
    print(
        f"  among lines some active supplier prices: {report.priced_ordered} of "
        f"{report.priced_considered}  ({percent(report.priced_rate)})"
    )
    print(f"draft purchase orders: {orders}; sourcing took {seconds * 1000:.0f} ms")
    print("order lines by choice rule:")
    for rule, count in report.by_rule.items():
        print(f"  {rule}: {count}")
    print("left for a buyer:")
    for line in report.left:
        need = f", needed by {line.need_by}" if line.need_by else ""
        print(f"  {line.part} x {line.quantity.normalize():f} ({line.source}{need}): {line.reason}")
    verdict = "meets" if report.rate is not None and report.rate >= GOAL else "MISSES"
    print(f"\n{verdict} the goal of {GOAL:.0%} of requisition lines ordered automatically")


def main() -> None:
    """Seed, raise requisitions the way the hub does, source them and report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--base-currency", default="USD")
    args = parser.parse_args()
    print_header("Procurement automation rate on the demo data")
    now = utcnow()
    print(f"today: {now.date()}; base currency: {args.base_currency}")
    install_audit()
    with tempfile.TemporaryDirectory() as tmp, database(args.backend, Path(tmp)) as engine:
        factory = build_session_factory(engine)
        with factory() as session, session.begin():
            seed_demo_plant(session, PASSWORD, now=now)
            seeded = seed_demo_procurement(
                session, now=now, base_currency=args.base_currency, purchase_today=False
            )
            assert seeded is not None, "the demo plant was not seeded"
        with factory() as session:
            shortages = session.scalar(
                select(func.count())
                .select_from(OutboxEvent)
                .where(OutboxEvent.topic == "part.demand")
            )
        handlers = {"part.demand": [part_demand_handler(factory)]}
        while deliver_pending(factory, handlers, now=utcnow()):
            pass
        print(f"work-order shortages delivered through the outbox: {shortages}")
        with factory() as session, session.begin():
            started = time.perf_counter()
            result = run_automatic_purchasing(
                session, base_currency=args.base_currency, today=now.date(), now=now
            )
            seconds = time.perf_counter() - started
            report = automation_report(session, result, now.date())
            show(report, seconds, len(result.orders))


if __name__ == "__main__":
    main()
