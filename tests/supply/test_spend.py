"""Spend analytics: base-currency amounts, grouping, maverick spend, variance, savings, HHI."""

from __future__ import annotations

import dataclasses
import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from maintainpro.core.users import Role
from maintainpro.supply.catalogs import PriceChange
from maintainpro.supply.money import Money
from maintainpro.supply.performance import Period
from maintainpro.supply.purchasing import (
    ApprovalPolicy,
    PurchaseOrder,
    add_line,
    approve_order,
    cancel_order,
    new_purchase_order,
)
from maintainpro.supply.requisitions import manual_requisition
from maintainpro.supply.spend import (
    PriceChangeFact,
    SpendGrouping,
    SpendLineFact,
    SpendOrderFact,
    breaks_on,
    line_amounts_in_base,
    list_price_on,
    load_spend_facts,
    period_key,
    spend_by,
    spend_summary,
)
from supply.procurement_world import EUR_USD, TODAY, World
from supply.test_performance import APPROVED, eur_contract_order

UTC = dt.UTC
Q4 = Period(dt.date(2026, 10, 1), dt.date(2027, 1, 1))
D = Decimal


def spend_line(
    total: str,
    *,
    part: int = 1,
    quantity: str = "1",
    unit_price: str | None = None,
    **fields: object,
) -> SpendLineFact:
    """A line of one part; unit price = total / quantity unless told."""
    price = D(unit_price) if unit_price is not None else D(total) / D(quantity)
    return SpendLineFact(
        line_no=1,
        part_id=part,
        part_number=f"P-{part}",
        category=str(fields.pop("category", "bearings")),
        quantity=D(quantity),
        unit_price=price,
        line_total=D(total),
        **fields,  # type: ignore[arg-type]
    )


def spend_order(
    *lines: SpendLineFact,
    supplier: str = "ACME",
    day: dt.date = dt.date(2026, 11, 10),
    currency: str = "USD",
    rate: str = "1",
    base: str = "USD",
    order_id: int = 1,
) -> SpendOrderFact:
    """A committed order whose stored totals match its lines at the rate."""
    total = sum((ln.line_total for ln in lines), D(0))
    total_base = Money(total * D(rate), base).round().amount
    return SpendOrderFact(
        order_id=order_id,
        number=f"PO-{order_id:06d}",
        supplier_code=supplier,
        supplier_name=f"{supplier} Ltd",
        day=day,
        currency=currency,
        base_currency=base,
        fx_rate=D(rate),
        total=total,
        total_base=total_base,
        lines=lines,
    )


# --- conversion ------------------------------------------------------------------------


def test_lines_split_the_stored_base_total_so_they_add_up_to_it() -> None:
    order = spend_order(
        spend_line("0.05"), spend_line("0.05"), spend_line("0.05"), currency="EUR", rate="1.1"
    )
    # Each line alone would be 0.055 -> 0.06 (0.18 in all); the order says 0.165 -> 0.17.
    assert order.total_base == D("0.17")
    amounts = line_amounts_in_base(order)
    assert [m.amount for m in amounts] == [D("0.06"), D("0.06"), D("0.05")]
    assert {m.currency for m in amounts} == {"USD"}


def test_stale_totals_fall_back_to_converting_each_line() -> None:
    order = spend_order(spend_line("10.00"), spend_line("5.00"), currency="EUR", rate="1.08")
    stale = dataclasses.replace(order, total=D(0), total_base=D(0))
    assert [m.amount for m in line_amounts_in_base(stale)] == [D("10.80"), D("5.40")]


@settings(max_examples=200, deadline=None)
@given(
    totals=st.lists(
        st.decimals(min_value=0, max_value=100_000, places=2, allow_nan=False), min_size=1
    ).filter(any),
    rate=st.decimals(min_value=D("0.0001"), max_value=200, places=6, allow_nan=False),
)
def test_line_amounts_always_sum_to_the_order_base_total(
    totals: list[Decimal], rate: Decimal
) -> None:
    order = spend_order(*(spend_line(str(t)) for t in totals), currency="EUR", rate=str(rate))
    amounts = line_amounts_in_base(order)
    assert sum(m.amount for m in amounts) == order.total_base
    for amount, total in zip(amounts, totals, strict=True):
        # Never more than one cent from converting the line on its own.
        assert abs(amount.amount - total * rate) < D("0.015")


# --- grouping --------------------------------------------------------------------------


