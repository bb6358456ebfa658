"""Supplier choice, pack sizes, price breaks, consolidation and the automation rate."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from maintainpro.supply.catalogs import break_for, round_to_packs
from maintainpro.supply.requisitions import (
    RequisitionLineStatus,
    manual_requisition,
    reorder_quantity,
    requisitions_from_reorder_points,
)
from maintainpro.supply.sourcing import generate_purchase_orders
from supply.procurement_world import EUR_USD, TODAY, World


def _auto(world: World):  # type: ignore[no-untyped-def]
    return generate_purchase_orders(world.db, base_currency="USD", fx=world.fx(), today=TODAY)


@pytest.mark.parametrize(
    ("quantity", "expected"),
    [("1", "12.50"), ("9.999", "12.50"), ("10", "11.00"), ("49", "11.00"), ("500", "9.75")],
)
def test_the_highest_break_not_above_the_quantity_applies(quantity: str, expected: str) -> None:
    breaks = [
        (Decimal(10), Decimal("11.00")),
        (Decimal(1), Decimal("12.50")),
        (Decimal(50), Decimal("9.75")),
    ]
    assert break_for(breaks, Decimal(quantity))[1] == Decimal(expected)


@pytest.mark.parametrize(
    ("need", "pack", "expected"),
    [("1", "6", "6"), ("6", "6", "6"), ("7", "6", "12"), ("2.5", "0.5", "2.5"), ("0.1", "1", "1")],
)
def test_quantities_round_up_to_whole_packs(need: str, pack: str, expected: str) -> None:
    assert round_to_packs(Decimal(need), Decimal(pack)) == Decimal(expected)


def test_reorder_orders_up_to_max_counting_what_is_on_order() -> None:
    assert reorder_quantity(
        available=Decimal(2), on_order=Decimal(0), reorder_point=Decimal(2), max_level=Decimal(20)
    ) == Decimal(18)
    assert reorder_quantity(
        available=Decimal(2), on_order=Decimal(18), reorder_point=Decimal(2), max_level=Decimal(20)
    ) == Decimal(0)
    assert reorder_quantity(
        available=Decimal(3), on_order=Decimal(0), reorder_point=Decimal(2), max_level=Decimal(20)
    ) == Decimal(0)


def test_reorder_point_requisition_is_rounded_to_packs_on_the_order(world: World) -> None:
    from maintainpro.core.inventory import StockLevel

    level = world.db.get(StockLevel, world.ids["stock"])
    assert level is not None
    level.on_hand, level.reorder_point, level.max_level = Decimal(2), Decimal(2), Decimal(15)
    acme = world.supplier("ACME", "USD")
    world.item(acme, [("1", "4.00")], pack="6")
    lines = requisitions_from_reorder_points(world.db)
    assert [line.quantity for line in lines] == [Decimal(13)]
    assert requisitions_from_reorder_points(world.db) == []  # already requisitioned
    result = _auto(world)
    (po_line,) = result.orders[0].lines
    assert po_line.quantity == Decimal(18)  # 13 needed, three packs of 6
    assert "13 needed, 18 ordered" in po_line.explanation
    assert requisitions_from_reorder_points(world.db) == []  # now on order


def test_a_valid_contract_wins_over_a_cheaper_catalogue(world: World) -> None:
    cheap = world.supplier("CHEAP", "USD", preferred=True)
    world.item(cheap, [("1", "5.00")])
    bound = world.supplier("BOUND", "EUR")
    world.item(bound, [("1", "20.00")])
    world.contract(bound, "9.00", cap="1000.00")
    manual_requisition(world.db, part_id=world.ids["part"], quantity=Decimal(4))
    result = _auto(world)
    (order,) = result.orders
    assert order.supplier.code == "BOUND"
    assert order.currency == "EUR"
    (line,) = order.lines
    assert line.unit_price == Decimal(9)
    assert line.contract_id is not None
    assert "contract C-BOUND" in line.explanation
    assert "contract prices come first" in line.explanation


def test_an_expired_or_exhausted_contract_is_passed_over(world: World) -> None:
    bound = world.supplier("BOUND", "EUR")
    contract = world.contract(bound, "9.00", cap="10.00")  # 4 x 9 = 36 > 10
    other = world.supplier("OTHER", "USD")
    world.item(other, [("1", "12.00")])
    manual_requisition(world.db, part_id=world.ids["part"], quantity=Decimal(4))
    assert _auto(world).orders[0].supplier.code == "OTHER"
    contract.spend_cap = None
    contract.valid_to = TODAY - dt.timedelta(days=1)
    manual_requisition(world.db, part_id=world.ids["part"], quantity=Decimal(1))
    assert _auto(world).orders[0].supplier.code == "OTHER"


def test_the_preferred_supplier_comes_before_a_cheaper_one(world: World) -> None:
    cheap = world.supplier("CHEAP", "USD")
    world.item(cheap, [("1", "5.00")])
    usual = world.supplier("USUAL", "USD", preferred=True)
    world.item(usual, [("1", "6.00")])
    manual_requisition(world.db, part_id=world.ids["part"], quantity=Decimal(1))
    (order,) = _auto(world).orders
    assert order.supplier.code == "USUAL"
    assert "preferred supplier USUAL" in order.lines[0].explanation


def test_lowest_landed_cost_is_compared_in_base_currency(world: World) -> None:
    # 10 EUR = 10.80 USD, below 11.00 USD; with 3 % freight it becomes 11.12 USD and loses.
    eur = world.supplier("EURO", "EUR")
    eur_item = world.item(eur, [("1", "10.00")])
    usd = world.supplier("YANK", "USD")
    world.item(usd, [("1", "11.00")])
    manual_requisition(world.db, part_id=world.ids["part"], quantity=Decimal(1))
    (order,) = _auto(world).orders
    assert order.supplier.code == "EURO"
    assert order.fx_rate == EUR_USD
    assert order.fx_rate_date == TODAY
    assert order.fx_source == "ECB"
    assert (order.total, order.total_base) == (Decimal("10.00"), Decimal("10.80"))
    assert "lowest landed cost 10.80 USD" in order.lines[0].explanation
    eur_item.landed_cost_pct = Decimal(3)
    manual_requisition(world.db, part_id=world.ids["part"], quantity=Decimal(1))
    (order,) = _auto(world).orders
    assert order.supplier.code == "YANK"


def test_a_supplier_too_slow_for_the_need_date_is_not_chosen(world: World) -> None:
    slow = world.supplier("SLOW", "USD", preferred=True)
    world.item(slow, [("1", "1.00")], lead=30)
    fast = world.supplier("FAST", "USD")
    world.item(fast, [("1", "9.00")], lead=2)
    manual_requisition(
        world.db, part_id=world.ids["part"], quantity=Decimal(1), need_by=TODAY + dt.timedelta(7)
    )
    (order,) = _auto(world).orders
    assert order.supplier.code == "FAST"


def test_lines_are_consolidated_per_supplier_and_the_rate_is_reported(world: World) -> None:
    acme = world.supplier("ACME", "USD")
    other_part = world.part("SEAL-1")
    unknown_part = world.part("GASKET-9")  # nobody sells it: left for a buyer
    world.item(acme, [("1", "4.00"), ("10", "3.50")])
    world.item(acme, [("1", "2.00")], part_id=other_part)
    manual_requisition(world.db, part_id=world.ids["part"], quantity=Decimal(12))
    manual_requisition(world.db, part_id=other_part, quantity=Decimal(3))
    unsourced = manual_requisition(world.db, part_id=unknown_part, quantity=Decimal(1))
    result = _auto(world)
    (order,) = result.orders
    assert [(line.quantity, line.unit_price, line.line_total) for line in order.lines] == [
        (Decimal(12), Decimal("3.5"), Decimal("42.00")),
        (Decimal(3), Decimal(2), Decimal("6.00")),
    ]
    assert order.total == Decimal("48.00")
    assert (result.considered, result.ordered) == (3, 2)
    assert result.automation_rate == Decimal("0.6667")
    assert result.left_for_buyer == [unsourced.id]
    assert unsourced.status is RequisitionLineStatus.OPEN
    assert unsourced.sourcing_note is not None
    assert _auto(world).orders == []  # ordered lines are not ordered twice


def test_inactive_suppliers_and_invalid_items_are_ignored(world: World) -> None:
    from maintainpro.supply.suppliers import SupplierStatus

    blocked = world.supplier("BLOCKED", "USD", preferred=True)
    blocked.status = SupplierStatus.BLOCKED
    world.item(blocked, [("1", "1.00")])
    expired = world.supplier("OLD", "USD")
    item = world.item(expired, [("1", "1.00")])
    item.valid_to = TODAY - dt.timedelta(days=1)
    manual_requisition(world.db, part_id=world.ids["part"], quantity=Decimal(1))
    result = _auto(world)
    assert result.orders == []
    assert result.automation_rate == Decimal(0)
