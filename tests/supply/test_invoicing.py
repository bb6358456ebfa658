"""Invoices: recording, the three-way match on stored orders, approval, invoiced and closed."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from maintainpro.core.users import Role, User
from maintainpro.supply.invoices import InvoiceStatus, SupplierInvoice
from maintainpro.supply.invoicing import (
    DuplicateInvoice,
    InvoiceError,
    InvoiceIn,
    InvoiceLineIn,
    InvoiceStateError,
    approve_invoice,
    close_order,
    record_invoice,
    reject_invoice,
)
from maintainpro.supply.matching import Tolerances
from maintainpro.supply.purchasing import ApprovalRefused, PoStatus, PoTransitionError
from maintainpro.supply.receiving import receive
from supply.lifecycle_world import build_order
from supply.procurement_world import World

AT = dt.datetime(2026, 12, 2, 9, 0, tzinfo=dt.UTC)
DAY = dt.date(2026, 12, 2)
TOL = Tolerances(price_pct=Decimal(2), quantity_pct=Decimal(0))


def _invoice(
    number: str, *lines: tuple[int | None, str, str], total: str, tax: str = "0", **kw: object
) -> InvoiceIn:
    return InvoiceIn(
        invoice_number=number,
        invoice_date=kw.pop("day", DAY),  # type: ignore[arg-type]
        currency=kw.pop("currency", "USD"),  # type: ignore[arg-type]
        total=Decimal(total),
        tax=Decimal(tax),
        lines=[InvoiceLineIn(n, Decimal(q), Decimal(p)) for n, q, p in lines],
    )


def _user(world: World, role: Role) -> User:
    user = world.db.get(User, world.user(role))
    assert user is not None
    return user


def _received(world: World, lines: list[tuple[str, str]]):  # type: ignore[no-untyped-def]
    order = build_order(world, lines)
    for line in order.lines:
        receive(world.db, line, quantity=line.quantity, received_at=AT)
    assert order.status is PoStatus.RECEIVED
    return order


def test_a_matching_invoice_makes_the_order_invoiced_then_closed(world: World) -> None:
    order = _received(world, [("10", "9.00"), ("4", "2.50")])
    invoice = record_invoice(
        world.db,
        order,
        _invoice("INV-1", (1, "10", "9.00"), (2, "4", "2.50"), tax="10.00", total="110.00"),
        tolerances=TOL,
        now=AT,
    )
    assert (invoice.status, invoice.exceptions) == (InvoiceStatus.MATCHED, [])
    assert [item.line_total for item in invoice.lines] == [Decimal("90.00"), Decimal("10.00")]
    assert [line.invoiced_quantity for line in order.lines] == [Decimal(10), Decimal(4)]
    assert order.status is PoStatus.INVOICED
    assert [h.note for h in order.history][-2:] == [
        "invoice INV-1 recorded: matched",
        "everything received invoiced",
    ]
    close_order(order, now=AT)
    assert order.status is PoStatus.CLOSED
    with pytest.raises(PoTransitionError):
        close_order(order)


def test_partial_invoices_invoice_the_order_with_the_last_one(world: World) -> None:
    order = build_order(world, [("10", "9.00")])
    receive(world.db, order.lines[0], quantity=Decimal(6), received_at=AT)
    first = record_invoice(
        world.db, order, _invoice("A1", (1, "6", "9.00"), total="54.00"), tolerances=TOL
    )
    assert first.status is InvoiceStatus.MATCHED
    assert order.status is PoStatus.PARTIALLY_RECEIVED
    receive(world.db, order.lines[0], quantity=Decimal(4), received_at=AT)
    assert order.status is PoStatus.RECEIVED  # received, the last 4 not yet billed
    over = record_invoice(
        world.db, order, _invoice("A2", (1, "5", "9.00"), total="45.00"), tolerances=TOL
    )
    assert over.status is InvoiceStatus.EXCEPTION
    assert [(e["kind"], e["invoiced"], e["received"]) for e in over.exceptions] == [
        ("quantity_over_received", "11", "10")
    ]
    assert order.lines[0].invoiced_quantity == Decimal(6)  # an exception counts for nothing yet
    reject_invoice(world.db, over, actor_id=None, reason="bills one too many")
    assert over.status is InvoiceStatus.REJECTED
    assert order.status is PoStatus.RECEIVED
    record_invoice(world.db, order, _invoice("A3", (1, "4", "9.00"), total="36.00"), tolerances=TOL)
    assert order.status is PoStatus.INVOICED


def test_an_exception_invoice_is_approved_with_a_reason_by_an_approver(world: World) -> None:
    order = _received(world, [("10", "9.00")])
    invoice = record_invoice(
        world.db,
        order,
        _invoice("PX-1", (1, "10", "9.50"), total="95.00"),
        tolerances=TOL,
        now=AT,
    )
    assert invoice.status is InvoiceStatus.EXCEPTION
    (finding,) = invoice.exceptions
    assert finding == {
        "kind": "price_variance",
        "line": 1,
        "message": finding["message"],
        "order_line": "1",
        "invoiced": "9.5",
        "ordered": "9",
        "limit": "9.18",
    }
    assert "above the ordered 9" in finding["message"]
    assert order.status is PoStatus.RECEIVED
    with pytest.raises(ApprovalRefused, match="analyst may not approve"):
        approve_invoice(world.db, invoice, approver=_user(world, Role.ANALYST), reason="ok")
    buyer = _user(world, Role.PROCUREMENT)
    with pytest.raises(InvoiceError, match="needs a reason"):
        approve_invoice(world.db, invoice, approver=buyer, reason="  ")
    assert invoice.status is InvoiceStatus.EXCEPTION
    approve_invoice(world.db, invoice, approver=buyer, reason="freight surcharge agreed", now=AT)
    assert invoice.status is InvoiceStatus.APPROVED
    assert order.lines[0].invoiced_quantity == Decimal(10)
    approval = next(h for h in order.history if "approved with" in h.note)
    assert approval.note == ("invoice PX-1 approved with 1 exception(s): freight surcharge agreed")
    assert approval.actor_id == buyer.id
    assert approval.detail == [
        {"line": 1, "field": "invoice_exception", "old": "price_variance", "new": "approved"}
    ]
    assert order.status is PoStatus.INVOICED
    with pytest.raises(InvoiceStateError, match="it is approved"):
        approve_invoice(world.db, invoice, approver=buyer, reason="again")


def test_invoice_numbers_are_unique_per_supplier(world: World) -> None:
    order = build_order(world, [("10", "9.00")])
    record_invoice(world.db, order, _invoice("N-1", (1, "1", "9.00"), total="9.00"), tolerances=TOL)
    with pytest.raises(DuplicateInvoice, match="already sent an invoice"):
        record_invoice(
            world.db, order, _invoice("N-1", (1, "2", "9.00"), total="18.00"), tolerances=TOL
        )
    other = build_order(world, [("1", "1.00")], code="OTHER")
    record_invoice(world.db, other, _invoice("N-1", (1, "1", "1.00"), total="1.00"), tolerances=TOL)
    assert world.db.query(SupplierInvoice).count() == 2


def test_an_invoice_before_the_goods_and_a_lookalike_are_exceptions(world: World) -> None:
    order = build_order(world, [("10", "9.00")])
    early = record_invoice(
        world.db, order, _invoice("E-0007", (1, "10", "9.00"), total="90.00"), tolerances=TOL
    )
    assert [e["kind"] for e in early.exceptions] == ["not_received"]
    again = record_invoice(
        world.db, order, _invoice("E7", (1, "10", "9.00"), total="90.00"), tolerances=TOL
    )
    assert [e["kind"] for e in again.exceptions] == ["duplicate", "not_received"]
    assert again.exceptions[0]["other_invoice"] == "E-0007"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (_invoice("B", (1, "1", "9.00"), total="9.001"), "more decimals than USD"),
        (_invoice("B", (1, "1", "9"), total="9", currency="JPX"), "JPX"),
        (_invoice("B", (1, "0", "9.00"), total="0"), "quantity must be positive"),
        (_invoice("B", total="0"), "at least one line"),
        (_invoice("B", (1, "1", "-9"), total="0"), "unit price cannot be negative"),
    ],
)
def test_bad_invoices_are_refused(world: World, data: InvoiceIn, message: str) -> None:
    order = build_order(world, [("10", "9.00")])
    with pytest.raises(InvoiceError, match=message):
        record_invoice(world.db, order, data, tolerances=TOL)
    assert world.db.query(SupplierInvoice).count() == 0


def test_an_order_not_sent_takes_no_invoice(world: World) -> None:
    order = build_order(world, send=False)
    with pytest.raises(PoTransitionError, match="cannot take an invoice"):
        record_invoice(world.db, order, _invoice("Z", (1, "1", "9"), total="9"), tolerances=TOL)