def world_of_orders() -> list[SpendOrderFact]:
    """Three suppliers, two sites, two quarters, one order in another base currency."""
    return [
        spend_order(
            spend_line("100.00", site="S1", asset="P-1"),
            spend_line("50.00", part=2, category="seals", site="S2"),
            supplier="ACME",
            day=dt.date(2026, 10, 5),
            order_id=1,
        ),
        spend_order(
            spend_line("200.00"),
            supplier="BETA",
            day=dt.date(2026, 11, 20),
            currency="EUR",
            rate="1.08",
            order_id=2,
        ),
        spend_order(
            spend_line("30.00", site="S1"), supplier="ACME", day=dt.date(2026, 12, 31), order_id=3
        ),
        spend_order(spend_line("999.00"), supplier="GAMMA", day=dt.date(2027, 1, 1), order_id=4),
        spend_order(spend_line("999.00"), supplier="GAMMA", base="EUR", order_id=5),
    ]


@pytest.mark.parametrize(
    ("grouping", "expected"),
    [
        (SpendGrouping.SUPPLIER, [("BETA", "216.00"), ("ACME", "180.00")]),
        (SpendGrouping.CATEGORY, [("bearings", "346.00"), ("seals", "50.00")]),
        (SpendGrouping.SITE, [("unassigned", "216.00"), ("S1", "130.00"), ("S2", "50.00")]),
        (SpendGrouping.ASSET, [("unassigned", "296.00"), ("P-1", "100.00")]),
        (SpendGrouping.MONTH, [("2026-10", "150.00"), ("2026-11", "216.00"), ("2026-12", "30.00")]),
        (SpendGrouping.QUARTER, [("2026-Q4", "396.00")]),
        (SpendGrouping.YEAR, [("2026", "396.00")]),
    ],
)
def test_spend_is_grouped_in_base_currency(
    grouping: SpendGrouping, expected: list[tuple[str, str]]
) -> None:
    report = spend_by(world_of_orders(), Q4, base_currency="USD", group_by=grouping)
    assert [(g.key, str(g.amount.amount)) for g in report.groups] == expected
    assert report.total == Money.of("396.00", "USD")
    assert (report.orders, report.skipped_orders) == (3, 1)
    assert sum(g.amount.amount for g in report.groups) == report.total.amount


def test_groups_carry_share_orders_and_lines() -> None:
    report = spend_by(world_of_orders(), Q4, base_currency="USD", group_by=SpendGrouping.SUPPLIER)
    beta, acme = report.groups
    assert (beta.label, beta.share_pct, beta.orders, beta.lines) == ("BETA Ltd", D("54.5"), 1, 1)
    assert (acme.share_pct, acme.orders, acme.lines) == (D("45.5"), 2, 3)


def test_an_empty_period_has_no_groups_and_no_shares() -> None:
    empty = Period(dt.date(2025, 1, 1), dt.date(2025, 2, 1))
    report = spend_by(world_of_orders(), empty, base_currency="USD", group_by=SpendGrouping.SITE)
    assert (report.groups, report.total, report.orders) == ((), Money.zero("USD"), 0)
    summary = spend_summary(world_of_orders(), empty, base_currency="USD")
    assert (summary.on_contract_pct, summary.maverick_pct) == (None, None)
    assert (summary.concentration.hhi, summary.concentration.top_share_pct) == (None, None)
    assert summary.contract_variance.lines_compared == 0
    assert summary.savings.total == Money.zero("USD")


@pytest.mark.parametrize(
    ("day", "month", "quarter", "year"),
    [
        (dt.date(2026, 1, 1), "2026-01", "2026-Q1", "2026"),
        (dt.date(2026, 3, 31), "2026-03", "2026-Q1", "2026"),
        (dt.date(2026, 4, 1), "2026-04", "2026-Q2", "2026"),
        (dt.date(2026, 12, 31), "2026-12", "2026-Q4", "2026"),
    ],
)
def test_calendar_buckets(day: dt.date, month: str, quarter: str, year: str) -> None:
    assert period_key(day, SpendGrouping.MONTH) == month
    assert period_key(day, SpendGrouping.QUARTER) == quarter
    assert period_key(day, SpendGrouping.YEAR) == year
    with pytest.raises(ValueError, match="calendar"):
        period_key(day, SpendGrouping.SITE)


