"""`maintainpro supply ...`: purchase orders, supplier scorecards and spend from the terminal."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from maintainpro.cli.context import CLI_ACTOR, cli_settings, fail, session_factory
from maintainpro.core.db import transaction
from maintainpro.supply.catalog_import import import_catalog
from maintainpro.supply.compliance import utilisation
from maintainpro.supply.contracts import Contract
from maintainpro.supply.fx import FxError, load_ecb_file
from maintainpro.supply.jobs import reorder_check
from maintainpro.supply.money import Money
from maintainpro.supply.performance import (
    NO_DATA,
    MetricKey,
    Period,
    Scorecard,
    ScorecardRules,
    scorecards,
)
from maintainpro.supply.purchasing import PoStatus, PurchaseOrder
from maintainpro.supply.rates import store_rate_table
from maintainpro.supply.spend import SpendGrouping, load_spend_facts, spend_by, spend_summary
from maintainpro.supply.suppliers import Supplier

supply_app = typer.Typer(
    help="Procurement: suppliers, catalogues, rates, contracts, orders, scorecards, spend.",
    no_args_is_help=True,
)

StartOption = Annotated[str, typer.Option("--start", help="first day, YYYY-MM-DD (included)")]
EndOption = Annotated[str, typer.Option("--end", help="day after the last, YYYY-MM-DD (excluded)")]


def _period(start: str, end: str) -> Period:
    try:
        first, last = dt.date.fromisoformat(start), dt.date.fromisoformat(end)
    except ValueError:
        raise fail("--start and --end must be dates written YYYY-MM-DD") from None
    if first >= last:
        raise fail("--start must be before --end (the end day is excluded)")
    return Period(first, last)


def _lead(card: Scorecard) -> str:
    metric = card.metric(MetricKey.LEAD_TIME)
    spread = metric.detail.get("std_dev_days")
    return NO_DATA if metric.value is None else f"{metric.value} ± {spread} days"


def _overview(cards: list[Scorecard]) -> Table:
    table = Table(title="Supplier scorecards")
    for column in ("supplier", "grade", "score", "on time", "OTIF", "lead time", "quality"):
        table.add_column(column, justify="left" if column == "supplier" else "right")
    for column in ("accuracy", "acknowledgement", "price compliance"):
        table.add_column(column, justify="right")
    for card in cards:
        table.add_row(
            card.code,
            card.grade or "—",
            NO_DATA if card.score is None else str(card.score),
            card.metric(MetricKey.ON_TIME).display,
            card.metric(MetricKey.OTIF).display,
            _lead(card),
            card.metric(MetricKey.QUALITY).display,
            card.metric(MetricKey.ACCURACY).display,
            card.metric(MetricKey.ACKNOWLEDGEMENT).display,
            card.metric(MetricKey.PRICE_COMPLIANCE).display,
        )
    return table


def _details(card: Scorecard) -> Table:
    score = NO_DATA if card.score is None else f"{card.score} ({card.grade})"
    table = Table(title=f"{card.code}: {score}")
    for column in ("metric", "value", "score", "weight", "based on", "note"):
        table.add_column(column, justify="left" if column in ("metric", "note") else "right")
    for metric in card.metrics:
        weight = card.weights_used.get(metric.key)
        table.add_row(
            metric.key.value.replace("_", " "),
            metric.display,
            "—" if metric.score is None else str(metric.score),
            "—" if weight is None else str(weight),
            str(metric.basis),
            metric.note,
        )
    if card.metric(MetricKey.LEAD_TIME).value is not None:
        table.caption = f"lead time {_lead(card)}"
    return table


@supply_app.command("scorecard")
def scorecard(
    start: StartOption,
    end: EndOption,
    supplier: Annotated[
        str | None, typer.Option("--supplier", help="supplier code; all suppliers without")
    ] = None,
) -> None:
    """Supplier performance in a period: grades, metrics and recommendations."""
    period = _period(start, end)
    settings = cli_settings()
    factory = session_factory(settings)
    rules = ScorecardRules(tolerance_pct=settings.receipt_tolerance_pct)
    console = Console()
    with factory() as session:
        ids: list[int] | None = None
        if supplier is not None:
            found = session.scalar(select(Supplier.id).where(Supplier.code == supplier))
            if found is None:
                raise fail(f"no supplier with code {supplier!r}")
            ids = [found]
        cards = scorecards(session, period, supplier_ids=ids, rules=rules)
    if supplier is None:
        cards.sort(key=lambda c: (c.score is None, -(c.score or 0), c.code))
        console.print(f"Supplier scorecards {period.start} to {period.end} (end excluded)")
        console.print(_overview(cards))
        return
    (card,) = cards
    score = NO_DATA if card.score is None else f"{card.score} ({card.grade})"
    console.print(
        f"{card.code} ({card.name}) {period.start} to {period.end} (end excluded): {score}"
    )
    console.print(_details(card))
    for advice in card.recommendations:
        figures = ", ".join(f"{k}={v}" for k, v in advice.figures.items())
        console.print(f"[bold]•[/] {advice.message}\n  [dim]{figures}[/]")


@supply_app.command("spend")
def spend(
    start: StartOption,
    end: EndOption,
    by: Annotated[
        SpendGrouping, typer.Option("--by", help="group by", case_sensitive=False)
    ] = SpendGrouping.SUPPLIER,
) -> None:
    """Committed spend in base currency, grouped, with contract and maverick shares."""
    period = _period(start, end)
    settings = cli_settings()
    factory = session_factory(settings)
    base = settings.base_currency
    with factory() as session:
        facts = load_spend_facts(session, until=period.end)
    report = spend_by(facts, period, base_currency=base, group_by=by)
    summary = spend_summary(facts, period, base_currency=base)
    table = Table(title=f"Spend by {by.value}, {base}")
    for column in (by.value, "name", "amount", "share", "orders", "lines"):
        table.add_column(column, justify="left" if column in (by.value, "name") else "right")
    for group in report.groups:
        table.add_row(
            group.key,
            group.label if group.label != group.key else "",
            group.amount.format(grouping=True),
            NO_DATA if group.share_pct is None else f"{group.share_pct}%",
            str(group.orders),
            str(group.lines),
        )
    table.add_row(
        "total", "", report.total.format(grouping=True), "", str(report.orders), "", style="bold"
    )
    console = Console()
    console.print(f"Committed spend {period.start} to {period.end} (end excluded)")
    console.print(table)
    console.print(
        f"On contract {summary.on_contract.format(grouping=True)}, maverick "
        f"{summary.maverick.format(grouping=True)}, contract savings "
        f"{summary.savings.total.format(grouping=True)}."
    )
    if report.skipped_orders:
        console.print(f"{report.skipped_orders} order(s) in another base currency left out.")


@supply_app.command("orders")
def orders(
    status: Annotated[
        PoStatus | None, typer.Option("--status", help="only orders in this state")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000, help="newest first")] = 50,
) -> None:
    """Purchase orders with their supplier, state and totals."""
    factory = session_factory(cli_settings())
    stmt = (
        select(PurchaseOrder)
        .options(selectinload(PurchaseOrder.supplier), selectinload(PurchaseOrder.lines))
        .order_by(PurchaseOrder.id.desc())
        .limit(limit)
    )
    if status is not None:
        stmt = stmt.where(PurchaseOrder.status == status)
    table = Table(title="Purchase orders" + (f" ({status.value})" if status else ""))
    for column in ("order", "supplier", "status", "total", "base total", "lines", "sent"):
        table.add_column(column, justify="right" if "total" in column else "left")
    with factory() as session:
        for order in session.scalars(stmt):
            table.add_row(
                order.number,
                order.supplier.code,
                order.status.value,
                Money.of(order.total, order.currency).format(grouping=True),
                Money.of(order.total_base, order.base_currency).format(grouping=True),
                str(len(order.lines)),
                order.sent_at.isoformat(timespec="minutes") if order.sent_at else "—",
            )
    Console().print(table)


@supply_app.command("suppliers")
def suppliers() -> None:
    """Suppliers with their status, currency, channel and capabilities."""
    factory = session_factory(cli_settings())
    table = Table(title="Suppliers")
    for column in ("code", "name", "status", "currency", "channel", "capabilities", "preferred"):
        table.add_column(column)
    with factory() as session:
        for supplier in session.scalars(select(Supplier).order_by(Supplier.code)):
            table.add_row(
                supplier.code,
                supplier.legal_name,
                supplier.status.value,
                supplier.currency,
                supplier.connection_type.value,
                ", ".join(supplier.capabilities),
                "yes" if supplier.preferred else "",
            )
    Console().print(table)


@supply_app.command("import-rates")
def import_rates(
    path: Annotated[Path, typer.Argument(help="an ECB reference-rate file: .xml, .csv or .zip")],
) -> None:
    """Store the ECB reference rates of a file (rates already stored are kept as they are)."""
    try:
        rates = load_ecb_file(path)
    except (OSError, FxError) as exc:
        raise fail(f"cannot read {path}: {exc}") from exc
    with transaction(session_factory(cli_settings())) as session:
        session.info["actor"] = CLI_ACTOR
        added, skipped = store_rate_table(session, rates)
    days = rates.publications
    Console().print(
        f"{added} rate(s) stored, {skipped} already there; "
        f"{len(days)} publication day(s) from {days[0].day} to {days[-1].day}"
    )


@supply_app.command("import-catalog")
def import_catalog_command(
    supplier_code: Annotated[str, typer.Option("--supplier", help="the supplier's code")],
    path: Annotated[Path, typer.Argument(help="the catalogue: .csv or .xlsx")],
) -> None:
    """Validate a catalogue file and apply it only if every line is valid (errors per line)."""
    suffix = path.suffix.lower()
    if suffix not in {".csv", ".xlsx"}:
        raise fail(f"{path.name}: use a .csv or .xlsx file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise fail(f"cannot read {path}: {exc}") from exc
    with transaction(session_factory(cli_settings())) as session:
        session.info["actor"] = CLI_ACTOR
        supplier = session.scalar(select(Supplier).where(Supplier.code == supplier_code))
        if supplier is None:
            raise fail(f"no supplier with code {supplier_code!r}")
        report = import_catalog(session, supplier, data, file_format=suffix[1:])
        if not report.applied:
            table = Table(title=f"{path.name}: nothing applied")
            for column in ("line", "column", "problem"):
                table.add_column(column)
            for error in report.errors:
                table.add_row(str(error.line), error.column or "", error.message)
            Console().print(table)
            raise fail(f"{len(report.errors)} problem(s) in {report.rows} line(s)")
    Console().print(
        f"{report.rows} line(s) applied: {report.items_created} item(s) created, "
        f"{report.items_updated} updated, {report.price_changes} price change(s) recorded"
    )


@supply_app.command("contracts")
def contracts(
    day: Annotated[str | None, typer.Option("--on", help="YYYY-MM-DD (default today)")] = None,
) -> None:
    """Contracts with their validity and how much of their cap is drawn."""
    try:
        today = dt.date.fromisoformat(day) if day else dt.datetime.now(dt.UTC).date()
    except ValueError:
        raise fail("--on must be a date, YYYY-MM-DD") from None
    table = Table(title=f"Contracts on {today}")
    for column in ("contract", "state", "valid", "cap", "drawn", "used", "days left"):
        table.add_column(column, justify="right" if column in {"cap", "drawn"} else "left")
    with session_factory(cli_settings())() as session:
        for contract in session.scalars(select(Contract).order_by(Contract.number)):
            use = utilisation(contract, today)
            table.add_row(
                use.number,
                use.state,
                f"{use.valid_from} .. {use.valid_to or 'open'}",
                str(Money.of(use.spend_cap, use.currency)) if use.spend_cap is not None else "none",
                str(Money.of(use.drawn, use.currency)),
                f"{use.pct_used} %" if use.pct_used is not None else "",
                "" if use.days_left is None else str(use.days_left),
            )
    Console().print(table)


@supply_app.command("reorder")
def reorder() -> None:
    """Requisition stock at or below its reorder point, then draft orders as the hub's job does."""
    settings = cli_settings()
    run = reorder_check(session_factory(settings), settings)
    rate = f"{run.ordered} of {run.considered}" if run.considered else "nothing to source"
    Console().print(
        f"{len(run.requisition_lines)} requisition line(s) raised; {len(run.orders)} draft "
        f"order(s); ordered automatically: {rate}; left for a buyer: {len(run.left_for_buyer)}"
    )
