"""Catalogue price maintenance: validated break sets, item changes, versioned price history."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import select

from maintainpro.supply.catalogs import (
    CatalogError,
    CatalogItem,
    PriceChange,
    check_price_breaks,
    price_differences,
    replace_price_breaks,
    update_catalog_item,
)
from supply.procurement_world import TODAY, World

AT = dt.datetime(2026, 11, 27, 8, 30, tzinfo=dt.UTC)
D = Decimal


def _breaks(*pairs: tuple[str, str]) -> list[tuple[Decimal, Decimal]]:
    return [(D(q), D(p)) for q, p in pairs]


def _history(
    world: World, item: CatalogItem
) -> list[tuple[Decimal, Decimal | None, Decimal | None]]:
    rows = world.db.scalars(
        select(PriceChange).where(PriceChange.catalog_item_id == item.id).order_by(PriceChange.id)
    )
    return [(r.min_quantity, r.old_price, r.new_price) for r in rows]


def test_a_valid_break_set_passes() -> None:
    check_price_breaks(
        _breaks(("10", "5.00"), ("50", "4.50"), ("100", "4.000001")), pack_size=D(10)
    )


@pytest.mark.parametrize(
    ("breaks", "message"),
    [
        pytest.param([], "at least one price break", id="empty"),
        pytest.param(_breaks(("1", "5")), r"start at one pack \(10\), not at 1", id="below a pack"),
        pytest.param(_breaks(("20", "5")), r"start at one pack \(10\), not at 20", id="above"),
        pytest.param(
            _breaks(("10", "5"), ("50", "4"), ("20", "3")), "20 follows 50", id="not ascending"
        ),
        pytest.param(_breaks(("10", "5"), ("10.000", "4")), "10 follows 10", id="repeated"),
        pytest.param(_breaks(("10", "0")), "break at 10 needs a positive", id="zero price"),
        pytest.param(_breaks(("10", "5"), ("20", "-1")), "at 20 needs a positive", id="negative"),
        pytest.param(_breaks(*((str(10 * n), "1") for n in range(1, 52))), "at most 50", id="51"),
    ],
)
def test_bad_break_sets_are_refused(breaks: list[tuple[Decimal, Decimal]], message: str) -> None:
    with pytest.raises(CatalogError, match=message):
        check_price_breaks(breaks, pack_size=D(10))


def test_price_differences_name_added_removed_and_repriced_breaks() -> None:
    old = {D(1): D("10.00"), D(10): D("9.00"), D(50): D("8.00")}
    new = {D("1.000"): D("10.000000"), D(10): D("8.50"), D(100): D("7.00")}
    assert price_differences(old, new) == [
        (D(10), D("9.00"), D("8.50")),
        (D(50), D("8.00"), None),
        (D(100), None, D("7.00")),
    ]


def test_replacing_breaks_records_who_when_old_and_new(world: World) -> None:
    item = world.item(world.supplier("ACME", "EUR"), [("1", "10.00"), ("10", "9.00")])
    buyer = world.user()
    changes = replace_price_breaks(
        world.db,
        item,
        _breaks(("1", "10.00"), ("10", "8.50"), ("100", "7.00")),
        currency="EUR",
        changed_by_id=buyer,
        now=AT,
    )
    assert [(c.min_quantity, c.old_price, c.new_price) for c in changes] == [
        (D(10), D("9.00"), D("8.50")),
        (D(100), None, D("7.00")),
    ]
    assert {(c.changed_by_id, c.changed_at, c.currency) for c in changes} == {(buyer, AT, "EUR")}
    world.db.expire_all()
    stored = world.db.get(CatalogItem, item.id)
    assert stored is not None
    assert [(b.min_quantity, b.unit_price) for b in stored.price_breaks] == _breaks(
        ("1", "10.00"), ("10", "8.50"), ("100", "7.00")
    )
    assert _history(world, item) == [(D(10), D("9.00"), D("8.50")), (D(100), None, D("7.00"))]


def test_the_same_prices_again_write_no_history(world: World) -> None:
    item = world.item(world.supplier("ACME", "EUR"), [("1", "10.00")])
    again = replace_price_breaks(world.db, item, _breaks(("1.000", "10")), currency="EUR")
    assert again == []
    assert _history(world, item) == []


@pytest.mark.parametrize(
    ("breaks", "currency", "message"),
    [
        (_breaks(("1", "8.00")), "USD", "prices of this item are in EUR"),
        (_breaks(("2", "8.00")), "EUR", "one pack"),
        (_breaks(("1", "8.00"), ("1", "7.00")), "EUR", "ascend"),
    ],
)
def test_a_refused_break_set_changes_nothing(
    world: World, breaks: list[tuple[Decimal, Decimal]], currency: str, message: str
) -> None:
    item = world.item(world.supplier("ACME", "EUR"), [("1", "10.00")])
    with pytest.raises(CatalogError, match=message):
        replace_price_breaks(world.db, item, breaks, currency=currency)
    world.db.expire_all()
    assert [(b.min_quantity, b.unit_price) for b in item.price_breaks] == _breaks(("1", "10.00"))
    assert _history(world, item) == []


def test_item_terms_change_without_touching_prices(world: World) -> None:
    item = world.item(world.supplier("ACME", "EUR"), [("1", "10.00")])
    changes = update_catalog_item(
        world.db,
        item,
        {
            "description": "Deep-groove bearing 6204",
            "unit": "PCE",
            "lead_time_days": 12,
            "valid_from": TODAY,
            "valid_to": TODAY + dt.timedelta(days=90),
        },
    )
    assert changes == []
    assert (item.description, item.unit, item.lead_time_days) == (
        "Deep-groove bearing 6204",
        "PCE",
        12,
    )
    assert item.valid_on(TODAY + dt.timedelta(days=90))
    assert not item.valid_on(TODAY + dt.timedelta(days=91))


def test_a_new_pack_size_needs_breaks_that_start_at_it(world: World) -> None:
    item = world.item(world.supplier("ACME", "EUR"), [("1", "10.00"), ("10", "9.00")])
    with pytest.raises(CatalogError, match="send the new price breaks with the pack size"):
        update_catalog_item(world.db, item, {"pack_size": D(5), "lead_time_days": 3})
    world.db.expire_all()
    assert (item.pack_size, item.lead_time_days) == (D(1), 5)
    changes = update_catalog_item(
        world.db,
        item,
        {"pack_size": D(5)},
        breaks=_breaks(("5", "9.50"), ("10", "9.00")),
        currency="EUR",
        changed_by_id=world.user(),
    )
    assert [(c.min_quantity, c.old_price, c.new_price) for c in changes] == [
        (D(1), D("10.00"), None),
        (D(5), None, D("9.50")),
    ]
    assert item.pack_size == D(5)
    # A pack size the existing breaks already start at needs no new breaks.
    update_catalog_item(world.db, item, {"pack_size": D("5.000")})


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"valid_from": TODAY, "valid_to": TODAY - dt.timedelta(days=1)}, "before valid_from"),
        ({"valid_to": TODAY - dt.timedelta(days=400)}, "before valid_from"),
        ({"currency": "USD"}, "cannot be changed: currency"),
        ({"part_id": 2, "supplier_id": 3}, "cannot be changed: part_id, supplier_id"),
        ({"pack_size": D(0)}, "pack size must be positive"),
    ],
)
def test_bad_item_changes_are_refused_whole(
    world: World, changes: dict[str, object], message: str
) -> None:
    item = world.item(world.supplier("ACME", "EUR"), [("1", "10.00")])
    item.valid_from = TODAY - dt.timedelta(days=100)
    world.db.flush()
    with pytest.raises(CatalogError, match=message):
        update_catalog_item(world.db, item, {"description": "changed", **changes})
    world.db.expire_all()
    assert item.description == ""


def test_breaks_in_another_currency_are_refused_with_a_pack_change(world: World) -> None:
    item = world.item(world.supplier("ACME", "EUR"), [("1", "10.00")])
    with pytest.raises(CatalogError, match="in EUR"):
        update_catalog_item(
            world.db, item, {"pack_size": D(2)}, breaks=_breaks(("2", "9")), currency="USD"
        )
    world.db.expire_all()
    assert item.pack_size == D(1)