@settings(max_examples=100, deadline=None)
@given(
    amounts=st.lists(
        st.tuples(
            st.sampled_from(["A", "B", "C", "D"]),
            st.decimals(min_value=0, max_value=10_000, places=2, allow_nan=False),
            st.dates(dt.date(2026, 9, 1), dt.date(2027, 2, 1)),
        ),
        max_size=12,
    ),
    grouping=st.sampled_from(list(SpendGrouping)),
)
def test_groups_always_add_up_to_the_total(
    amounts: list[tuple[str, Decimal, dt.date]], grouping: SpendGrouping
) -> None:
    orders = [
        spend_order(spend_line(str(a)), supplier=s, day=d, order_id=i)
        for i, (s, a, d) in enumerate(amounts)
    ]
    report = spend_by(orders, Q4, base_currency="USD", group_by=grouping)
    assert sum(g.amount.amount for g in report.groups) == report.total.amount
    assert report.total.amount == sum(a for _, a, d in amounts if Q4.contains(d))
    shares = [g.share_pct for g in report.groups if g.share_pct is not None]
    if report.total.amount > 0:
        assert abs(sum(shares) - 100) <= D("0.05") * len(shares)


# --- summary ---------------------------------------------------------------------------


def test_contract_off_contract_and_maverick_spend() -> None:
    orders = [
        spend_order(
            spend_line(
                "100.00", contract_id=7, contract_price=D("100.00"), contract_available=True
            ),
            spend_line("60.00", part=2, contract_available=True),  # a contract existed: maverick
            spend_line("40.00", part=3),  # nothing to comply with
        )
    ]
    summary = spend_summary(orders, Q4, base_currency="USD")
    assert summary.total.amount == D("200.00")
    assert (summary.on_contract.amount, summary.off_contract.amount) == (D("100.00"), D("100.00"))
    assert summary.maverick.amount == D("60.00")
    assert (summary.on_contract_pct, summary.maverick_pct) == (D("50.0"), D("30.0"))


def test_variance_against_the_contract_price_in_base_currency() -> None:
    orders = [
        spend_order(
            spend_line("33.00", quantity="3", contract_price=D("10.00")),  # 1.00 over x 3
            spend_line("19.00", part=2, quantity="2", contract_price=D("10.00")),  # 0.50 under x 2
            spend_line("5.00", part=3),  # no contract price: not compared
            currency="EUR",
            rate="1.08",
        )
    ]
    variance = spend_summary(orders, Q4, base_currency="USD").contract_variance
    assert variance.lines_compared == 2
    assert (variance.above.amount, variance.below.amount) == (D("3.24"), D("-1.08"))
    assert variance.total.amount == D("2.16")
    assert [(p.part_number, p.amount.amount) for p in variance.by_part] == [
        ("P-1", D("3.24")),
        ("P-2", D("-1.08")),
    ]


def test_variance_against_the_last_price_paid_before() -> None:
    orders = [
        # History before the period sets the first reference: 10.00 USD.
        spend_order(spend_line("10.00"), day=dt.date(2026, 9, 1), order_id=1),
        # 10.00 EUR at 1.08 = 10.80 USD a unit: 0.80 more x 5.
        spend_order(
            spend_line("50.00", quantity="5"),
            supplier="EUROBEAR",
            currency="EUR",
            rate="1.08",
            day=dt.date(2026, 10, 2),
            order_id=2,
        ),
        # Back to 10.00 USD: 0.80 less x 2.
        spend_order(spend_line("20.00", quantity="2"), day=dt.date(2026, 10, 3), order_id=3),
        # The first purchase of part 2 has nothing before it.
        spend_order(spend_line("7.00", part=2), day=dt.date(2026, 10, 4), order_id=4),
    ]
    variance = spend_summary(orders, Q4, base_currency="USD").last_price_variance
    assert variance.lines_compared == 2
    assert (variance.above.amount, variance.below.amount, variance.total.amount) == (
        D("4.00"),
        D("-1.60"),
        D("2.40"),
    )


def test_savings_are_list_minus_contract_price_on_contract_lines() -> None:
    orders = [
        spend_order(
            spend_line(
                "120.00",
                quantity="4",
                contract_id=1,
                contract_price=D("30.00"),
                list_price=D("36.00"),
            ),
            spend_line("30.00", part=2, contract_id=1, contract_price=D("30.00")),  # no list price
            spend_line("36.00", part=3, list_price=D("40.00"), contract_price=D("30.00")),  # off
            currency="EUR",
            rate=str(EUR_USD),
        )
    ]
    savings = spend_summary(orders, Q4, base_currency="USD").savings
    assert savings.total.amount == D("25.92")  # 6.00 x 4 x 1.08
    assert (savings.lines, savings.lines_without_list_price) == (1, 1)


