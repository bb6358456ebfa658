"""Three-way match (pure): each kind of exception, its figures, and properties over any order."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from maintainpro.supply.matching import (
    ExceptionKind,
    InvoiceFacts,
    InvoiceLineFacts,
    MatchException,
    OrderLineFacts,
    PriorInvoice,
    Tolerances,
    three_way_match,
)
from maintainpro.supply.money import Money, line_total, sum_money

K = ExceptionKind
DAY = dt.date(2026, 12, 1)
ORDER = [
    OrderLineFacts(1, Decimal(10), Decimal("9.00"), accepted=Decimal(10)),
    OrderLineFacts(2, Decimal(5), Decimal("4.00"), accepted=Decimal(2)),
    OrderLineFacts(3, Decimal(3), Decimal("2.50"), accepted=Decimal(0)),
]
TOL = Tolerances(price_pct=Decimal(2), quantity_pct=Decimal(0))


def _invoice(
    lines: list[tuple[int | None, str, str]],
    *,
    currency: str = "USD",
    tax: str = "0",
    total: str | None = None,
    number: str = "INV-1",
    day: dt.date = DAY,
) -> InvoiceFacts:
    items = [
        InvoiceLineFacts(
            n,
            order_line,
            Decimal(q),
            Decimal(p),
            line_total(Money.of(p, currency), Decimal(q)).amount,
        )
        for n, (order_line, q, p) in enumerate(lines, start=1)
    ]
    lines_sum = sum((i.line_total for i in items), Decimal(0))
    return InvoiceFacts(
        number,
        day,
        currency,
        Decimal(total) if total is not None else lines_sum + Decimal(tax),
        Decimal(tax),
        items,
    )


def _kinds(found: list[MatchException]) -> list[tuple[ExceptionKind, int | None]]:
    return [(item.kind, item.line) for item in found]


def test_an_invoice_for_what_arrived_at_the_ordered_price_matches() -> None:
    invoice = _invoice([(1, "10", "9.00"), (2, "2", "4.00")], tax="17.10")
    assert three_way_match("USD", ORDER, invoice, TOL) == []


def test_price_above_tolerance_is_a_variance_below_it_is_not() -> None:
    within = _invoice([(1, "10", "9.18")])  # exactly +2 %
    assert three_way_match("USD", ORDER, within, TOL) == []
    cheaper = _invoice([(1, "10", "8.00")])
    assert three_way_match("USD", ORDER, cheaper, TOL) == []
    (found,) = three_way_match("USD", ORDER, _invoice([(1, "10", "9.19")]), TOL)
    assert (found.kind, found.line) == (K.PRICE_VARIANCE, 1)
    assert found.figures == {
        "order_line": "1",
        "invoiced": "9.19",
        "ordered": "9",
        "limit": "9.18",
    }
    assert found.as_json()["kind"] == "price_variance"


def test_billing_more_than_arrived_and_what_did_not_arrive() -> None:
    found = three_way_match("USD", ORDER, _invoice([(2, "3", "4.00"), (3, "1", "2.50")]), TOL)
    assert _kinds(found) == [(K.QUANTITY_OVER_RECEIVED, 1), (K.NOT_RECEIVED, 2)]
    assert found[0].figures == {"order_line": "2", "invoiced": "3", "received": "2"}
    # The quantity tolerance lets 2 received carry 2.5 billed at 25 %, not 3.
    loose = Tolerances(quantity_pct=Decimal(25))
    assert _kinds(three_way_match("USD", ORDER, _invoice([(2, "2.5", "4.00")]), loose)) == []


def test_earlier_invoices_count_towards_the_quantity() -> None:
    billed_before = [
        OrderLineFacts(1, Decimal(10), Decimal("9.00"), Decimal(10), already_invoiced=Decimal(8))
    ]
    found = three_way_match("USD", billed_before, _invoice([(1, "3", "9.00")]), TOL)
    assert _kinds(found) == [(K.QUANTITY_OVER_RECEIVED, 1)]
    assert found[0].figures["invoiced"] == "11"
    assert three_way_match("USD", billed_before, _invoice([(1, "2", "9.00")]), TOL) == []


def test_two_invoice_lines_on_one_order_line_add_up() -> None:
    found = three_way_match("USD", ORDER, _invoice([(2, "1", "4.00"), (2, "2", "4.00")]), TOL)
    assert _kinds(found) == [(K.QUANTITY_OVER_RECEIVED, 1)]


def test_unknown_lines_totals_and_currency() -> None:
    unknown = three_way_match("USD", ORDER, _invoice([(9, "1", "1.00"), (None, "1", "1")]), TOL)
    assert _kinds(unknown) == [(K.UNKNOWN_LINE, 1), (K.UNKNOWN_LINE, 2)]
    assert unknown[0].figures == {"order_line": "9"}
    wrong_total = three_way_match("USD", ORDER, _invoice([(1, "10", "9.00")], total="95.00"), TOL)
    assert _kinds(wrong_total) == [(K.TOTAL_MISMATCH, None)]
    assert wrong_total[0].figures == {"invoiced": "95", "expected": "90"}
    bad_line = _invoice([(1, "10", "9.00")])
    item = bad_line.lines[0]
    skewed = InvoiceFacts(
        bad_line.invoice_number,
        DAY,
        "USD",
        Decimal("91.00"),
        Decimal(0),
        [InvoiceLineFacts(1, 1, item.quantity, item.unit_price, Decimal("91.00"))],
    )
    assert _kinds(three_way_match("USD", ORDER, skewed, TOL)) == [(K.TOTAL_MISMATCH, 1)]
    # In another currency prices cannot be compared: only the currency is the finding.
    euros = three_way_match("USD", ORDER, _invoice([(1, "10", "99.00")], currency="EUR"), TOL)
    assert _kinds(euros) == [(K.CURRENCY_MISMATCH, None)]
    assert euros[0].figures == {"invoiced": "EUR", "ordered": "USD"}


def test_duplicates_by_number_typed_differently_or_by_date_and_total() -> None:
    invoice = _invoice([(1, "10", "9.00")], number="inv 0042")
    same_number = [PriorInvoice("INV-42", dt.date(2026, 11, 1), Decimal("5.00"))]
    found = three_way_match("USD", ORDER, invoice, TOL, same_number)
    assert _kinds(found) == [(K.DUPLICATE, None)]
    assert "INV-42 (the same number)" in found[0].message
    same_bill = [PriorInvoice("A-77", DAY, Decimal("90.00"))]
    assert _kinds(three_way_match("USD", ORDER, invoice, TOL, same_bill)) == [(K.DUPLICATE, None)]
    different = [
        PriorInvoice("INV-420", DAY, Decimal("45.00")),
        PriorInvoice("A-77", DAY - dt.timedelta(days=1), Decimal("90.00")),
    ]
    assert three_way_match("USD", ORDER, invoice, TOL, different) == []


# --- properties -------------------------------------------------------------------------------

quantities = st.decimals(min_value=Decimal(1), max_value=Decimal(500), places=0)
prices = st.decimals(min_value=Decimal("0.01"), max_value=Decimal(1000), places=2)


@st.composite
def orders(draw: st.DrawFn) -> list[OrderLineFacts]:
    """1-6 order lines, each partly or fully received."""
    lines = []
    for n in range(1, draw(st.integers(1, 6)) + 1):
        quantity = draw(quantities)
        accepted = draw(st.decimals(min_value=Decimal(1), max_value=quantity, places=0))
        lines.append(OrderLineFacts(n, quantity, draw(prices), accepted))
    return lines


def _exact_invoice(order: list[OrderLineFacts], tax: Decimal) -> InvoiceFacts:
    items = [
        InvoiceLineFacts(
            i,
            line.line_no,
            line.accepted,
            line.unit_price,
            line_total(Money.of(line.unit_price, "EUR"), line.accepted).amount,
        )
        for i, line in enumerate(order, start=1)
    ]
    total = sum_money((Money.of(i.line_total, "EUR") for i in items), "EUR").amount + tax
    return InvoiceFacts("P-1", DAY, "EUR", total, tax, items)


@given(order=orders(), tax=prices)
def test_billing_exactly_what_arrived_always_matches(
    order: list[OrderLineFacts], tax: Decimal
) -> None:
    invoice = _exact_invoice(order, tax)
    assert three_way_match("EUR", order, invoice, Tolerances(Decimal(0), Decimal(0))) == []


@given(order=orders(), tax=prices, data=st.data())
def test_the_lines_order_on_the_invoice_does_not_matter(
    order: list[OrderLineFacts], tax: Decimal, data: st.DataObject
) -> None:
    invoice = _exact_invoice(order, tax)
    marked = [
        InvoiceLineFacts(i.line_no, i.order_line_no, i.quantity + 1, i.unit_price * 2, i.line_total)
        for i in invoice.lines
    ]
    shuffled = data.draw(st.permutations(marked))
    ordered = InvoiceFacts("P-1", DAY, "EUR", invoice.total, tax, marked)
    moved = InvoiceFacts("P-1", DAY, "EUR", invoice.total, tax, shuffled)
    key = lambda e: (e.kind.value, e.line or 0)  # noqa: E731 - a sort key
    first = sorted(three_way_match("EUR", order, ordered, Tolerances()), key=key)
    second = sorted(three_way_match("EUR", order, moved, Tolerances()), key=key)
    assert [(e.kind, e.line, e.figures) for e in first] == [
        (e.kind, e.line, e.figures) for e in second
    ]


@given(order=orders(), pct=st.decimals(min_value=Decimal(0), max_value=Decimal(50), places=1))
def test_a_price_is_flagged_exactly_when_above_its_tolerance(
    order: list[OrderLineFacts], pct: Decimal
) -> None:
    tolerances = Tolerances(price_pct=pct)
    for line in order:
        limit = line.unit_price * (1 + pct / 100)
        for price, flagged in ((limit, False), (limit + Decimal("0.000001"), True)):
            invoice = InvoiceFacts(
                "P-1",
                DAY,
                "EUR",
                Decimal(0),
                Decimal(0),
                [InvoiceLineFacts(1, line.line_no, line.accepted, price, Decimal(0))],
            )
            found = three_way_match("EUR", order, invoice, tolerances)
            kinds = {e.kind for e in found}
            assert (K.PRICE_VARIANCE in kinds) is flagged
            assert not kinds & {K.QUANTITY_OVER_RECEIVED, K.NOT_RECEIVED, K.UNKNOWN_LINE}