def test_concentration_top_share_and_hhi() -> None:
    orders = [
        spend_order(spend_line("750.00"), supplier="BIG", order_id=1),
        spend_order(spend_line("150.00"), supplier="MID", order_id=2),
        spend_order(spend_line("100.00"), supplier="SMALL", order_id=3),
    ]
    one = spend_summary(orders, Q4, base_currency="USD", top_n=1).concentration
    assert [(s.code, s.share_pct) for s in one.top] == [("BIG", D("75.0"))]
    assert one.top_share_pct == D("75.0")
    # 75^2 + 15^2 + 10^2
    assert one.hhi == D(5950)
    assert one.suppliers == 3
    two = spend_summary(orders, Q4, base_currency="USD", top_n=2).concentration
    assert two.top_share_pct == D("90.0")
    with pytest.raises(ValueError, match="top_n"):
        spend_summary(orders, Q4, base_currency="USD", top_n=0)


# --- catalogue prices as they stood -----------------------------------------------------


def _change(
    day: int, month: int, minimum: str, old: str | None, new: str | None
) -> PriceChangeFact:
    return PriceChangeFact(
        dt.datetime(2026, month, day, 12, tzinfo=UTC),
        D(minimum),
        None if old is None else D(old),
        None if new is None else D(new),
    )


def test_price_breaks_are_rebuilt_from_their_history() -> None:
    current = [(D(1), D("9.00")), (D(10), D("8.00"))]
    changes = [
        _change(1, 3, "1", None, "10.00"),  # created 1 March at 10.00
        _change(1, 6, "1", "10.00", "9.00"),  # lowered 1 June
        _change(1, 9, "10", None, "8.00"),  # a break from 10 added 1 September
        _change(1, 4, "5", None, "9.50"),  # a break from 5 that lived April to July
        _change(1, 7, "5", "9.50", None),
    ]
    assert breaks_on(current, changes, dt.date(2026, 2, 1)) == []
    assert breaks_on(current, changes, dt.date(2026, 3, 1)) == [(D(1), D("10.00"))]
    assert breaks_on(current, changes, dt.date(2026, 5, 1)) == [
        (D(1), D("10.00")),
        (D(5), D("9.50")),
    ]
    assert breaks_on(current, changes, dt.date(2026, 10, 1)) == current
    assert list_price_on(current, changes, dt.date(2026, 5, 1), D(6)) == D("9.50")
    assert list_price_on(current, changes, dt.date(2026, 10, 1), D(12)) == D("8.00")
    assert list_price_on(current, changes, dt.date(2026, 2, 1), D(1)) is None
    # Without history the current breaks are the answer.
    assert list_price_on(current, [], dt.date(2020, 1, 1), D(3)) == D("9.00")


# --- the loader, on both databases ------------------------------------------------------

WINTER = Period(dt.date(2026, 11, 1), dt.date(2027, 1, 1))


def _approve(world: World, order: PurchaseOrder) -> None:
    approve_order(
        world.db,
        order,
        approver_id=world.user(),
        role=Role.ADMIN,
        policy=ApprovalPolicy(),
        now=APPROVED,
    )


def test_end_to_end_spend_shows_the_eur_order_in_usd(world: World) -> None:
    po = eur_contract_order(world)
    world.db.flush()
    assert po.total == D("120.00")
    assert po.total_base == D("129.60")  # 120.00 EUR x 1.08
    facts = load_spend_facts(world.db, until=WINTER.end)
    report = spend_by(facts, WINTER, base_currency="USD", group_by=SpendGrouping.SUPPLIER)
    (group,) = report.groups
    assert (group.key, group.amount) == ("EUROBEAR", Money(po.total_base, "USD"))
    assert report.total.amount == po.total_base
    by_site = spend_by(facts, WINTER, base_currency="USD", group_by=SpendGrouping.SITE)
    by_asset = spend_by(facts, WINTER, base_currency="USD", group_by=SpendGrouping.ASSET)
    by_month = spend_by(facts, WINTER, base_currency="USD", group_by=SpendGrouping.MONTH)
    assert [g.key for g in by_site.groups] == ["S1"]  # the pump's site, via the work order
    assert [g.key for g in by_asset.groups] == ["P-1"]
    assert [g.key for g in by_month.groups] == ["2026-11"]  # approved 27 November
    summary = spend_summary(facts, WINTER, base_currency="USD")
    assert summary.on_contract.amount == D("129.60")
    assert summary.maverick.amount == D(0)
    assert summary.contract_variance.total.amount == D(0)
    assert summary.savings.total.amount == D("25.92")  # (36.00 list - 30.00 contract) x 4 x 1.08


def test_only_committed_orders_count_and_places_fall_back(world: World) -> None:
    eur_contract_order(world)
    usd = world.supplier("USBEAR", "USD")
    rate = world.fx().rate("USD", "USD", TODAY)
    # Off contract from another supplier while EUROBEAR's contract covers the part: maverick.
    # Its stock level gives the site; there is no asset.
    off = new_purchase_order(world.db, supplier=usd, currency="USD", base_currency="USD", rate=rate)
    world.db.flush()
    add_line(
        off,
        part_id=world.ids["part"],
        quantity=D(2),
        unit_price=D("35.00"),
        stock_level_id=world.ids["stock"],
    )
    # Neither work order nor stock level: unassigned; a part without any contract.
    other = world.part("SEAL-9")
    add_line(off, part_id=other, quantity=D(1), unit_price=D("5.00"))
    world.db.flush()
    _approve(world, off)
    # A draft and a cancelled order do not count.
    draft = new_purchase_order(
        world.db, supplier=usd, currency="USD", base_currency="USD", rate=rate
    )
    world.db.flush()
    add_line(draft, part_id=world.ids["part"], quantity=D(1), unit_price=D("1.00"))
    cancelled = new_purchase_order(
        world.db, supplier=usd, currency="USD", base_currency="USD", rate=rate
    )
    world.db.flush()
    add_line(cancelled, part_id=world.ids["part"], quantity=D(1), unit_price=D("1.00"))
    world.db.flush()
    _approve(world, cancelled)
    cancel_order(world.db, cancelled)
    world.db.flush()

    facts = load_spend_facts(world.db, until=WINTER.end)
    assert sorted(f.supplier_code for f in facts) == ["EUROBEAR", "USBEAR"]
    site = spend_by(facts, WINTER, base_currency="USD", group_by=SpendGrouping.SITE)
    assert [(g.key, g.amount.amount) for g in site.groups] == [
        ("S1", D("199.60")),  # 129.60 + 70.00 through the stock level
        ("unassigned", D("5.00")),
    ]
    asset = spend_by(facts, WINTER, base_currency="USD", group_by=SpendGrouping.ASSET)
    assert [(g.key, g.amount.amount) for g in asset.groups] == [
        ("P-1", D("129.60")),
        ("unassigned", D("75.00")),
    ]
    summary = spend_summary(facts, WINTER, base_currency="USD")
    assert summary.maverick.amount == D("70.00")
    assert summary.off_contract.amount == D("75.00")
    # 35.00 USD against the EUR contract cannot be compared; against the last price paid
    # (30.00 EUR = 32.40 USD a unit, the order drafted first) it is 2.60 x 2 more.
    assert summary.contract_variance.lines_compared == 1
    assert summary.last_price_variance.total.amount == D("5.20")
    assert summary.concentration.suppliers == 2


def test_list_prices_follow_the_catalogue_history(world: World) -> None:
    po = eur_contract_order(world)
    item_id = po.lines[0].catalog_item_id
    assert item_id is not None
    # The list price was 40.00 until the day after the order was priced, then 36.00.
    world.db.add(
        PriceChange(
            catalog_item_id=item_id,
            min_quantity=D(1),
            currency="EUR",
            old_price=D("40.00"),
            new_price=D("36.00"),
            changed_at=dt.datetime.combine(TODAY + dt.timedelta(days=1), dt.time(8), tzinfo=UTC),
        )
    )
    world.db.flush()
    summary = spend_summary(
        load_spend_facts(world.db, until=WINTER.end), WINTER, base_currency="USD"
    )
    assert summary.savings.total.amount == D("43.20")  # (40.00 - 30.00) x 4 x 1.08


def test_manual_requisition_without_work_order_has_no_asset(world: World) -> None:
    world.item(world.supplier("USBEAR", "USD"), [("1", "12.00")])
    manual_requisition(world.db, part_id=world.ids["part"], quantity=D(3))
    (po,) = world.auto()
    _approve(world, po)
    world.db.flush()
    facts = load_spend_facts(world.db, until=WINTER.end)
    (line,) = facts[0].lines
    assert (line.site, line.asset, line.contract_id, line.list_price) == (
        "S1",
        None,
        None,
        D("12.00"),
    )
